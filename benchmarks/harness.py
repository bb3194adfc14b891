"""Timing harness: whole processes on a built scenario, against the baseline commands a person
would type for the same answer, timed in the same run.

Each figure is the median of repeated runs of a whole process (interpreter start and imports
included), as a person at a terminal meets it. Peak RSS comes from ``wait4`` on the child.
API requests are counted where they arrive: a counting proxy in front of the Docker socket,
and the kube-apiserver's audit log.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scenario import EXECUTABLES, Scenario
from tests.support.realparts import REPO


@dataclass(frozen=True)
class Run:
    """One whole process: wall seconds, peak RSS (KiB), exit code, stdout."""

    seconds: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str


# Runs the measured command as its own child and reports that child's wall time and peak RSS.
# Why a wrapper: Linux keeps a process's peak RSS across exec, and a child forked straight from
# this harness (which holds the fake kubelet's cache of every pod) would start from the
# harness's size; forked from this small process its floor is a few MiB.
_MEASURE = """
import os, resource, subprocess, sys, time
out = sys.argv[1]
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    handle.write(f"{seconds} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(code)
"""


def run_process(argv: Sequence[str], env: dict[str, str] | None = None, stdin: int | None = None) -> Run:
    """Run ``argv`` to its end; its wall time and its own peak RSS (measured by a small wrapper)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures"
        wrapped = [sys.executable, "-c", _MEASURE, str(figures), *argv]
        proc = subprocess.run(wrapped, stdout=out, stderr=err, stdin=stdin, env=env, cwd=REPO, check=False)
        seconds, max_rss = figures.read_text().split()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        return Run(float(seconds), int(max_rss), proc.returncode, stdout, stderr)


def pipeline_seconds(first: Sequence[str], second: Sequence[str]) -> float:
    """Wall time of ``first | second`` (two processes and a pipe, no shell)."""
    started = time.perf_counter()
    left = subprocess.Popen(list(first), stdout=subprocess.PIPE)
    right = subprocess.Popen(list(second), stdin=left.stdout, stdout=subprocess.DEVNULL)
    assert left.stdout is not None
    left.stdout.close()
    right.wait()
    left.wait()
    return time.perf_counter() - started


def baseline_commands(scenario: Scenario) -> list[tuple[str, Callable[[], float]]]:
    """The commands a person runs for the same answer, each a callable returning its seconds."""
    kube = ["kubectl", "--kubeconfig", str(scenario.kubeconfig), "--context", scenario.context]
    project = ["docker", "compose", "-p", scenario.project.name, "-f", str(scenario.project.file)]
    lsof = ["lsof", "-nP", *[arg for port in scenario.ports.values() for arg in ("-i", f"TCP:{port}")]]
    pattern = "|".join(re.escape(e) for e in EXECUTABLES)

    def timed(argv: Sequence[str]) -> Callable[[], float]:
        return lambda: run_process(argv).seconds

    return [
        ("docker compose ps", timed([*project, "ps", "-a"])),
        ("kubectl get pods -n NS", timed([*kube, "get", "pods", "-n", scenario.namespace])),
        ("lsof -i (profile ports)", timed(lsof)),
        ("ps aux | grep (executables)", lambda: pipeline_seconds(["ps", "aux"], ["grep", "-E", pattern])),
        ("kubectl get services -n NS", timed([*kube, "get", "services", "-n", scenario.namespace])),
        ("docker network ls", timed(["docker", "network", "ls"])),
    ]


def time_baseline(scenario: Scenario) -> tuple[float, dict[str, float]]:
    """One pass of the baseline in sequence: total seconds and each command's."""
    parts = {name: call() for name, call in baseline_commands(scenario)}
    return sum(parts.values()), parts


def cli(*args: str) -> list[str]:
    """The installed CLI, as a person runs it (``stackwarden ...``)."""
    return [sys.executable, "-m", "flows.cli", *args]


def clean_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without Prefect settings, with its own PREFECT_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(prefect_home), **extra)
    return env


def audit_args(scenario: Scenario, *extra: str) -> list[str]:
    return cli("audit", "--profile", str(scenario.profile_path), "--fail-on", "critical", *extra)


@dataclass
class Series:
    """Repeated measurements of one way of running."""

    seconds: list[float] = field(default_factory=list)
    max_rss_kib: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, run: Run, ok_codes: tuple[int, ...] = (0, 1)) -> None:
        if run.returncode not in ok_codes:
            self.failures.append(f"exit {run.returncode}: {run.stderr.strip().splitlines()[-1:] or ''}")
            return
        self.seconds.append(run.seconds)
        self.max_rss_kib.append(run.max_rss_kib)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def docker_requests(scenario: Scenario, workdir: Path) -> int:
    """Docker API requests of one in-process audit, counted by a proxy in front of the socket."""
    from tests.support.http_proxy import CountingProxy

    proxy = CountingProxy(listen_path=workdir / "docker-proxy.sock")
    proxy.start()
    try:
        env = clean_env(workdir / "prefect-count", DOCKER_HOST=proxy.docker_host)
        run = run_process(audit_args(scenario, "--no-record", "--fresh"), env)
        if run.returncode not in (0, 1):
            raise RuntimeError(f"counted audit failed: {run.stderr[-500:]}")
        return len(proxy.requests)
    finally:
        proxy.stop()


def kube_requests(scenario: Scenario) -> int:
    """Kubernetes API requests of one in-process audit, from the apiserver's audit log."""
    from tests.support.kube import audit_events, audit_offset

    offset = audit_offset(scenario.control_plane)
    run = run_process(audit_args(scenario, "--no-record", "--fresh"), clean_env(Path(tempfile.mkdtemp())))
    if run.returncode not in (0, 1):
        raise RuntimeError(f"counted audit failed: {run.stderr[-500:]}")
    time.sleep(1)  # the audit log is written as each request completes; let the last one land
    return len(audit_events(scenario.control_plane, "viewer", offset))


def switch_figures(scenario: Scenario, prefect_home: Path) -> dict[str, Any]:
    """A compose-only switch on the scenario: the plan's largest stop grace period, and the
    wall time of ``switch compose-only --apply --yes`` (a recorded flow)."""
    env = clean_env(prefect_home)
    profile = str(scenario.switch_profile_path)
    plan = run_process(cli("switch", "compose-only", "--profile", profile, "--json"), env)
    doc = json.loads(plan.stdout) if plan.stdout.strip().startswith("{") else {}
    steps = (doc.get("plan") or {}).get("steps") or []
    graces = [
        float(value)
        for step in steps
        for key, value in step.items()
        if key in {"timeout_seconds", "grace_seconds"} and isinstance(value, int | float)
    ]
    applied = run_process(cli("switch", "compose-only", "--profile", profile, "--apply", "--yes", "--json"), env)
    outcome = json.loads(applied.stdout) if applied.stdout.strip().startswith("{") else {}
    journal = outcome.get("journal") or []
    return {
        "dry_run_seconds": round(plan.seconds, 2),
        "steps": [f"{s.get('kind')} {s.get('service')}" for s in steps],
        "largest_grace_seconds": max(graces) if graces else 0.0,
        "apply_seconds": round(applied.seconds, 2),
        "apply_exit": applied.returncode,
        "status": outcome.get("status"),
        "steps_seconds": round(sum(float(r.get("duration_seconds", 0)) for r in journal), 2),
        "error": "" if applied.returncode in (0, 1, 5) else applied.stderr.strip()[-300:],
    }
