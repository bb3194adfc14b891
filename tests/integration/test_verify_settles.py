"""Verify means it stays that way, with real processes and containers: a supervisor that restarts
the process the switch stopped a second later, and a container that dies a second after its
start, fail verify instead of being reported switched (the invariants must hold on consecutive
observations spanning the profile's ``switch.settle_seconds``). The switch runs in process."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.model import Mode
from stackwarden.model.plan import SwitchOutcome, SwitchStatus
from stackwarden.profiles import load_profile
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
from tests.support.compose import compose_project, unique_name
from tests.support.realparts import _LISTENER, IMAGE, free_ports, listening, named_interpreter, wait_for

pytestmark = [pytest.mark.docker]


def _switch(profile_path: Path, mode: Mode, deadline: float) -> SwitchOutcome:
    profile = load_profile(profile_path)
    outcome = run(profile, mode, LocalExecutor(profile), apply=True, options=Options(deadline_seconds=deadline))
    assert isinstance(outcome, SwitchOutcome)
    return outcome


def test_a_process_a_supervisor_restarts_a_second_later_fails_verify(tmp_path: Path, docker_engine: None) -> None:
    (port,) = free_ports(1)
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": "swsettle-sup",
                "compose": {"project": f"swsettle-{secrets.token_hex(3)}", "files": ["/nonexistent.yml"]},
                "switch": {"settle_seconds": 5},
                "services": {
                    "worker": {
                        "ports": [port],
                        "host": {"executables": ["swworker"], "grace_period_seconds": 5},
                        "no_home": "stop",  # k8s-only without a cluster side: stop it wherever it runs
                    }
                },
            }
        )
    )
    script = tmp_path / "listener.py"
    script.write_text(_LISTENER)
    # a file called swworker: a host service is the file its process runs, not its name
    listener = shlex.join([named_interpreter("swworker"), str(script), "swworker", "127.0.0.1", str(port), "0"])
    supervisor = subprocess.Popen(  # a restart loop, as systemd's Restart=always or supervisord would be
        ["bash", "-c", f"while true; do {listener}; sleep 1; done"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: listening(port), 15, "the supervised worker")
        outcome = _switch(profile, Mode.K8S_ONLY, deadline=10)
        assert [s.kind for s in outcome.plan.steps] == ["stop-process"]
        assert outcome.journal[0].status == "applied"  # it stopped; the supervisor brought it back
        assert outcome.status is not SwitchStatus.SWITCHED, outcome.message
        assert outcome.verdict is not None
        assert any("worker: still runs under host" in f for f in outcome.verdict.failures), outcome.verdict.failures
        assert listening(port)  # the supervisor's new copy
    finally:
        os.killpg(supervisor.pid, signal.SIGKILL)
        supervisor.wait(10)


def test_a_container_that_dies_a_second_after_its_start_fails_verify(tmp_path: Path, docker_engine: None) -> None:
    (port,) = free_ports(1)
    name = unique_name("swsettle")
    # serves at once, then exits 1 three seconds later (and stays down: no restart policy)
    brief: dict[str, Any] = {
        "image": IMAGE,
        "command": ["sh", "-c", "httpd -p 8080; sleep 3; exit 1"],
        "ports": [f"127.0.0.1:{port}:8080"],
        "init": True,
    }
    with compose_project(tmp_path, name, {"web": brief}) as project:
        project.compose("stop", "--timeout", "1")
        profile = tmp_path / "profile.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "switch": {"settle_seconds": 5},
                    "services": {"web": {"ports": [port]}},
                }
            )
        )
        outcome = _switch(profile, Mode.COMPOSE_ONLY, deadline=8)
        assert [s.kind for s in outcome.plan.steps] == ["start-container"]
        assert outcome.journal[0].status == "applied"
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
        assert "web: not up under compose: no running container" in outcome.message
        assert not project.inspect("web")["State"]["Running"]
