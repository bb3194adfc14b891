"""One real Prefect server for the operations tests (serve, fleet, automations, metrics, UI):
starting one costs seconds of a shared 2-core machine, so the module tests share it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.local_server import LocalServer
from tests.support.compose import unique_name
from tests.support.prefect_api import Api, real_prefect_server


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
