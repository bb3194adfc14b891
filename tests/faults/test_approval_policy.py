"""Policy is code: a run of a switch deployment pauses for approval in the UI even when the run
was created with ``approval: auto`` and ``force: true``; the form names the plan's digest, and
a rejection changes nothing. The run is created from a real deployment on a real Prefect server
and executed by Prefect's own flow engine, as a worker would."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_engine import run_flow
from prefect.flow_runs import resume_flow_run

from flows.switch import switch_flow
from stackwarden.model.plan import SwitchOutcome, SwitchStatus
from stackwarden.report.approval import grouped
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


async def _deployment_run(parameters: dict[str, Any]) -> FlowRun:
    async with get_client() as client:
        flow_id = await client.create_flow(switch_flow)
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name=unique_name("switch-policy"), entrypoint="flows/switch.py:switch_flow"
        )
        return await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)


async def _state(run_id: UUID) -> Any:
    async with get_client() as client:
        return (await client.read_flow_run(run_id)).state


async def _input_description(run_id: UUID) -> str:
    """The description of the pause's input form (what the UI shows above it)."""
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    state = run.state
    keyset = state.state_details.run_input_keyset if state is not None else None
    if not keyset or "description" not in keyset:
        return ""
    from prefect.input.actions import read_flow_run_input

    return str(await read_flow_run_input(keyset["description"], flow_run_id=run_id) or "")


def _run_until_paused(flow_run: FlowRun, parameters: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run the deployment's flow run as a worker would (Prefect's own engine, in a thread) until
    it pauses for approval; the thread and where its end state (or error) will be put."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["state"] = run_flow(switch_flow, flow_run=flow_run, parameters=parameters, return_type="state")
        except BaseException as exc:  # surfaced in the assertions of the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    state = None
    while time.monotonic() < deadline and thread.is_alive():
        state = asyncio.run(_state(flow_run.id))
        if state is not None and state.type is StateType.PAUSED:
            break
        time.sleep(1)
    assert state is not None and state.type is StateType.PAUSED, f"never paused: {state} {result}"
    return thread, result


def test_a_deployment_run_pauses_whatever_its_parameters(
    tmp_path: Path, docker_engine: None, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swfault-ap")
    with compose_project(tmp_path, name, {"web": tcp_service(80, f"127.0.0.1:{port}:80")}) as project:
        project.compose("stop", "web")
        profile = tmp_path / "profile.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {"web": {"ports": [port]}},
                    "timeouts": {"read_seconds": 60},  # a loaded shared machine: a slow engine is no absent one
                }
            )
        )
        # what serve fixes for its runs: the profiles they may act on, and (the test harness's
        # server has no authentication) that an open server was accepted
        monkeypatch.setenv("STACKWARDEN_PROFILES", str(profile))
        monkeypatch.setenv("STACKWARDEN_ALLOW_UNAUTHENTICATED_API", "1")
        parameters = {
            "mode": "compose-only",
            "profile": name,
            "apply": True,
            "approval": "auto",  # overridden for this run: must not skip the approval
            "force": True,
            "deadline_seconds": 20,
        }
        flow_run = asyncio.run(_deployment_run(parameters))
        assert flow_run.deployment_id is not None
        thread, result = _run_until_paused(flow_run, parameters)
        assert project.containers()[0]["State"] == "exited"  # nothing applied while it waits
        description = asyncio.run(_input_description(flow_run.id))
        assert "Plan digest (sha256)" in description, description
        # beside the plan: which file, in which version, and what it names
        assert str(profile) in description and str(project.file) in description, description
        assert grouped(hashlib.sha256(profile.read_bytes()).hexdigest()) in description, description
        assert "Cluster: no cluster side" in description
        resume_flow_run(flow_run.id, run_input={"approve": False, "comment": "policy test"})
        thread.join(120)
        outcome = result["state"].result(raise_on_failure=False)
        assert isinstance(outcome, SwitchOutcome) and outcome.status is SwitchStatus.REJECTED, result
        assert grouped(outcome.plan.digest) in description  # the form showed the digest of the plan it paused on
        assert project.containers()[0]["State"] == "exited"


def test_a_deployment_switch_refuses_a_server_that_lets_anyone_in(
    tmp_path: Path, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test harness's server answers API calls without credentials: anyone who reaches it
    could start and approve a switch, so a deployment run of a switch refuses it (before it
    observes anything) unless the operator accepted such a server."""
    name = unique_name("swfault-open")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {"name": name, "compose": {"project": name, "files": [str(tmp_path / "c.yaml")]}, "services": {"web": {}}}
        )
    )
    monkeypatch.setenv("STACKWARDEN_PROFILES", str(profile))
    monkeypatch.delenv("STACKWARDEN_ALLOW_UNAUTHENTICATED_API", raising=False)
    parameters = {"mode": "compose-only", "profile": name, "apply": True, "approval": "ui"}
    flow_run = asyncio.run(_deployment_run(parameters))
    state = run_flow(switch_flow, flow_run=flow_run, parameters=parameters, return_type="state")
    assert state.is_failed(), state
    assert "answers API calls without authentication" in (state.message or ""), state.message


def test_an_approved_deployment_run_never_forces(
    tmp_path: Path, docker_engine: None, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created with ``force: true`` and approved: a stateful host process that outlives its grace
    period is not SIGKILLed (only a person at a terminal may force). With the override gone, the
    process would be killed and the switch would go through; here it still runs afterwards and
    the switch did not end switched."""
    from tests.support.realparts import host_listener

    (port,) = free_ports(1)
    name = unique_name("swfault-force")
    with compose_project(tmp_path, name, {"db": tcp_service(80, f"127.0.0.1:{port}:80")}) as project:
        project.compose("stop", "db")  # the port goes to the host process
        with host_listener("swforce-db", "127.0.0.1", port, slow_stop=300) as holder:
            _never_forced(tmp_path, name, project.file, port, pid=holder.pid, monkeypatch=monkeypatch)


def _never_forced(
    tmp_path: Path, name: str, compose_file: Path, port: int, *, pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the switch as a deployment run with ``force: true``, approve it, check what survived."""
    from tests.support.realparts import alive

    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "compose": {"project": name, "files": [str(compose_file)]},
                "switch": {"settle_seconds": 0},
                "services": {
                    "db": {
                        "ports": [port],
                        "stateful": True,
                        "host": {"executables": ["swforce-db"], "grace_period_seconds": 2},
                    }
                },
                "timeouts": {"read_seconds": 60},
            }
        )
    )
    monkeypatch.setenv("STACKWARDEN_PROFILES", str(profile))
    monkeypatch.setenv("STACKWARDEN_ALLOW_UNAUTHENTICATED_API", "1")
    parameters = {
        "mode": "compose-only",
        "profile": name,
        "apply": True,
        "approval": "ui",
        "force": True,  # overridden for this run: a deployment run never forces
        "deadline_seconds": 20,
    }
    flow_run = asyncio.run(_deployment_run(parameters))
    thread, result = _run_until_paused(flow_run, parameters)
    resume_flow_run(flow_run.id, run_input={"approve": True, "comment": "approved, not forced"})
    thread.join(180)
    assert "state" in result, result
    outcome = result["state"].result(raise_on_failure=False)
    assert isinstance(outcome, SwitchOutcome), outcome
    assert alive(pid), "a deployment run SIGKILLed a stateful process: force was not dropped"
    assert outcome.status is not SwitchStatus.SWITCHED, outcome.message
    assert "not SIGKILLed without --force" in outcome.message or any(
        "not SIGKILLed without --force" in (r.error or "") for r in outcome.journal
    ), (outcome.message, outcome.journal)
