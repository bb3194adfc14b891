"""As a new user would: scripts/deploy.sh (pool + deploy, twice: idempotent), a process worker
started in an empty directory with only PREFECT_API_URL and a profile, and a deployment run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flows.local_server import LocalServer
from stackwarden.profiles import load_profile
from tests.ops.conftest import small_profile
from tests.support.prefect_api import Api, poll
from tests.support.realparts import REPO, free_ports

pytestmark = [pytest.mark.prefect]


def test_deploy_script_creates_the_pool_and_a_bare_worker_runs_the_audit(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    profile_path = small_profile(tmp_path, free_ports(1)[0])
    name = load_profile(profile_path).name
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STACKWARDEN_", "PREFECT_"))},
        **ops_server.client_env,
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT": str(Path(sys.executable).parent / "prefect"),
    }
    for _ in range(2):  # a second run finds the pool and the deployments and updates them
        done = subprocess.run(
            ["scripts/deploy.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    deployment = next(d for d in api.deployments() if d["name"] == "audit-hourly")
    assert deployment["work_pool_name"] == "stackwarden-local"
    workdir = tmp_path / "empty"
    workdir.mkdir()
    worker_env = {**env, "STACKWARDEN_PROFILE": str(profile_path), "STACKWARDEN_HOST": "worker-host"}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [env["PREFECT"], "worker", "start", "--pool", "stackwarden-local", "--type", "process"],
            cwd=workdir,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run = api.post(f"/deployments/{deployment['id']}/create_flow_run", {"tags": ["worker-test"]})

        def finished() -> dict[str, object] | None:
            state = api.http.get(f"/flow_runs/{run['id']}").json()
            return state if state["state_type"] in {"COMPLETED", "FAILED", "CRASHED"} else None

        final = poll(finished, timeout=240, what="the worker to run the audit")
        logs = (tmp_path / "worker.log").read_text(errors="replace")
        assert final["state_type"] == "COMPLETED", logs[-3000:]
        assert final["name"] == f"audit-{name}"
        assert "FileNotFoundError" not in logs
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
