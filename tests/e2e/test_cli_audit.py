"""`stackwarden audit` end to end: the real CLI, the real Prefect (ephemeral server), the real
engine and processes; exit codes per --fail-on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FullSeed, SeedScenario, write_profile
from tests.support.realparts import free_ports

pytestmark = pytest.mark.prefect


def _cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environ.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **env)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )


@pytest.mark.docker
def test_audit_renders_the_seed_report(seed_scenario: SeedScenario, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    result = _cli(["audit", "--profile", str(seed_scenario.profile_path), "--output", str(report)], tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "at or above high" in result.stderr
    text = report.read_text()
    ports = seed_scenario.ports
    for section in (
        "## Executive Summary",
        "## Detected Conflicts",
        "## Conflict Resolution Status",
        "## Diagnostic Commands",
    ):
        assert section in text
    pg_row = f"| Port conflict {ports['postgres']} (postgres) | 🔴 Active | Critical |"
    assert f"{pg_row} Stop process postgres (PID {seed_scenario.host_postgres_pid}) |" in text
    assert f"| Port conflict {ports['redis']} (redis) | 🔴 Active | Critical |" in text
    assert "| Backend crash loop | 🔴 Active | Critical | Fix code issue |" in text
    assert "| Dual deployment | ⚠️ Active | High | Choose one method |" in text
    assert "| Network isolation | ✅ OK | OK | None |" in text
    assert "spawn_local called from outside of a task::LocalSet" in text
    assert "crash-loop:backend" in result.stdout  # the summary printed beside --output


def test_unreachable_docker_completes_and_exits_per_fail_on(tmp_path: Path) -> None:
    names = ("backend", "frontend", "postgres", "redis")
    profile = write_profile(
        tmp_path / "p.yaml", "swtest-nodocker", dict(zip(names, free_ports(4), strict=True)), ["compose.yaml"]
    )
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such-engine.sock"}

    # the default mode (compose-only) runs every service on the engine that cannot be read: not
    # seeing it is high, never an all-clear
    strict = _cli(["audit", "--profile", str(profile), "--json", "--fail-on", "high"], tmp_path, **env)
    assert strict.returncode == 1, strict.stderr[-3000:]
    doc = json.loads(strict.stdout)
    compose = next(r for r in doc["snapshot"]["runtimes"] if r["runtime"] == "compose")
    assert compose["reachable"] is False and "no-such-engine.sock" in compose["error"]
    assert [(f["id"], f["severity"]) for f in doc["findings"]] == [("runtime-unreachable:compose", "high")]

    lenient = _cli(["audit", "--profile", str(profile), "--fail-on", "critical"], tmp_path, **env)
    assert lenient.returncode == 0, lenient.stderr[-3000:]
    assert "incomplete: compose not observed" in lenient.stdout


def test_malformed_profile_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncompose: {project: x}\nservices:\n  db:\n    ports: [99999]\n")
    for args in (["profile", "validate", str(bad)], ["audit", "--profile", str(bad)]):
        result = _cli(args, tmp_path)
        assert result.returncode == 2
        assert f"{bad}: services.db.ports[0]: Input should be less than or equal to 65535" in result.stderr
        assert "Traceback" not in result.stderr


def test_help_documents_exit_codes_and_bad_options_exit_2(tmp_path: Path) -> None:
    helped = _cli(["audit", "--help"], tmp_path)
    assert helped.returncode == 0 and "exit codes:" in helped.stdout and "--fail-on SEVERITY" in helped.stdout
    wrong = _cli(["audit", "--fail-on", "catastrophic"], tmp_path)
    assert wrong.returncode == 2 and "invalid Severity value" in wrong.stderr


@pytest.mark.docker
@pytest.mark.kube
def test_audit_of_the_whole_seed_scenario(full_seed: FullSeed, tmp_path: Path) -> None:
    result = _cli(["audit", "--profile", str(full_seed.profile_path), "--fail-on", "critical"], tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    text = result.stdout
    ns = full_seed.cluster.namespace
    table = text.split("## Conflict Resolution Status", 1)[1].split("## Next Steps", 1)[0]
    assert "| Dual deployment | ⚠️ Active | High | Choose one method |" in table
    assert "| Backend crash loop | 🔴 Active | Critical | Fix code issue |" in table
    assert table.count("| 🔴 Active | Critical | Stop process") == 2  # postgres and redis
    assert "| Network isolation | ✅ OK | OK | None |" in table
    config = text.split("## Current Configuration", 1)[1].split("## Recommendations", 1)[0]
    assert f"**Active Context:** `{full_seed.cluster.context}`" in config
    assert "allowed for remediation" in config
    assert "(running at https://127.0.0.1:" in config
    assert f"**Namespace:** `{ns}`" in config
    assert f"`{full_seed.scenario.project.name}-network`" in config
    # kubectl commands carry the profile's kubeconfig and the observed context, so they act on
    # the cluster the report describes whatever the shell's current context is
    kubectl = f"kubectl --kubeconfig {full_seed.cluster.kubeconfig} --context {full_seed.cluster.context} -n {ns}"
    assert f"{kubectl} get pods -o wide" in text
    assert f"{kubectl} scale deployment/backend --replicas=0" in text
    assert "the same root cause in compose and kubernetes" in text
    assert "Service backend-service: ClusterIP (internal only, no host port)" in text
