"""A stateful container is stopped by the switch exactly as the report's commands say, on a real
Docker engine: its own clean stop signal (a database whose image says SIGINT is not sent SIGTERM,
which it may ignore), SIGTERM in place of an image's SIGKILL with the restart policy paused
(Docker restarts a container killed by any other signal than its own under ``always``), and no
restart afterwards either way. The plan is made from what the observation inspected."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from stackwarden.adapters.docker import observe_docker, start_container, stop_container
from stackwarden.commands import graceful_stop_commands
from stackwarden.errors import RefusedError
from stackwarden.model.plan import GracefulStop, graceful_stop
from stackwarden.model.snapshot import Container
from tests.support.compose import compose_project, unique_name
from tests.support.realparts import IMAGE

pytestmark = [pytest.mark.docker]

# PID 1 of each: exits 0 on its clean signal, ignores the other one
_ON_INT = 'trap "exit 0" INT; trap "" TERM; while true; do sleep 0.2; done'
_ON_TERM = 'trap "exit 0" TERM; trap "" INT; while true; do sleep 0.2; done'
SERVICES: dict[str, dict[str, Any]] = {
    "db": {"image": IMAGE, "command": ["sh", "-c", _ON_INT], "stop_signal": "SIGINT", "restart": "always"},
    "cache": {"image": IMAGE, "command": ["sh", "-c", _ON_TERM], "stop_signal": "SIGKILL", "restart": "always"},
}


def _observed(project: str) -> dict[str, Container]:
    """The containers of ``project`` as an audit sees them when both services are stateful."""
    seen = observe_docker(always_inspect=frozenset({(project, "db"), (project, "cache")}))
    return {c.compose_service or "": c for c in seen.containers if c.compose_project == project}


def _stays_down(inspect: dict[str, Any]) -> bool:
    return not inspect["State"]["Running"] and inspect["RestartCount"] == 0


def test_the_switch_and_the_printed_commands_stop_a_stateful_container_the_same_way(
    tmp_path: Path, docker_engine: None
) -> None:
    name = unique_name("swstateful")
    with compose_project(tmp_path, name, SERVICES) as project:
        observed = _observed(name)
        db, cache = observed["db"], observed["cache"]
        assert (db.stop_signal, db.restart_policy, db.inspected) == ("SIGINT", "always", True)
        assert (cache.stop_signal, cache.restart_policy) == ("SIGKILL", "always")
        planned = {service: graceful_stop(True, c) for service, c in observed.items()}
        assert planned["db"] == GracefulStop(signal="SIGINT")  # its own signal: Docker keeps it down
        assert planned["cache"] == GracefulStop(signal="SIGTERM", pause_restart_policy="always")

        for service, container in observed.items():
            how = planned[service]
            assert how is not None
            result = stop_container(container.id, name, 10, stateful=True, graceful=how)
            assert result.startswith(f"stopped by {how.signal}"), result
        time.sleep(3)  # long enough for Docker to have restarted either under "always"
        for service in SERVICES:
            after = project.inspect(service)
            assert _stays_down(after), f"{service} after the switch's stop: {after['State']}"
            assert after["HostConfig"]["RestartPolicy"]["Name"] == "always", "the policy is put back"

        for service, container in observed.items():  # the same stop, by hand from the report
            assert start_container(container.id, name) == "started"
            commands = graceful_stop_commands(container.name, 10, planned[service])
            for line in commands:
                subprocess.run(shlex.split(line), check=True, capture_output=True, timeout=30)
        time.sleep(3)
        for service in SERVICES:
            after = project.inspect(service)
            assert not after["State"]["Running"], f"{service} after the printed commands: {after['State']}"
            assert after["State"]["ExitCode"] == 0, "it exited on its clean signal, not by a kill"
            assert after["HostConfig"]["RestartPolicy"]["Name"] == "always"


def test_a_stateful_container_that_is_not_as_planned_is_refused(tmp_path: Path, docker_engine: None) -> None:
    name = unique_name("swstateful")
    with compose_project(tmp_path, name, {"db": SERVICES["db"]}) as project:
        db = _observed(name)["db"]
        # a plan made without its stop signal would send SIGTERM, which this database ignores
        with pytest.raises(RefusedError, match="changed since the plan"):
            stop_container(db.id, name, 5, stateful=True, graceful=GracefulStop(signal="SIGTERM"))
        assert project.inspect("db")["State"]["Running"], "a refused step changes nothing"
