"""As a new user would, on a real server with authentication: scripts/deploy.sh for two hosts (each
twice: idempotent, and neither overwrites the other), then ``stackwarden worker`` started in an
empty directory with only the server's settings and a profile.

The worker runs a scheduled-style audit; a run created with job variables (an environment that
names another profile) and a deployment edited through the API (a pull step) change nothing it
reads or runs; a switch waits for approval, and its rejection, like a refusal, is one warning
line: no ERROR and no traceback in the run's log or on the worker's output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.local_server import LocalServer
from tests.ops.conftest import switchable_stack
from tests.support.prefect_api import Api, poll
from tests.support.realparts import REPO

pytestmark = [pytest.mark.prefect, pytest.mark.docker]

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def deploy(env: dict[str, str], host: str) -> None:
    """scripts/deploy.sh as an operator runs it on ``host``."""
    done = subprocess.run(
        ["scripts/deploy.sh"],
        cwd=REPO,
        env={**env, "STACKWARDEN_HOST": host},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def operator_env(server: LocalServer, home: Path) -> dict[str, str]:
    """A clean environment: the server's client settings (client.env) and a Prefect home."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STACKWARDEN_", "PREFECT_"))},
        **server.client_env,
        "PREFECT_HOME": str(home),
        "PREFECT": str(Path(sys.executable).parent / "prefect"),
    }


def test_deploy_per_host_and_a_worker_that_takes_no_choices(ops_server: LocalServer, api: Api, tmp_path: Path) -> None:
    with switchable_stack(tmp_path, "swwork") as stack:
        host = f"{stack.name}-host"
        env = operator_env(ops_server, tmp_path / "home")
        for _ in range(2):  # a second run finds the pool and the deployments and updates them
            deploy(env, host)
        deploy(env, f"{host}-b")  # another host on the same server
        ours = {d["name"]: d for d in api.deployments() if d["name"].endswith(f"@{host}")}
        assert set(ours) == {f"{kind}@{host}" for kind in ("audit-hourly", *_switches())}
        assert all(d["work_pool_name"] == f"stackwarden-{host}" for d in ours.values())
        assert all(d["parameters"]["host"] == host and f"host:{host}" in d["tags"] for d in ours.values())
        theirs = {d["name"] for d in api.deployments() if d["name"].endswith(f"@{host}-b")}
        assert len(theirs) == 4, "the second host's deploy replaced the first host's deployments"
        workdir = tmp_path / "empty"
        workdir.mkdir()
        log = tmp_path / "worker.log"
        worker_env = {**env, "STACKWARDEN_PROFILE": str(stack.profile_path), "STACKWARDEN_HOST": host}
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "worker"],
                cwd=workdir,
                env=worker_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _check_runs(api, ours, stack, tmp_path, log)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=90)
        output = log.read_text(errors="replace")
        assert f"stackwarden worker: pool stackwarden-{host}, host {host}" in output
        assert "Traceback" not in output, output[-4000:]
        assert not re.search(r"\|\s*ERROR\s*\|", output), [line for line in output.splitlines() if "ERROR" in line]


def _switches() -> list[str]:
    return [f"switch-{mode}" for mode in ("compose-only", "k8s-only", "hybrid-guarded")]


def _run(api: Api, deployment: dict[str, Any], **body: Any) -> str:
    return str(api.post(f"/deployments/{deployment['id']}/create_flow_run", body)["id"])


def _state(api: Api, run_id: str) -> dict[str, Any]:
    return dict(api.http.get(f"/flow_runs/{run_id}").json())


def _final(api: Api, run_id: str, log: Path) -> dict[str, Any]:
    return poll(
        lambda: (s := _state(api, run_id))["state_type"] in FINAL and s,
        240,
        f"run {run_id} to end; worker output: {log.read_text(errors='replace')[-2000:]}",
    )


def _quiet_logs(api: Api, run_id: str) -> list[dict[str, Any]]:
    """The run's logs once its last line is in; none at ERROR level, no traceback."""
    logs = poll(
        lambda: (
            (found := api.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}))
            and any(r["task_run_id"] is None and "Finished in state" in r["message"] for r in found)
            and found
        ),
        60,
        f"the logs of run {run_id}",
    )
    loud = [(r["level"], r["message"][:300]) for r in logs if r["level"] >= 40 or "Traceback" in r["message"]]
    assert not loud, loud
    return list(logs)


def _check_runs(api: Api, ours: dict[str, dict[str, Any]], stack: Any, tmp_path: Path, log: Path) -> None:
    host = ours[next(iter(ours))]["parameters"]["host"]
    audit, switch = ours[f"audit-hourly@{host}"], ours[f"switch-compose-only@{host}"]
    elsewhere = tmp_path / "elsewhere.yaml"
    shutil.copyfile(stack.profile_path, elsewhere)
    marker = tmp_path / "pulled"
    api.http.patch(
        f"/deployments/{audit['id']}",
        json={"pull_steps": [{"prefect.deployments.steps.run_shell_script": {"script": f"touch {marker}"}}]},
        headers=api.csrf_headers(),
    ).raise_for_status()
    run_id = _run(api, audit, job_variables={"env": {"STACKWARDEN_PROFILES": str(elsewhere)}, "command": "false"})
    final = _final(api, run_id, log)
    assert final["state_type"] == "COMPLETED", final["state"]
    assert final["name"] == f"audit-{stack.name}" and final["parameters"]["host"] == host
    assert f"host:{host}" in final["tags"]
    assert not marker.exists(), "a pull step edited through the API ran as root"
    refused = _final(api, _run(api, switch, parameters={"profile_path": str(elsewhere)}), log)
    assert refused["state_type"] == "FAILED" and refused["state"]["message"].startswith("refused: "), refused["state"]
    _quiet_logs(api, refused["id"])
    paused = _run(api, switch)
    poll(lambda: _state(api, paused)["state_type"] == "PAUSED", 240, "the worker's switch to pause for approval")
    api.post(f"/flow_runs/{paused}/resume", {"run_input": {"approve": False, "comment": "worker says no"}})
    rejected = _final(api, paused, log)
    assert rejected["state_type"] == "CANCELLED" and rejected["state"]["name"] == "Rejected", rejected["state"]
    assert any("worker says no" in r["message"] for r in _quiet_logs(api, paused))
    assert stack.shadow.poll() is None, "the host process was touched though nothing was approved"
