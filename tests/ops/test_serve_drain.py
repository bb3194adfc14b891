"""Stopping ``stackwarden serve`` (SIGTERM, as systemd does) while runs are in flight, against a
real Prefect server: an audit that is still observing finishes and stays Completed (Prefect's own
runner would cancel it, or rewrite a run that had just completed as Cancelled); a switch paused
for approval has changed nothing, so it is cancelled at once instead of holding the stop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.local_server import LocalServer
from tests.ops.conftest import small_profile, switchable_stack
from tests.support.prefect_api import Api, poll, stackwarden_serve
from tests.support.realparts import free_ports, host_listener

pytestmark = [pytest.mark.prefect]


def _state(api: Api, run_id: str) -> dict[str, Any]:
    return dict(api.http.get(f"/flow_runs/{run_id}").json())


def _start(api: Api, deployment: str) -> str:
    """A run of the deployment ``serve`` registers, created as the UI's Run button does."""
    found = poll(
        lambda: next((d for d in api.deployments() if d["name"] == deployment), None),
        timeout=120,
        what=f"serve to register {deployment}",
    )
    return str(api.post(f"/deployments/{found['id']}/create_flow_run", {})["id"])


def _final(api: Api, run_id: str) -> dict[str, Any]:
    return poll(
        lambda: (s := _state(api, run_id))["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} and s,
        timeout=60,
        what=f"flow run {run_id} to reach a final state",
    )


def test_sigterm_lets_an_audit_in_flight_finish(ops_server: LocalServer, api: Api, tmp_path: Path) -> None:
    squat_port, engine_port = free_ports(2)
    profile_path = small_profile(tmp_path, squat_port)
    data = yaml.safe_load(profile_path.read_text())
    data["timeouts"] = {"connect_seconds": 3, "read_seconds": 12}  # the hung engine holds the audit ~12 s
    profile_path.write_text(yaml.safe_dump(data, sort_keys=False))
    name = data["name"]
    host = f"host-{name}"
    env = {
        **ops_server.client_env,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "DOCKER_HOST": f"tcp://127.0.0.1:{engine_port}",  # accepts, never answers
    }
    args = ["--profile", str(profile_path), "--audit-every", "1h", "--host-name", host]
    with (
        host_listener("swhung-engine", "127.0.0.1", engine_port),
        stackwarden_serve(args, env, tmp_path / "serve.log") as serve,
    ):
        run_id = _start(api, f"audit-{name}@{host}")
        poll(lambda: _state(api, run_id)["state_type"] == "RUNNING", timeout=120, what=f"the audit of {name} to run")
        serve.terminate()  # SIGTERM while the audit waits on the engine
        stopped_at = time.monotonic()
        assert serve.wait(timeout=90) == 0
        assert _state(api, run_id)["state_type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    took = time.monotonic() - stopped_at
    log = (tmp_path / "serve.log").read_text()
    assert "waiting up to 300 s for runs in flight" in log
    assert f"Waiting for flow run 'audit-{name}'" in log
    assert took < 60, f"serve took {took:.0f}s to stop after the audit finished"


def test_sigterm_cancels_a_switch_paused_for_approval_at_once(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    with switchable_stack(tmp_path, "swdrain") as stack:
        name, shadow = stack.name, stack.shadow  # the switch would stop the shadow, once approved
        host = f"{name}-host"
        env = {**ops_server.client_env, "PREFECT_HOME": str(tmp_path / "client-home")}
        args = ["--profile", str(stack.profile_path), "--audit-every", "1h", "--host-name", host]
        with stackwarden_serve(args, env, tmp_path / "serve.log") as serve:
            switch_id = _start(api, f"switch-{name}-compose-only@{host}")
            poll(lambda: _state(api, switch_id)["state_type"] == "PAUSED", timeout=180, what="the switch to pause")
            stopped_at = time.monotonic()
            serve.terminate()
            assert serve.wait(timeout=90) == 0
            took = time.monotonic() - stopped_at
        assert took < 45, f"a paused switch held the stop for {took:.0f}s (the drain allows 300 s)"
        assert _final(api, switch_id)["state_type"] == "CANCELLED"
        assert shadow.poll() is None, "the host process was touched though the switch was never approved"


def test_sigterm_while_serve_registers_its_deployments_stops_cleanly(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    profile_path = small_profile(tmp_path, free_ports(1)[0])
    name = yaml.safe_load(profile_path.read_text())["name"]
    host = f"host-{name}"
    log = tmp_path / "serve.log"
    env = {**ops_server.client_env, "PREFECT_HOME": str(tmp_path / "client-home")}
    args = ["--profile", str(profile_path), "--audit-every", "1h", "--host-name", host]
    with stackwarden_serve(args, env, log) as serve:
        # printed before the deployments are registered and before the runner starts
        poll(lambda: "deployment(s) for host" in log.read_text(), timeout=120, what="serve to begin registering")
        serve.terminate()
        assert serve.wait(timeout=90) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    audit = poll(
        lambda: next((d for d in api.deployments() if d["name"] == f"audit-{name}@{host}"), None),
        timeout=30,
        what="the audit deployment",
    )
    if "while starting" in text:  # the signal came before the runner was up: it still paused on the way out
        assert audit["paused"], "a deployment left scheduled with no runner to serve it"
