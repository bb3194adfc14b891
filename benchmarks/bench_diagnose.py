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

from stackwarden.model import AuditResult, Listener
from stackwarden.recommend import recommend_mode
from stackwarden.report import render_markdown
from stackwarden.rules import diagnose
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    prof = profile()
    print("| projects | containers | diagnose median ms | render median ms | findings |")
    print("|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        snap = build(size)
        diag, render = [], []
        findings = ()
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            findings = diagnose(snap, prof)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            result = AuditResult(
                profile=prof.name,
                snapshot_taken_at="x",
                findings=findings,
                recommendation=recommend_mode(snap, prof, findings),  # type: ignore[arg-type]
            )
            render_markdown(result, snap, prof)  # type: ignore[arg-type]
            t2 = time.perf_counter()
            diag.append((t1 - t0) * 1000)
            render.append((t2 - t1) * 1000)
        diag_ms, render_ms = statistics.median(diag), statistics.median(render)
        print(f"| {size} | {size * 4} | {diag_ms:.1f} | {render_ms:.1f} | {len(findings)} |")


if __name__ == "__main__":
    main()
