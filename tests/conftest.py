"""Shared fixtures: the real Docker engine and the seed scenario on high ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.compose import Project, compose_project, panic_backend, tcp_service, unique_name, wait_restarts
from tests.support.realparts import docker_ready, free_ports, host_listener, redis_server, require


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """The real engine, Compose v2 and the test image; fails under CI=true when missing."""
    ok, why = docker_ready()
    require(ok, why)


@dataclass(frozen=True)
class SeedScenario:
    """The seed's Docker-and-host half, running for real."""

    project: Project
    profile_path: Path
    ports: dict[str, int]
    host_postgres_pid: int
    host_redis_pid: int


def write_profile(path: Path, project: str, ports: dict[str, int], files: list[str], **extra: object) -> Path:
    """A test profile of the seed stack on the given ports."""
    data = {
        "name": project,
        "default_mode": "compose-only",
        "compose": {"project": project, "files": files, "network": f"{project}-network"},
        "services": {
            "backend": {"ports": [ports["backend"]], "host": {"executables": ["reconciliation-backend", "backend"]}},
            "frontend": {"ports": [ports["frontend"]], "host": {"executables": ["node"]}},
            "postgres": {
                "ports": [ports["postgres"]],
                "stateful": True,
                "host": {"executables": ["postgres"], "stop_signal": "SIGINT"},
            },
            "redis": {"ports": [ports["redis"]], "stateful": True, "host": {"executables": ["redis-server"]}},
        },
        **extra,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def seed_scenario(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedScenario]:
    """Compose: backend restart-looping on the spawn_local panic (exit 101), frontend running,
    postgres declaring a port a host "postgres" already holds (so it fails to bind), redis on
    127.0.0.1 shadowed by a real redis-server on ::1. Host ports are high and random."""
    tmp = tmp_path_factory.mktemp("seed")
    names = ("backend", "frontend", "postgres", "redis")
    ports = dict(zip(names, free_ports(4), strict=True))
    name = unique_name("swtest-seed")
    services = {
        "backend": panic_backend(),
        "frontend": tcp_service(1000, f"0.0.0.0:{ports['frontend']}:1000"),
        "postgres": tcp_service(5432, f"0.0.0.0:{ports['postgres']}:5432"),
        "redis": tcp_service(6379, f"127.0.0.1:{ports['redis']}:6379"),
    }
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(host_listener("postgres", "0.0.0.0", ports["postgres"]))
        project = stack.enter_context(compose_project(tmp, name, services))
        redis = stack.enter_context(redis_server(ports["redis"], "::1"))
        wait_restarts(project, "backend", at_least=2)
        profile = write_profile(tmp / "profile.yaml", name, ports, [str(project.file)])
        yield SeedScenario(project, profile, ports, pg.pid, redis.pid)
