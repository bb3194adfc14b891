"""Approvals last as long as people need: a switch paused for approval, on a real server with
authentication, under ``stackwarden serve`` and under ``stackwarden worker``, is still Paused
after six minutes (Prefect killed such runs after about 3 min 48 s when they held a deployment
concurrency slot, whose lease lapses while a run is paused), and approved then, it applies.

Six minutes must not lengthen the suite: ``test_long_pauses_begin`` is marked ``session_first``
and ``test_approved_after_six_minutes_the_switches_apply`` ``session_last`` (tests/conftest.py
orders them), so the runs wait while every other test runs, and the last test only waits for
what is left of the six minutes. The runs live in the session-scoped ``long_pauses`` fixture.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.local_server import LocalServer
from tests.ops.conftest import SwitchableStack, switchable_stack
from tests.ops.test_worker import deploy, operator_env
from tests.support.prefect_api import Api, poll, stackwarden_serve

pytestmark = [pytest.mark.prefect, pytest.mark.docker]

LONG_ENOUGH = 6 * 60 + 5
"""Past the 3 min 48 s at which a lapsed concurrency lease killed a paused run, and a second renewal."""


@dataclass
class Paused:
    """One switch run waiting for approval, how it is served, and since when it waits."""

    how: str
    run_id: str
    stack: SwitchableStack
    since: float
    output: Path


@pytest.fixture(scope="session")
def long_pauses(ops_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Paused]]:
    api = Api.of(ops_server)
    paused: list[Paused] = []
    with contextlib.ExitStack() as running:
        serve_dir = tmp_path_factory.mktemp("long-serve")
        stack = running.enter_context(switchable_stack(serve_dir, "swlong"))
        host = f"{stack.name}-host"
        args = ["--profile", str(stack.profile_path), "--audit-every", "1h", "--host-name", host]
        env = {**ops_server.client_env, "PREFECT_HOME": str(serve_dir / "client")}
        running.enter_context(stackwarden_serve(args, env, serve_dir / "serve.log"))
        paused.append(_start(api, "serve", f"switch-{stack.name}-compose-only@{host}", stack, serve_dir / "serve.log"))

        worker_dir = tmp_path_factory.mktemp("long-worker")
        stack = running.enter_context(switchable_stack(worker_dir, "swlongw"))
        host = f"{stack.name}-host"
        env = operator_env(ops_server, worker_dir / "home")
        deploy(env, host)
        worker_env = {**env, "STACKWARDEN_PROFILE": str(stack.profile_path), "STACKWARDEN_HOST": host}
        running.enter_context(_worker(worker_env, worker_dir / "worker.log"))
        paused.append(_start(api, "worker", f"switch-compose-only@{host}", stack, worker_dir / "worker.log"))
        yield paused
    api.close()


@contextlib.contextmanager
def _worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "worker"],
            cwd=log.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=90)


def _state(api: Api, run_id: str) -> dict[str, Any]:
    return dict(api.http.get(f"/flow_runs/{run_id}").json())


def _start(api: Api, how: str, deployment: str, stack: SwitchableStack, output: Path) -> Paused:
    """A run of ``deployment`` as the UI's Run button makes it, once it waits for approval."""
    found = poll(
        lambda: next((d for d in api.deployments() if d["name"] == deployment), None), 180, f"{how}: {deployment}"
    )
    run_id = str(api.post(f"/deployments/{found['id']}/create_flow_run", {})["id"])
    poll(
        lambda: _state(api, run_id)["state_type"] == "PAUSED",
        240,
        f"the {how} switch to pause; output: {output.read_text(errors='replace')[-2000:]}",
    )
    return Paused(how, run_id, stack, time.monotonic(), output)


@pytest.mark.session_first
def test_long_pauses_begin(long_pauses: list[Paused], api: Api) -> None:
    assert {p.how for p in long_pauses} == {"serve", "worker"}
    for pause in long_pauses:
        assert _state(api, pause.run_id)["state_type"] == "PAUSED", pause.how


@pytest.mark.session_last
@pytest.mark.timeout(1200)
def test_approved_after_six_minutes_the_switches_apply(long_pauses: list[Paused], api: Api) -> None:
    wait = max(p.since for p in long_pauses) + LONG_ENOUGH - time.monotonic()
    if wait > 0:  # the suite ran faster than six minutes (or only this file runs)
        time.sleep(wait)
    for pause in long_pauses:
        state = _state(api, pause.run_id)
        waited = time.monotonic() - pause.since
        assert state["state_type"] == "PAUSED", (pause.how, waited, state["state"], pause.output.read_text()[-3000:])
        assert waited >= 6 * 60, waited
        api.post(f"/flow_runs/{pause.run_id}/resume", {"run_input": {"approve": True, "comment": f"{pause.how}: go"}})
    for pause in long_pauses:
        final = poll(
            lambda pause=pause: (
                (s := _state(api, pause.run_id))["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} and s
            ),
            300,
            f"the {pause.how} switch to finish",
        )
        assert final["state_type"] == "COMPLETED", (pause.how, final["state"], pause.output.read_text()[-3000:])
        assert pause.stack.shadow.wait(timeout=60) == 0, f"{pause.how}: the switch stopped the shadowing host process"
        verdict = next(
            a for a in api.artifacts(pause.run_id) if a["key"] == f"stackwarden-{pause.stack.name}-switch-verdict"
        )
        assert f"{pause.how}: go" in verdict["data"], verdict["data"]
        switched = poll(
            lambda pause=pause: [
                e
                for e in api.events("stackwarden.mode.switched", labels={"stackwarden.profile": [pause.stack.name]})
                if e["payload"].get("approval_comment") == f"{pause.how}: go"
            ],
            60,
            f"the {pause.how} switch's mode.switched event with the approver's comment",
        )
        assert switched[0]["payload"]["mode"] == "compose-only"
