"""A container whose inspect fails is described from what is left: its list entry's Status
(exit code, rounded uptime) and the engine's ``die`` events. A crash loop caught in the moment
it is up again must still read as a crash loop, never as a healthy container."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from stackwarden.adapters.docker import Reader, describe_container, listed_exit_code, listed_uptime
from stackwarden.errors import PermanentError
from stackwarden.model import ContainerDeath
from stackwarden.model.snapshot import INSPECT_GAP


class _InspectFails:
    """An engine that lists and logs but refuses every inspect."""

    def __init__(self) -> None:
        self.logs_read: list[str] = []

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        raise PermanentError("inspect: HTTP 500")

    def logs(self, container_id: str, **_: Any) -> bytes:
        self.logs_read.append(container_id)
        return b"worker: fatal: no queue\n"


def _summary(state: str, status: str) -> dict[str, Any]:
    return {
        "Id": "c" * 64,
        "Names": ["/p-worker-1"],
        "Image": "busybox",
        "State": state,
        "Status": status,
        "Labels": {"com.docker.compose.project": "p", "com.docker.compose.service": "worker"},
    }


def _describe(state: str, status: str, death_code: int | None) -> tuple[Any, _InspectFails]:
    engine = _InspectFails()
    deaths = {} if death_code is None else {"c" * 64: ContainerDeath(exit_code=death_code, at=datetime.now(UTC))}
    container = describe_container(cast(Reader, engine), _summary(state, status), deaths)
    assert container is not None
    assert any(g.startswith(INSPECT_GAP) for g in container.unobserved), container.unobserved
    return container, engine


@pytest.mark.parametrize(
    ("status", "code"),
    [("Restarting (3) 2 seconds ago", 3), ("Exited (137) 5 minutes ago", 137), ("Exited (-1) 1 hour ago", -1)],
)
def test_the_listed_status_gives_the_exit_code(status: str, code: int) -> None:
    assert listed_exit_code(status) == code


@pytest.mark.parametrize("status", ["Up 5 seconds", "Created", "Restarting", ""])
def test_no_exit_code_where_the_status_prints_none(status: str) -> None:
    assert listed_exit_code(status) is None


@pytest.mark.parametrize(
    ("status", "seconds"),
    [
        ("Up Less than a second", 0.0),
        ("Up 1 second", 1.0),
        ("Up 17 seconds (health: starting)", 17.0),
        ("Up About a minute", 60.0),
        ("Up 4 minutes", 240.0),
        ("Up 2 hours", None),
        ("Exited (0) 3 seconds ago", None),
    ],
)
def test_the_listed_status_gives_a_rounded_uptime(status: str, seconds: float | None) -> None:
    assert listed_uptime(status) == seconds


def test_caught_up_again_after_a_failed_exit_it_is_a_crash_loop_with_its_logs() -> None:
    container, engine = _describe("running", "Up Less than a second", death_code=3)
    assert container.is_crash_looping
    assert container.recorded_exit_code == 3
    assert container.restart_count is None
    assert engine.logs_read == ["c" * 64]
    assert container.log_tail == ("worker: fatal: no queue",)


def test_caught_restarting_it_keeps_the_listed_exit_code() -> None:
    container, engine = _describe("restarting", "Restarting (3) Less than a second ago", death_code=None)
    assert container.is_crash_looping and container.exit_code == 3
    assert engine.logs_read


def test_up_again_after_a_clean_stop_is_not_a_crash_loop() -> None:
    container, engine = _describe("running", "Up 2 seconds", death_code=143)  # a `docker restart`
    assert not container.is_crash_looping
    assert engine.logs_read == []


def test_up_long_enough_after_a_failure_is_not_a_crash_loop() -> None:
    container, _ = _describe("running", "Up 30 seconds (unhealthy)", death_code=1)
    assert not container.is_crash_looping


def test_up_with_no_death_on_record_is_not_a_crash_loop() -> None:
    container, _ = _describe("running", "Up Less than a second", death_code=None)
    assert not container.is_crash_looping
