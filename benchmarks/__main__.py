"""``python -m benchmarks``: build each scenario size on the real engines, time the baseline
commands and the CLI's ways of running an audit on it, in the same run, and print the figures.

    .venv/bin/python -m benchmarks --sizes seed,medium --repeat 5 --ephemeral-repeat 2 \\
        --json bench.json

Needs what the tests need: the Docker engine with the test image (scripts/provision-docker.sh),
the control plane (scripts/k8s/build-control-plane.sh), kubectl, lsof, redis-server. The large
size is heavy on a 2-core machine; run it alone and late. Nothing here asserts a time: CI runs
``--sizes seed --repeat 1`` as a smoke test that the harness works.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Series,
    audit_args,
    clean_env,
    docker_requests,
    kube_requests,
    run_process,
    switch_figures,
    time_baseline,
)
from benchmarks.scenario import SIZES, Scenario, build
from tests.support.realparts import REPO, free_ports


def _ratio(value: float | None, baseline: float) -> float | None:
    return round(value / baseline, 2) if value is not None and baseline > 0 else None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def measure(
    scenario: Scenario, workdir: Path, server_env: dict[str, str], repeat: int, ephemeral_repeat: int
) -> dict[str, Any]:
    """Every figure for one scenario; the ways of running are interleaved run by run, so a
    passing load on the shared machine touches them alike."""
    load_before = os.getloadavg()[0]
    baseline, in_process, recorded, ephemeral = [], Series(), Series(), Series()
    parts: dict[str, list[float]] = {}
    in_env = clean_env(workdir / "prefect-none")
    rec_env = clean_env(workdir / "prefect-client", **server_env)
    # warm-up: page cache, the server's first flow registration
    run_process(audit_args(scenario, "--no-record", "--fresh"), in_env)
    run_process(audit_args(scenario), rec_env)
    for _ in range(repeat):
        total, each = time_baseline(scenario)
        baseline.append(total)
        for name, seconds in each.items():
            parts.setdefault(name, []).append(seconds)
        in_process.add(run_process(audit_args(scenario, "--no-record", "--fresh"), in_env))
        recorded.add(run_process(audit_args(scenario), rec_env))
    for i in range(ephemeral_repeat):
        ephemeral.add(run_process(audit_args(scenario, "--record"), clean_env(workdir / f"prefect-ephemeral-{i}")))
    base = statistics.median(baseline)
    return {
        "size": scenario.size.name,
        "containers": scenario.size.containers,
        "pods": scenario.size.pods,
        "listeners": scenario.size.listeners,
        "repeat": repeat,
        "baseline_seconds": _round(base),
        "baseline_parts": {name: _round(statistics.median(v)) for name, v in parts.items()},
        "in_process_seconds": _round(in_process.median),
        "in_process_ratio": _ratio(in_process.median, base),
        "recorded_server_seconds": _round(recorded.median),
        "recorded_server_ratio": _ratio(recorded.median, base),
        "recorded_ephemeral_seconds": _round(ephemeral.median),
        "recorded_ephemeral_ratio": _ratio(ephemeral.median, base),
        "ephemeral_repeat": ephemeral_repeat,
        "peak_rss_mib_in_process": round(max(in_process.max_rss_kib) / 1024, 1) if in_process.max_rss_kib else None,
        "peak_rss_mib_recorded": round(max(recorded.max_rss_kib) / 1024, 1) if recorded.max_rss_kib else None,
        "docker_requests": docker_requests(scenario, workdir),
        "kubernetes_requests": kube_requests(scenario),
        "failures": in_process.failures + recorded.failures + ephemeral.failures,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def markdown(results: list[dict[str, Any]]) -> str:
    """The figures as the table in docs/benchmarks.md."""
    lines = [
        "| size | containers / pods / listeners | baseline s | in-process s (x) | recorded, running server s (x) "
        "| recorded, ephemeral s (x) | peak RSS MiB | Docker requests | Kubernetes requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']} | {r['containers']} / {r['pods']} / {r['listeners']} | {r['baseline_seconds']} "
            f"| {r['in_process_seconds']} ({r['in_process_ratio']}x) "
            f"| {r['recorded_server_seconds']} ({r['recorded_server_ratio']}x) "
            f"| {r['recorded_ephemeral_seconds']} ({r['recorded_ephemeral_ratio']}x) "
            f"| {r['peak_rss_mib_in_process']} | {r['docker_requests']} | {r['kubernetes_requests']} |"
        )
    for r in results:
        parts = ", ".join(f"`{name}` {seconds}" for name, seconds in r["baseline_parts"].items())
        lines.append(f"\n{r['size']} baseline parts (median s): {parts}")
        lines.append(f"{r['size']} 1-min load average before/after: {r.get('load_average')} on {os.cpu_count()} cores")
        if r.get("switch"):
            lines.append(f"{r['size']} compose-only switch: {json.dumps(r['switch'])}")
        if r["failures"]:
            lines.append(f"{r['size']} failed runs: {r['failures']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--sizes", default="seed", help="comma-separated: seed, medium, large")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--ephemeral-repeat", type=int, default=2, help="runs on the ephemeral server")
    parser.add_argument("--no-switch", action="store_true", help="skip the compose-only switch (seed only)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--hold",
        action="store_true",
        help="build the first size, print its profile paths, and keep it until SIGTERM (for profiling)",
    )
    args = parser.parse_args(argv)
    sizes = [SIZES[name.strip()] for name in args.sizes.split(",") if name.strip()]

    from flows.local_server import local_server
    from tests.support.kube import FakeKubelet, start_control_plane

    # An installed package has its bytecode compiled at install; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 (as on CI machines) would recompile our modules on every run.
    compileall.compile_dir(str(REPO / "stackwarden"), quiet=1)
    compileall.compile_dir(str(REPO / "flows"), quiet=1)
    compileall.compile_dir(str(REPO / "tasks"), quiet=1)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swbench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        (work / "cp").mkdir()
        started = time.monotonic()
        control_plane = start_control_plane(work / "cp")
        stack.callback(control_plane.stop)
        kubelet = FakeKubelet(control_plane.admin_kubeconfig).start()
        stack.callback(kubelet.stop)
        (work / "server").mkdir()
        server = stack.enter_context(local_server(work / "server", port=free_ports(1)[0]))
        print(f"control plane, fake kubelet, Prefect server up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        if args.hold:
            with build(
                sizes[0], work / "hold" if (work / "hold").mkdir() is None else work, control_plane, kubelet
            ) as held:
                print(f"audit profile: {held.profile_path}\nswitch profile: {held.switch_profile_path}", flush=True)
                stop = {signal.SIGTERM, signal.SIGINT}
                signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # sigwait needs them blocked, or they kill us
                signal.sigwait(stop)
            return 0
        for size in sizes:
            scenario_dir = work / size.name
            scenario_dir.mkdir()
            built = time.monotonic()
            with build(size, scenario_dir, control_plane, kubelet) as scenario:
                print(f"{size.name}: scenario built in {time.monotonic() - built:.1f} s", file=sys.stderr)
                figures = measure(scenario, scenario_dir, server.client_env, args.repeat, args.ephemeral_repeat)
                if size.name == "seed" and not args.no_switch:
                    figures["switch"] = switch_figures(scenario, scenario_dir / "prefect-switch")
                results.append(figures)
                print(json.dumps(figures), file=sys.stderr)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
