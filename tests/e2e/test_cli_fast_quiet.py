"""The CLI's two ways of running an audit, as a person at a terminal meets them: in process by
default (no Prefect, no kubernetes client loaded), recorded when asked or when a Prefect API is
configured; the report alone on stdout, Prefect's log lines only with -v."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SeedScenario, write_profile
from tests.support.realparts import REPO, free_ports

pytestmark = pytest.mark.prefect

# Runs the real CLI entry point, then reports which heavy top-level packages it loaded.
_PROBE = """
import json, sys
from flows.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"prefect", "kubernetes"})
print("LOADED=" + json.dumps(heavy), file=sys.stderr)
sys.exit(code)
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environ.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **extra)
    return environ


def _probe(args: list[str], tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=REPO,
        timeout=300,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("LOADED=")]
    assert lines, result.stderr[-3000:]
    return result, json.loads(lines[-1].removeprefix("LOADED="))


def _compose_host_profile(tmp_path: Path) -> Path:
    names = ("backend", "frontend", "postgres", "redis")
    return write_profile(
        tmp_path / "p.yaml", "swtest-lazy", dict(zip(names, free_ports(4), strict=True)), ["compose.yaml"]
    )


def test_help_validate_and_in_process_audit_load_neither_prefect_nor_kubernetes(tmp_path: Path) -> None:
    profile = _compose_host_profile(tmp_path)
    helped, loaded = _probe(["--help"], tmp_path)
    assert helped.returncode == 0 and "usage: stackwarden" in helped.stdout and loaded == []

    valid, loaded = _probe(["profile", "validate", str(profile)], tmp_path)
    assert valid.returncode == 0 and "valid profile" in valid.stdout and loaded == []

    audit, loaded = _probe(["audit", "--profile", str(profile), "--json", "--fail-on", "critical"], tmp_path)
    assert audit.returncode == 0, audit.stderr[-3000:]
    assert loaded == []
    doc = json.loads(audit.stdout)
    assert {r["runtime"] for r in doc["snapshot"]["runtimes"]} == {"compose", "host"}

    # a switch's dry run is planned and preflighted in process too: no Prefect server, no flow
    dry, loaded = _probe(["switch", "compose-only", "--profile", str(profile), "--json"], tmp_path)
    assert dry.returncode in {0, 4}, dry.stderr[-3000:]
    assert loaded == []
    assert json.loads(dry.stdout)["status"] in {"dry-run", "refused"}

    # with a Prefect API configured the same command chooses the recorded run (here the API
    # does not answer: the point is the choice, which the one-line failure shows)
    recorded, _ = _probe(
        ["audit", "--profile", str(profile), "--fail-on", "critical"],
        tmp_path,
        PREFECT_API_URL="http://127.0.0.1:9/api",
    )
    assert recorded.returncode == 3
    assert "the Prefect API at http://127.0.0.1:9/api does not answer" in recorded.stderr
    forced, _ = _probe(
        ["audit", "--profile", str(profile), "--no-record", "--fail-on", "critical"],
        tmp_path,
        PREFECT_API_URL="http://127.0.0.1:9/api",
    )
    assert forced.returncode == 0 and "## " in forced.stdout


@pytest.mark.docker
def test_in_process_audit_prints_the_report_alone(seed_scenario: SeedScenario, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "audit", "--profile", str(seed_scenario.profile_path)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout.lstrip().startswith("#") and "## Conflict Resolution Status" in result.stdout
    # stderr: the fail-on verdict only; no log lines, no progress line (stderr is not a terminal)
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("stackwarden: ")
    ]
    assert not (tmp_path / "prefect-home").exists()  # nothing was recorded, nothing was written


@pytest.mark.docker
def test_record_uses_the_ephemeral_server_and_logs_only_with_verbose(
    seed_scenario: SeedScenario, tmp_path: Path
) -> None:
    args = [sys.executable, "-m", "flows.cli", "audit", "--profile", str(seed_scenario.profile_path), "--record"]
    quiet = subprocess.run(args, capture_output=True, text=True, env=_env(tmp_path), timeout=400, check=False)
    assert quiet.returncode == 1, quiet.stderr[-3000:]
    assert "## Conflict Resolution Status" in quiet.stdout
    assert "Created flow run" not in quiet.stderr and "Finished in state" not in quiet.stderr
    assert "Created flow run" not in quiet.stdout

    # the run was recorded in the ephemeral server's database, with its task runs
    database = tmp_path / "prefect-home" / "prefect.db"
    with sqlite3.connect(database) as db:
        flow_runs = [row[0] for row in db.execute("select name from flow_run")]
        task_runs = {row[0] for row in db.execute("select name from task_run")}
    assert flow_runs == [f"audit-{seed_scenario.project.name}"]
    assert "observe-docker" in task_runs and f"diagnose-{seed_scenario.project.name}" in task_runs

    loud = subprocess.run([*args, "-v"], capture_output=True, text=True, env=_env(tmp_path), timeout=400, check=False)
    assert loud.returncode == 1, loud.stderr[-3000:]
    assert "Finished in state" in loud.stderr
    assert "Finished in state" not in loud.stdout and "## Conflict Resolution Status" in loud.stdout
