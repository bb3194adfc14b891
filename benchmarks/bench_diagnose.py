"""Benchmark: the pure diagnosis path (rules + recommendation + markdown) as a host grows.

Generates a snapshot with N compose projects of the seed's four services (one profile project
among them, crash-looping backend, a host process shadowing redis) and times diagnose() and
render_markdown() over repeated runs. Pure code: no engine needed, numbers are repeatable.

    .venv/bin/python benchmarks/bench_diagnose.py [--sizes 10,100,1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC, datetime

from stackwarden.model import Listener
from stackwarden.pipeline import diagnose_step
from stackwarden.report import render_markdown
from stackwarden.report.prometheus import render_prometheus
from tests.support.builders import PANIC, PORTS, container, process, profile, proxy_for, snapshot


def build(projects: int) -> object:
    """A host with ``projects`` compose projects (4 containers each) plus the seed's conflicts."""
    containers, listeners, processes = [], [], []
    for i in range(projects):
        name = "seedstack" if i == 0 else f"other{i}"
        containers.append(
            container("backend", "restarting", project=name, exit_code=101, restart_count=3, logs=(PANIC,))
        )
        containers.append(container("frontend", project=name))
        containers.append(container("postgres", project=name))
        redis = container("redis", project=name, publish=(("127.0.0.1", PORTS["redis"] if i == 0 else 40000 + i),))
        containers.append(redis)
        listener, proxy = proxy_for(redis, "127.0.0.1", redis.published[0].host_port, 100000 + i)
        listeners.append(listener)
        processes.append(proxy)
    listeners.append(Listener(address="::1", port=PORTS["redis"], pid=2785))
    processes.append(process(2785, "redis-server"))
    return snapshot(containers=tuple(containers), listeners=tuple(listeners), processes=tuple(processes))


def derivations_per_audit(snap: object, prof: object) -> tuple[int, int]:
    """How often one audit's pure path (diagnose, recommend, markdown with its three plans,
    metrics) derives the stack view and runs the rules: once each since they are remembered
    per snapshot (it was 42-45 and 4)."""
    from stackwarden import placement, rules

    counts = {"view": 0, "rules": 0}
    real_view, real_rules = placement._derive_stack_view, rules._run_rules

    def view(*args: object) -> object:
        counts["view"] += 1
        return real_view(*args)  # type: ignore[arg-type]

    def run(*args: object) -> object:
        counts["rules"] += 1
        return real_rules(*args)  # type: ignore[arg-type]

    placement._derive_stack_view, rules._run_rules = view, run  # type: ignore[assignment]
    try:
        fresh = snap.model_copy()  # type: ignore[attr-defined]
        result = diagnose_step(fresh, prof)  # type: ignore[arg-type]
        render_markdown(result, fresh, prof)  # type: ignore[arg-type]
        render_prometheus(result, fresh, prof, duration_seconds=0.0, finished_at=datetime.now(UTC))  # type: ignore[arg-type]
    finally:
        placement._derive_stack_view, rules._run_rules = real_view, real_rules  # type: ignore[assignment]
    return counts["view"], counts["rules"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    prof = profile()
    print("| projects | containers | diagnose median ms | render median ms | findings | view / rules per audit |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        snap = build(size)
        diag, render = [], []
        findings: tuple[object, ...] = ()
        for _ in range(args.repeat):
            fresh = snap.model_copy()  # type: ignore[attr-defined]  # a new observation: nothing remembered
            t0 = time.perf_counter()
            result = diagnose_step(fresh, prof)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            render_markdown(result, fresh, prof)  # type: ignore[arg-type]
            t2 = time.perf_counter()
            findings = result.findings
            diag.append((t1 - t0) * 1000)
            render.append((t2 - t1) * 1000)
        diag_ms, render_ms = statistics.median(diag), statistics.median(render)
        views, runs = derivations_per_audit(snap, prof)
        print(f"| {size} | {size * 4} | {diag_ms:.1f} | {render_ms:.1f} | {len(findings)} | {views} / {runs} |")


if __name__ == "__main__":
    main()
