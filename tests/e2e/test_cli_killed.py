"""A ``stackwarden switch`` killed with SIGKILL in the middle of a step: the temporary Prefect
server it started dies with it (no orphan), the next switch sets the dead run Crashed on the
server, repairs what it left half done before planning and says so; ``serve`` at start does
the same for the runs it finds."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import pytest
import yaml

from stackwarden.adapters.journal import Journal, read_interrupted
from stackwarden.adapters.lock import lock_dir
from stackwarden.model import Mode
from stackwarden.model.plan import Plan
from stackwarden.planner import plan
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import free_ports, host_listener, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _profile(tmp_path: Path, name: str, compose_file: Path, port: int) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "compose": {"project": name, "files": [str(compose_file)]},
                "switch": {"settle_seconds": 1},
                "services": {
                    "postgres": {
                        "ports": [port],
                        "stateful": True,
                        "host": {"executables": ["postgres"], "stop_signal": "SIGINT", "grace_period_seconds": 30},
                    }
                },
            }
        )
    )
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def _journal_has_an_intent(name: str) -> bool:
    return any('"type":"intent"' in p.read_text() for p in lock_dir().glob(f"journal-{name}-*.jsonl"))


def _servers_of(pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(pid).children(recursive=True)
        if any("create_app" in part for part in child.cmdline())
    ]


def _gone(processes: list[psutil.Process]) -> bool:
    def dead(p: psutil.Process) -> bool:
        try:
            return p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(p) for p in processes)


def test_a_killed_switch_leaves_no_server_and_the_next_one_repairs_and_crashes_its_run(
    tmp_path: Path, docker_engine: None
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swtest-killed")
    with (
        host_listener("postgres", "127.0.0.1", port, slow_stop=4) as host_pg,
        compose_project(tmp_path, name, {"postgres": tcp_service(5432, f"127.0.0.1:{port}:5432")}) as project,
    ):
        profile = _profile(tmp_path, name, project.file, port)
        argv = [
            sys.executable,
            "-m",
            "flows.cli",
            "switch",
            "compose-only",
            "--profile",
            str(profile),
            "--apply",
            "--yes",
        ]
        first = subprocess.Popen(argv, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: _journal_has_an_intent(name) or first.poll() is not None, 300, "the switch's first step")
            assert first.poll() is None, first.communicate()
            servers = _servers_of(first.pid)
            assert servers, "the switch runs on a temporary Prefect server of its own"
        finally:
            os.kill(first.pid, signal.SIGKILL)  # the CLI alone: its server must not outlive it
            first.communicate(timeout=30)
        wait_for(lambda: _gone(servers), 30, "the temporary Prefect server to stop with its CLI")
        wait_for(lambda: host_pg.poll() is not None, 30, "the host postgres to finish its clean stop")
        assert len(read_interrupted(name)) == 1

        second = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=400, check=False)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "An interrupted switch was found and repaired before planning" in second.stdout
        assert "marked Crashed" in second.stdout
        assert project.inspect("postgres")["State"]["Running"]  # converged: the container owns the port now
        assert read_interrupted(name) == []
        with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as db:
            states = [row[0] for row in db.execute("select state_type from flow_run order by start_time")]
        assert states == ["CRASHED", "COMPLETED"], states


def test_serve_at_start_announces_an_interrupted_switch_and_crashes_its_run(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from flows.interrupted import announce_interrupted
    from tests.support.fakeworld import World, fake_profile

    @flow(name=unique_name("killed-switch"))
    def killed() -> None:
        """Stands in for a switch whose process died while its run was Running."""

    async def running_run() -> str:
        async with get_client() as client:
            run = await client.create_flow_run(killed)
            await client.set_flow_run_state(run.id, Running(), force=True)
            return str(run.id)

    async def state_of(run_id: str) -> Any:
        async with get_client() as client:
            return (await client.read_flow_run(UUID(run_id))).state

    run_id = asyncio.run(running_run())
    profile = fake_profile()
    the_plan: Plan = plan(World(container="exited", replicas=2).snapshot(), profile, Mode.COMPOSE_ONLY)
    journal = Journal.begin(the_plan, flow_run_id=run_id)
    journal.intent(the_plan.steps[0], "forward")
    journal.close()  # its process "died"
    try:
        lines = announce_interrupted([profile])
        assert any(line.startswith("interrupted switch of fake: a switch of fake to compose-only") for line in lines)
        assert f"recorded run {run_id} set Crashed" in lines
        assert asyncio.run(state_of(run_id)).type.value == "CRASHED"
    finally:
        journal.path.unlink()
