"""One real Prefect server for the operations tests (serve, fleet, automations, metrics, UI):
starting one costs seconds of a shared 2-core machine, so the module tests share it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from flows.local_server import LocalServer
from tests.support.compose import Project, compose_project, tcp_service, unique_name
from tests.support.prefect_api import Api, real_prefect_server
from tests.support.realparts import docker_ready, free_ports, host_listener, require


@pytest.fixture(scope="session")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A real ``prefect server start`` (SQLite) on a free port with its own PREFECT_HOME."""
    with real_prefect_server(tmp_path_factory.mktemp("ops-prefect-home")) as server:
        yield server


@pytest.fixture
def api(ops_server: LocalServer) -> Iterator[Api]:
    client = Api.of(ops_server)
    yield client
    client.close()


def small_profile(directory: Path, port: int, name: str | None = None) -> Path:
    """A profile of the test's own: one service on a high port, its own compose project, no
    cluster side (so a host without a cluster is healthy, not failing)."""
    name = name or unique_name("swops")
    data = {
        "name": name,
        "default_mode": "compose-only",
        "compose": {"project": name, "files": [str(directory / "compose.yaml")]},
        "services": {"api": {"ports": [port], "host": {"executables": ["swops-api"]}, "runtime": "compose"}},
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class SwitchableStack:
    """A stack a compose-only switch changes: its compose container serves on 127.0.0.1:P, and a
    host process of the profile (``shadow``) holds [::1]:P; the switch stops the shadow."""

    name: str
    port: int
    profile_path: Path
    project: Project
    shadow: subprocess.Popen[str]


@contextlib.contextmanager
def switchable_stack(directory: Path, prefix: str) -> Iterator[SwitchableStack]:
    """The compose project, the shadowing host process and the profile (root's, in ``directory``)."""
    ok, why = docker_ready()
    require(ok, why)
    (port,) = free_ports(1)
    name = unique_name(prefix)
    executable = f"{prefix}-api"[:15]  # the process name ps shows (15 characters at most)
    with (
        compose_project(directory, name, {"api": tcp_service(8080, f"127.0.0.1:{port}:8080")}) as project,
        host_listener(executable, "::1", port) as shadow,
    ):
        profile_path = directory / f"{name}.yaml"
        profile = {
            "name": name,
            "default_mode": "compose-only",
            "compose": {"project": name, "files": [str(project.file)]},
            "services": {"api": {"ports": [port], "host": {"executables": [executable]}, "runtime": "compose"}},
            "timeouts": {"read_seconds": 60},  # a shared, loaded machine: a slow engine is not a missing one
        }
        profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        yield SwitchableStack(name, port, profile_path, project, shadow)
