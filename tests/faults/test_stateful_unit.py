"""A stateful service in a systemd system unit is never stopped with ``systemctl stop`` (systemd
SIGKILLs what is left after TimeoutStopSec): its main process gets the clean signal through
``systemctl kill --kill-whom=main --signal=...`` and the switch waits for it itself; a unit that
systemd would start again after a clean exit (``Restart=always``) is refused before anything
changes. This machine has no systemd: a real redis-server sits in a cgroup v2 directory named
system.slice/redis-server.service, and a recording ``systemctl`` first on PATH answers ``show``
and carries out ``kill`` on that process. What the switch calls and what it prints are the same."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import yaml

from stackwarden.commands import step_commands
from stackwarden.model import Mode
from stackwarden.model.plan import StopProcess, SwitchOutcome, SwitchStatus
from stackwarden.profiles import load_profile
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
from tests.support.cgroups import unit_cgroup
from tests.support.realparts import free_ports, redis_server, wait_for

pytestmark = [pytest.mark.docker]

UNIT = "redis-server.service"

SYSTEMCTL = """#!/bin/sh
# records every call; answers show; carries out kill on the unit's main process
echo "$@" >> {calls}
case "$1" in
  show)
    case "$2" in
      --property=LoadState) echo loaded ;;
      --property=Restart) cat {restart} ;;
    esac ;;
  kill)
    signal=$(echo "$3" | sed 's/--signal=SIG//')
    kill -s "$signal" "$(cat {main_pid})" ;;
esac
exit 0
"""


def _profile(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "swfault-stateful-unit",
                "compose": {"project": f"swfault-unit-{secrets.token_hex(3)}", "files": ["/nonexistent.yml"]},
                "switch": {"settle_seconds": 1},
                "services": {
                    "redis": {
                        "ports": [port],
                        "stateful": True,
                        "host": {"executables": ["redis-server"], "grace_period_seconds": 10},
                        "no_home": "stop",  # k8s-only, no cluster side: stop it wherever it runs
                    }
                },
            }
        )
    )
    return path


def _switch(profile_path: Path) -> SwitchOutcome:
    profile = load_profile(profile_path)
    outcome = run(profile, Mode.K8S_ONLY, LocalExecutor(profile), apply=True, options=Options(deadline_seconds=15))
    assert isinstance(outcome, SwitchOutcome)
    return outcome


@pytest.mark.parametrize("restart", ["on-failure", "always"])
def test_a_stateful_unit_gets_its_clean_signal_never_systemctl_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine: None, restart: str
) -> None:
    calls, restart_file, main_pid = tmp_path / "calls", tmp_path / "restart", tmp_path / "main-pid"
    restart_file.write_text(f"{restart}\n")
    shim = tmp_path / "bin" / "systemctl"
    shim.parent.mkdir()
    shim.write_text(SYSTEMCTL.format(calls=calls, restart=restart_file, main_pid=main_pid))
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    (port,) = free_ports(1)
    with unit_cgroup(f"system.slice/{UNIT}") as leaf, redis_server(port, "127.0.0.1") as redis:
        (leaf / "cgroup.procs").write_text(str(redis.pid))
        main_pid.write_text(str(redis.pid))
        outcome = _switch(_profile(tmp_path, port))
        (step,) = outcome.plan.steps
        assert isinstance(step, StopProcess) and step.systemd_unit == UNIT and step.stateful
        called = calls.read_text().splitlines()
        assert not [c for c in called if c.startswith("stop")], called  # never systemctl stop
        if restart == "always":  # systemd would start it again at once: refused before any change
            assert outcome.status is SwitchStatus.REFUSED, outcome.message
            assert f"systemd unit {UNIT} has Restart=always" in outcome.message
            assert not [c for c in called if c.startswith("kill")] and redis.poll() is None
            return
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        wait_for(lambda: redis.poll() is not None, 10, "redis-server to exit")
        assert redis.returncode == 0  # a clean exit on its SIGTERM, no SIGKILL
        kill = f"kill --kill-whom=main --signal=SIGTERM -- {UNIT}"
        assert kill in called
        # what a person is shown is what the switch did: the same systemctl kill, then the wait
        printed = step_commands(step)
        assert printed[0] == f"systemctl {kill}"
        assert printed[1].startswith(f"timeout 10 sh -c 'while ps -o stat= -p {redis.pid} ")
