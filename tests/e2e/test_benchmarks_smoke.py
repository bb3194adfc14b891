"""The benchmark harness works end to end on the seed size (CI's smoke run): scenario built on
the real engines, every figure measured, the requests counted, the scenario removed. No timing
is asserted: a benchmark is not a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.realparts import REPO, docker_ready, require

pytestmark = [pytest.mark.docker, pytest.mark.kube, pytest.mark.prefect]


def test_python_m_benchmarks_measures_the_seed(tmp_path: Path) -> None:
    ready, why = docker_ready()
    require(ready, f"Docker engine with Compose v2 and the test image: {why}")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--sizes",
            "seed",
            "--repeat",
            "1",
            "--ephemeral-repeat",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (seed,) = json.loads(out.read_text())
    assert seed["size"] == "seed" and seed["failures"] == []
    for key in ("baseline_seconds", "in_process_seconds", "recorded_server_seconds", "recorded_ephemeral_seconds"):
        assert isinstance(seed[key], float) and seed[key] > 0, key
    assert set(seed["baseline_parts"]) == {
        "docker compose ps",
        "kubectl get pods -n NS",
        "lsof -i (profile ports)",
        "ps aux | grep (executables)",
        "kubectl get services -n NS",
        "docker network ls",
    }
    assert seed["peak_rss_mib_in_process"] > 10
    assert seed["docker_requests"] > 0 and seed["kubernetes_requests"] > 0
    switch = seed["switch"]
    assert switch["steps"] and switch["apply_seconds"] > 0 and switch["status"], switch
    assert "| seed | 4 / 9 / 2 |" in result.stdout
    # the scenario is gone: no container of a benchmark project is left behind
    projects = subprocess.run(
        ["docker", "ps", "-a", "--format", '{{.Label "com.docker.compose.project"}}'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [p for p in projects if p.startswith("swbench-seed")]


def test_python_m_benchmarks_watch_measures_a_detection(tmp_path: Path) -> None:
    """The live view's benchmark works end to end on one injection of one kind (a process that
    binds a profile port): watch and serve run, the latency to the line and to the event are
    measured, everything is removed."""
    ready, why = docker_ready()
    require(ready, f"Docker engine with Compose v2 and the test image: {why}")
    out = tmp_path / "watch.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.watch",
            "latency",
            "--injections",
            "1",
            "--kinds",
            "port",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    port = json.loads(out.read_text())["figures"]["kinds"]["port"]
    assert port["measured"] == 1 and port["failures"] == [], port
    assert port["watch_p50"] > 0 and port["event_p50"] > 0
