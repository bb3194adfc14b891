"""Prefect settings never weaken a live observation: with results persisted by
default, the same observe task with the same inputs in the same flow run is still run again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prefect import flow
from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

from flows.audit import observe_all
from stackwarden.model.snapshot import Snapshot
from stackwarden.profiles import load_profile
from tests.conftest import write_profile
from tests.support.realparts import free_ports

pytestmark = pytest.mark.prefect


@flow(name="observe-twice")
def _observe_twice(profile_path: str, port: int) -> tuple[Snapshot, Snapshot]:
    profile = load_profile(profile_path)
    before = observe_all(profile)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        after = observe_all(profile)
    return before, after


def test_observations_are_not_served_from_a_cache(prefect_server: None, tmp_path: Path) -> None:
    names = ("backend", "frontend", "postgres", "redis")
    ports = dict(zip(names, free_ports(4), strict=True))
    profile = write_profile(tmp_path / "p.yaml", "swtest-nocache", ports, ["compose.yaml"])
    with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}):
        before, after = _observe_twice(str(profile), ports["redis"])
    assert not any(listener.port == ports["redis"] for listener in before.listeners)
    assert any(listener.port == ports["redis"] for listener in after.listeners)
    assert after.taken_at > before.taken_at
