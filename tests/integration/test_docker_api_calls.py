"""The Docker API calls of an audit do not grow with the number of healthy containers, and
transport faults are retried through a proxy in front of the real engine."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwarden.adapters.docker import observe_docker
from stackwarden.errors import PermanentError, TransientError
from tests.support.compose import compose_project, panic_backend, unique_name, wait_restarts
from tests.support.http_proxy import CountingProxy
from tests.support.realparts import IMAGE

pytestmark = pytest.mark.docker


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    """DOCKER_HOST pointed at a counting proxy in front of the real socket."""
    p = CountingProxy(listen_path=tmp_path / "docker.sock")
    p.start()
    monkeypatch.setenv("DOCKER_HOST", p.docker_host)
    try:
        yield p
    finally:
        p.stop()


_PER_CONTAINER = re.compile(r"/containers/([0-9a-f]{12,})/")


def _calls_about(requests: list[str], container_ids: set[str] | None = None) -> list[str]:
    """The engine-wide calls, plus the per-container ones about ``container_ids``.

    The engine is shared with the rest of the session (the seed's crash loop keeps restarting
    beside these tests), so another container's inspect or logs call is not ours to count."""
    kept = []
    for call in requests:
        match = _PER_CONTAINER.search(call)
        if match is None or (container_ids is not None and match.group(1) in container_ids):
            kept.append(call)
    return kept


SETTLE_SECONDS = 31.0
"""Healthy means up for a while: a container up for seconds may be between two crashes."""


def test_api_calls_do_not_grow_with_healthy_containers(
    docker_engine: None, tmp_path: Path, proxy: CountingProxy
) -> None:
    idle = {"image": IMAGE, "command": ["sleep", "3600"]}
    with contextlib.ExitStack() as stack:
        small = stack.enter_context(compose_project(tmp_path, unique_name("swtest-calls-a"), {"idle": idle}))
        big = stack.enter_context(
            compose_project(tmp_path, unique_name("swtest-calls-b"), {f"idle{i}": idle for i in range(8)})
        )
        crashy = stack.enter_context(
            compose_project(tmp_path, unique_name("swtest-calls-c"), {"backend": panic_backend()})
        )
        wait_restarts(crashy, "backend", at_least=1)
        time.sleep(SETTLE_SECONDS)

        proxy.reset()
        with_big = observe_docker()
        calls_with_big = list(proxy.requests)

        big.compose("rm", "--stop", "--force")
        proxy.reset()
        without_big = observe_docker()
        calls_without_big = list(proxy.requests)

    ours = {small.name, big.name}
    our_ids = {c.id for c in with_big.containers if c.compose_project in {small.name, big.name, crashy.name}}
    calls_with_big = _calls_about(calls_with_big, our_ids)
    calls_without_big = _calls_about(calls_without_big, our_ids)
    healthy = [c for c in with_big.containers if c.compose_project in ours]
    assert len(healthy) == 9 and all(c.state == "running" and not c.inspected for c in healthy)
    assert not [c for c in without_big.containers if c.compose_project == big.name]
    # eight fewer healthy containers, the same number of calls
    assert len(calls_with_big) == len(calls_without_big), (calls_with_big, calls_without_big)
    for container in healthy:
        assert not [call for call in calls_with_big if container.id in call], container.name
    backend = next(c for c in with_big.containers if c.compose_project == crashy.name)
    assert [call for call in calls_with_big if backend.id in call and "/logs" in call], "crash loop logs not read"
    assert sum("/containers/json" in call for call in calls_with_big) == 1
    assert sum("/events" in call for call in calls_with_big) == 1  # one bounded die-events read


def test_transient_5xx_is_retried_then_succeeds(docker_engine: None, proxy: CountingProxy) -> None:
    observe_docker()  # warm: count one clean pass
    clean = len(_calls_about(proxy.requests))
    proxy.reset()
    proxy.fail_next = 2
    observation = observe_docker()
    assert observation.status.reachable
    # the two failed engine-wide calls were sent again (per-container calls depend on what else
    # runs on the shared engine at that moment, so only the engine-wide ones are counted)
    assert len(_calls_about(proxy.requests)) == clean + 2


def test_429_honours_retry_after(docker_engine: None, proxy: CountingProxy) -> None:
    proxy.fail_status, proxy.retry_after, proxy.fail_next = "429 Too Many Requests", 1, 1
    started = time.monotonic()
    observe_docker()
    assert time.monotonic() - started >= 1.0


def test_persistent_5xx_becomes_transient_error(docker_engine: None, proxy: CountingProxy) -> None:
    proxy.fail_next = 100
    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        observe_docker()


def test_missing_engine_is_permanent_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    started = time.monotonic()
    with pytest.raises(PermanentError, match="not reachable"):
        observe_docker()
    assert time.monotonic() - started < 2
