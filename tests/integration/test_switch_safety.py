"""Safety of a switch with real parts: no data lost, volumes kept, refusals change nothing,
identities re-checked, one switch at a time, and a run killed halfway converges on rerun."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.adapters.host import stop_process
from stackwarden.adapters.lock import switch_lock
from stackwarden.errors import RefusedError
from stackwarden.model.plan import PREVIOUS_REPLICAS, Outcome, SwitchStatus
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.datastores import (
    DatastoreUnavailable,
    postgres_os_user,
    postgres_server,
    redis_server_persistent,
)
from tests.support.realparts import IMAGE, free_ports, host_listener, require, run, wait_for
from tests.support.stack import REPLICAS, fresh_stack

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _compose_profile(
    path: Path, project: str, compose_file: Path, ports: dict[str, int], pg_user: str | None = None
) -> Path:
    """Postgres and redis on the host, in compose; ``pg_user``: the user the host postgres runs as
    when it is not the one running the switch (a real postgres never runs as root)."""
    path.write_text(
        yaml.safe_dump(
            {
                "name": project,
                "compose": {"project": project, "files": [str(compose_file)]},
                "services": {
                    "postgres": {
                        "ports": [ports["postgres"]],
                        "stateful": True,
                        "host": {
                            "executables": ["postgres"],
                            "stop_signal": "SIGINT",
                            "grace_period_seconds": 60,
                            **({"user": pg_user} if pg_user else {}),
                        },
                    },
                    "redis": {
                        "ports": [ports["redis"]],
                        "stateful": True,
                        "host": {"executables": ["redis-server"], "grace_period_seconds": 60},
                    },
                },
            }
        )
    )
    return path


def test_no_data_lost_when_a_switch_stops_real_datastores(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    ports = dict(zip(("postgres", "redis"), free_ports(2), strict=True))
    name = unique_name("swtest-data")
    services = {
        "postgres": tcp_service(5432, f"127.0.0.1:{ports['postgres']}:5432"),
        "redis": tcp_service(6379, f"127.0.0.1:{ports['redis']}:6379"),
    }
    try:
        stack = contextlib.ExitStack()
        pg = stack.enter_context(postgres_server(tmp_path / "pg", ports["postgres"]))
        redis = stack.enter_context(redis_server_persistent(tmp_path, ports["redis"]))
    except DatastoreUnavailable as exc:
        require(False, str(exc))
    with stack:
        pg.write_rows(500)
        for i in range(200):
            redis.set(f"key:{i}", f"value-{i}")
        project = stack.enter_context(compose_project(tmp_path, name, services))
        profile = _compose_profile(tmp_path / "p.yaml", name, project.file, ports, pg_user=postgres_os_user())

        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=60)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        assert outcome.verdict.outcome is Outcome.PASSED
        assert pg.wait_exit(5) == 0 and redis.wait_exit(5) == 0  # graceful exits, no SIGKILL
        assert pg.clean_shutdown_logged() and redis.clean_shutdown_logged()

        project.compose("stop", "--timeout", "2")  # hand the ports back to the host servers
        pg.restart()
        redis.restart()
        assert pg.count_rows() == 500
        assert redis.get("key:199") == "value-199" and redis.get("key:0") == "value-0"
        assert pg.clean_shutdown_logged()  # the restart found a cleanly shut down cluster


def test_compose_volume_survives_mode_round_trip(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet, postgres_volume=True) as s:
        for mode in ("compose-only", "k8s-only", "compose-only"):
            outcome = run_switch(mode=mode, profile_path=str(s.profile_path), apply=True, deadline_seconds=90)
            assert outcome.status is SwitchStatus.SWITCHED, f"{mode}: {outcome.message}"
        volume = f"{s.project.name}_pgdata"
        assert run(["docker", "volume", "inspect", volume]).returncode == 0
        boots = run(["docker", "run", "--rm", "-v", f"{volume}:/data", IMAGE, "cat", "/data/boots"]).stdout
        assert len(boots.strip().splitlines()) == 2  # started, stopped, started again: one volume throughout


def test_unknown_process_on_a_profile_port_refuses_the_switch(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    ports = dict(zip(("postgres", "redis"), free_ports(2), strict=True))
    name = unique_name("swtest-unknown")
    services = {"redis": tcp_service(6379, None), "postgres": tcp_service(5432, None)}
    with (
        host_listener("mystery-daemon", "127.0.0.1", ports["redis"]) as stranger,
        host_listener("postgres", "127.0.0.1", ports["postgres"]) as ours,
        compose_project(tmp_path, name, services) as project,
    ):
        profile = _compose_profile(tmp_path / "p.yaml", name, project.file, ports)
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True)
        assert outcome.status is SwitchStatus.REFUSED
        assert f"port {ports['redis']} is held by process mystery-daemon (PID {stranger.pid})" in outcome.message
        assert outcome.journal == ()
        assert stranger.poll() is None and ours.poll() is None  # not even the profile's own process was stopped


def test_reused_pid_is_refused_and_not_signalled(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with host_listener("postgres", "127.0.0.1", port) as proc:
        real = psutil.Process(proc.pid)
        with pytest.raises(RefusedError, match=f"PID {proc.pid} is now a different process"):
            stop_process(
                pid=proc.pid,
                create_time=real.create_time() - 3600,  # what the plan saw: a process started an hour earlier
                exe=real.exe(),
                signal_name="SIGINT",
                grace_seconds=5,
                systemd_unit=None,
                stateful=True,
                force=False,
            )
        time.sleep(0.5)
        assert proc.poll() is None


def test_a_planned_process_that_exited_meanwhile_is_already_stopped_not_a_different_one(tmp_path: Path) -> None:
    """A process that exits between plan and stop stays a zombie until its parent reaps it; its
    exe can no longer be read. It is the planned process, gone: not "a different process"."""
    (port,) = free_ports(1)
    with host_listener("postgres", "127.0.0.1", port, slow_stop=0) as proc:
        seen = psutil.Process(proc.pid)
        create_time, exe = seen.create_time(), seen.exe()
        proc.send_signal(signal.SIGTERM)  # exits; the test (its parent) does not reap it yet
        wait_for(lambda: seen.status() == psutil.STATUS_ZOMBIE, 10, "the listener to become a zombie")
        result = stop_process(
            pid=proc.pid,
            create_time=create_time,
            exe=exe,
            signal_name="SIGINT",
            grace_seconds=5,
            systemd_unit=None,
            stateful=True,
            force=False,
        )
        assert result == "already stopped"


def _cli(args: list[str], tmp_path: Path, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        **kwargs,
    )


def test_second_concurrent_switch_fails_fast_naming_the_holder(tmp_path: Path, docker_engine: None) -> None:
    ports = dict(zip(("postgres", "redis"), free_ports(2), strict=True))
    name = unique_name("swtest-lock")
    with compose_project(tmp_path, name, {"redis": tcp_service(6379, None)}) as project:
        profile = _compose_profile(tmp_path / "p.yaml", name, project.file, ports)
        with switch_lock(name, "flow run first-switch-of-the-test"):
            proc = _cli(["switch", "compose-only", "--profile", str(profile), "--apply", "--yes"], tmp_path)
            _, err = proc.communicate(timeout=300)
        assert proc.returncode == 4, err[-2000:]
        assert "another switch of profile" in err and "first-switch-of-the-test" in err
        assert _states(project) == {f"{name}-redis-1": "running"}


def _states(project: Any) -> dict[str, str]:
    return {c["Names"]: c["State"] for c in project.containers()}


def test_run_killed_halfway_converges_on_rerun(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet, slow_postgres_stop=6) as s:
        apps = k8s.AppsV1Api(s.api)
        proc = _cli(["switch", "compose-only", "--profile", str(s.profile_path), "--apply", "--yes"], tmp_path)
        try:
            wait_for(
                lambda: all(apps.read_namespaced_deployment(n, s.namespace).spec.replicas == 0 for n in REPLICAS),
                180,
                "the first steps (scale-downs) of the killed run",
            )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        # halfway: the workloads are down, the port not yet handed to the postgres container
        assert _states(s.project)[f"{s.project.name}-postgres-1"] != "running"

        outcome = run_switch(mode="compose-only", profile_path=str(s.profile_path), apply=True, deadline_seconds=90)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        # the killed run left postgres with no owner (its workload at 0, its host process being
        # stopped, its container not started): the rerun gave it its workload back before it
        # planned, and said so; the other workloads' scale-downs were not redone
        repairs = " ".join(outcome.repairs)
        assert "found: a switch of" in repairs and "repaired: Deployment" in repairs and "/postgres" in repairs
        assert [step.service for step in outcome.plan.steps if step.kind == "scale-workload"] == ["postgres"]
        for name, count in REPLICAS.items():
            annotations = apps.read_namespaced_deployment(name, s.namespace).metadata.annotations or {}
            assert annotations[PREVIOUS_REPLICAS] == str(count)  # the first run's record, not 0
        assert run_switch(mode="compose-only", profile_path=str(s.profile_path), apply=True).plan.steps == ()


def test_stateful_container_is_not_sigkilled_without_force(tmp_path: Path, docker_engine: None) -> None:
    from stackwarden.adapters.docker import stop_container
    from stackwarden.errors import StackwardenError

    name = unique_name("swtest-stubborn")
    # busybox httpd as PID 1 ignores SIGTERM: a database that will not stop on its signal
    stubborn = {"image": IMAGE, "command": ["httpd", "-f", "-p", "5432"], "restart": "always"}
    with compose_project(tmp_path, name, {"postgres": stubborn}) as project:
        cid = project.inspect("postgres")["Id"]
        with pytest.raises(StackwardenError, match="not SIGKILLed without --force"):
            stop_container(cid, name, 2, stateful=True)
        after = project.inspect("postgres")
        assert after["State"]["Running"] and after["HostConfig"]["RestartPolicy"]["Name"] == "always"
        assert "stopped" in stop_container(cid, name, 2, stateful=True, force=True)
        assert not project.inspect("postgres")["State"]["Running"]
