"""systemd: a unit read from /proc/PID/cgroup under a user manager (user@UID.service/...) is never
trusted, however it is named. A real redis-server moved into a cgroup v2 directory named like
user.slice/user-1000.slice/user@1000.service/app.slice/redis-server.service is stopped by its
signal, and systemctl is never called (a recording systemctl first on PATH proves it)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psutil
import pytest
import yaml

from flows.switch import run_switch
from stackwarden.adapters.host import process_info
from stackwarden.model.plan import StopProcess, SwitchStatus
from tests.support.cgroups import unit_cgroup
from tests.support.realparts import free_ports, redis_server, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

USER_UNIT = "user.slice/user-1000.slice/user@1000.service/app.slice/redis-server.service"


def test_a_process_in_a_user_manager_unit_is_stopped_by_signal_not_systemctl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine: None, prefect_server: None
) -> None:
    calls = tmp_path / "systemctl.calls"
    shim = tmp_path / "bin" / "systemctl"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 0\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    (port,) = free_ports(1)
    with unit_cgroup(USER_UNIT) as leaf, redis_server(port, "127.0.0.1") as redis:
        (leaf / "cgroup.procs").write_text(str(redis.pid))
        assert f"/{USER_UNIT}\n" in Path(f"/proc/{redis.pid}/cgroup").read_text()
        seen = process_info(redis.pid)
        assert seen is not None and seen.systemd_unit is None  # not trusted as a system unit
        profile = tmp_path / "profile.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": "swfault-unit",
                    "compose": {"project": f"swfault-unit-{secrets.token_hex(3)}", "files": ["/nonexistent.yml"]},
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
        outcome = run_switch(mode="k8s-only", profile_path=str(profile), apply=True, deadline_seconds=20)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        (step,) = outcome.plan.steps
        assert isinstance(step, StopProcess) and step.pid == redis.pid
        assert step.systemd_unit is None and step.signal == "SIGTERM"
        wait_for(lambda: redis.poll() is not None, 10, "redis-server to exit")
        assert not psutil.pid_exists(redis.pid) or psutil.Process(redis.pid).status() == psutil.STATUS_ZOMBIE
    assert not calls.exists(), calls.read_text()
