"""The audit pipeline without Prefect: retries, unreachable runtimes, assembly, finding memory,
and the CLI's terminal helpers (record choice, live progress)."""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from flows.terminal import LiveProgress, prefect_api_configured, prepare_prefect
from stackwarden.adapters.docker import DockerObservation
from stackwarden.adapters.host import HostObservation
from stackwarden.errors import PermanentError, TransientError
from stackwarden.model import Listener, Runtime, RuntimeStatus
from stackwarden.model.profile import KubernetesSpec
from stackwarden.pipeline import (
    Retry,
    assemble,
    observe_all,
    run_audit,
    settle,
    with_retries,
)
from stackwarden.rules import diagnose
from tests.support.builders import container, profile


def _done(value: object) -> Future[object]:
    future: Future[object] = Future()
    future.set_result(value)
    return future


def _failed(exc: BaseException) -> Future[object]:
    future: Future[object] = Future()
    future.set_exception(exc)
    return future


def test_transient_errors_are_retried_per_policy_and_others_are_not() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append("x")
        if len(calls) < 3:
            raise TransientError("blip")
        return "ok"

    assert with_retries(flaky, Retry(retries=2, delay_seconds=1.5), "flaky", sleeps.append) == "ok"
    assert len(calls) == 3 and sleeps == [1.5, 1.5]

    down: list[int] = []

    def always_down() -> None:
        down.append(1)
        raise TransientError("down")

    with pytest.raises(TransientError):
        with_retries(always_down, Retry(retries=1, delay_seconds=0), "down", sleeps.append)
    assert len(down) == 2

    permanent: list[int] = []

    def absent() -> None:
        permanent.append(1)
        raise PermanentError("no engine")

    with pytest.raises(PermanentError):
        with_retries(absent, Retry(retries=5, delay_seconds=0), "absent", sleeps.append)
    assert permanent == [1]


def test_a_failed_observation_becomes_an_unreachable_runtime() -> None:
    status = settle(_failed(PermanentError("engine gone")), Runtime.COMPOSE, "unix:///nowhere")
    assert isinstance(status, RuntimeStatus)
    assert status.reachable is False and status.endpoint == "unix:///nowhere"
    assert status.error is not None and "PermanentError: engine gone" in status.error
    assert settle(_done("seen"), Runtime.HOST, None) == "seen"


class _Submitter:
    """Stands in for the threads/tasks: returns prepared outcomes and records what was asked."""

    def __init__(self, docker: Future[object], host: Future[object], kube: Future[object]) -> None:
        self.outcomes = {"docker": docker, "host": host, "kube": kube}
        self.asked: list[object] = []

    def docker(self, timeouts: object, stateful: object) -> Future[object]:
        self.asked.append("docker")
        return self.outcomes["docker"]

    def host(self, ports: list[int], executables: list[str], checks: object) -> Future[object]:
        self.asked.append(sorted(ports))
        return self.outcomes["host"]

    def kubernetes(self, spec: KubernetesSpec, timeouts: object) -> Future[object]:
        self.asked.append(spec.namespace)
        return self.outcomes["kube"]


def test_observe_all_never_raises_and_records_every_runtime() -> None:
    prof = profile()
    host_ok = HostObservation(
        status=RuntimeStatus(runtime=Runtime.HOST, reachable=True, endpoint="h"),
        listeners=(Listener(address="127.0.0.1", port=35432, pid=7),),
    )
    submitter = _Submitter(
        _failed(TransientError("docker retries exhausted")), _done(host_ok), _failed(RuntimeError("boom"))
    )
    snapshot = observe_all(prof, submitter)  # type: ignore[arg-type]
    assert submitter.asked == ["docker", sorted(prof.all_ports()), "seedstack"]
    by_runtime = {s.runtime: s for s in snapshot.runtimes}
    assert set(by_runtime) == {Runtime.COMPOSE, Runtime.HOST, Runtime.KUBERNETES}
    assert by_runtime[Runtime.HOST].reachable
    assert not by_runtime[Runtime.COMPOSE].reachable and not by_runtime[Runtime.KUBERNETES].reachable
    assert snapshot.listeners == host_ok.listeners and snapshot.containers == ()
    # an unobserved runtime is reported, never read as "nothing there"
    ids = {f.id for f in diagnose(snapshot, prof)}
    assert {"runtime-unreachable:compose", "runtime-unreachable:kubernetes"} <= ids


def test_a_profile_without_cluster_side_observes_no_cluster() -> None:
    data_profile = profile(kubernetes=None)
    submitter = _Submitter(_failed(PermanentError("x")), _failed(PermanentError("y")), _failed(AssertionError()))
    snapshot = observe_all(data_profile, submitter)  # type: ignore[arg-type]
    assert "seedstack" not in submitter.asked
    assert {s.runtime for s in snapshot.runtimes} == {Runtime.COMPOSE, Runtime.HOST}


def test_assemble_keeps_what_each_runtime_saw() -> None:
    c = container("redis")
    docker_obs = DockerObservation(
        status=RuntimeStatus(runtime=Runtime.COMPOSE, reachable=True, endpoint="d"), containers=(c,)
    )
    unreachable_host = RuntimeStatus(runtime=Runtime.HOST, reachable=False, error="x")
    snapshot = assemble(profile(kubernetes=None), docker_obs, unreachable_host, None)
    assert snapshot.containers == (c,)
    assert [s.reachable for s in snapshot.runtimes] == [True, False]


def test_the_in_process_audit_sees_the_real_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Real host observation, a Docker endpoint that does not exist: the audit completes and
    says Docker was not seen, and the listener we opened is in the snapshot."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        data = profile(kubernetes=None)
        services = dict(data.services)
        services["redis"] = services["redis"].model_copy(update={"ports": (port,)})
        prof = data.model_copy(update={"services": services})
        outcome = run_audit(prof)
    assert any(listener.port == port for listener in outcome.snapshot.listeners)
    compose = next(s for s in outcome.snapshot.runtimes if s.runtime is Runtime.COMPOSE)
    assert not compose.reachable
    assert "runtime-unreachable:compose" in {f.id for f in outcome.result.findings}
    assert "# " in outcome.markdown


def test_prefect_api_is_configured_by_env_or_active_profile(tmp_path: Path) -> None:
    assert prefect_api_configured({"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    home = tmp_path / "home"
    assert not prefect_api_configured({"PREFECT_HOME": str(home)})
    home.mkdir()
    (home / "profiles.toml").write_text(
        'active = "local"\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
        "[profiles.ephemeral]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = true\n"
    )
    assert prefect_api_configured({"PREFECT_HOME": str(home)})
    assert not prefect_api_configured({"PREFECT_HOME": str(home), "PREFECT_PROFILE": "ephemeral"})
    (home / "profiles.toml").write_text("not toml [")
    assert not prefect_api_configured({"PREFECT_HOME": str(home)})


def test_prepare_prefect_quiets_the_console_unless_verbose(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": str(tmp_path)}
    prepare_prefect(verbose=False, environ=env)
    assert env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "CRITICAL"
    loud = {"PREFECT_API_URL": "http://x/api"}
    prepare_prefect(verbose=True, environ=loud)
    assert loud == {"PREFECT_API_URL": "http://x/api"}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_shows_slow_steps_only_and_only_on_a_terminal() -> None:
    threads_before = set(threading.enumerate())
    tty = _Tty()
    progress = LiveProgress(tty, after=0.05)
    with progress.step("quick"):
        pass
    assert tty.getvalue() == ""
    with progress.step("observing kubernetes"):
        deadline = time.monotonic() + 3
        while "observing kubernetes" not in tty.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "observing kubernetes" in tty.getvalue()
    # the timer is joined and rich's refresh thread told to stop when the step ends: nothing is
    # left behind (compared with the threads there before, as other tests may run their own;
    # rich's thread ends on its next wake-up, so give it a moment)
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert set(threading.enumerate()) - threads_before == set()

    pipe = io.StringIO()
    with LiveProgress(pipe, after=0.0).step("slow"):
        time.sleep(0.1)
    assert pipe.getvalue() == ""


def test_a_busy_server_is_retried_with_doubling_delays_then_left_to_the_caller() -> None:
    from tasks.diagnose import MEMORY_ATTEMPTS, with_backoff

    answers: list[str] = []
    sleeps: list[float] = []

    def busy_twice() -> str:
        answers.append("503")
        if len(answers) <= 2:
            raise RuntimeError("503 Service Unavailable")
        return "stored"

    logged: list[object] = []
    assert with_backoff(busy_twice, "writing x", lambda *a: logged.append(a), sleeps.append) == "stored"
    assert sleeps == [0.5, 1.0] and len(logged) == 2

    def always_busy() -> None:
        raise RuntimeError("503 Service Unavailable")

    sleeps.clear()
    with pytest.raises(RuntimeError, match="503"):
        with_backoff(always_busy, "writing x", lambda *a: None, sleeps.append)
    assert len(sleeps) == MEMORY_ATTEMPTS - 1 and sleeps == sorted(sleeps)


def test_list_items_are_decoded_one_by_one_whatever_the_key_order() -> None:
    import json as _json

    from stackwarden.adapters.kubernetes import iter_list_items

    pods = [{"metadata": {"name": f"p{i}", "labels": {"items": "[1]"}}} for i in range(3)]
    for doc in (
        {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": pods},
        {"items": pods, "kind": "PodList", "metadata": {"continue": ""}},
        {"kind": "PodList", "items": []},
        {"kind": "PodList"},
    ):
        for text in (_json.dumps(doc), _json.dumps(doc, indent=2)):
            assert list(iter_list_items(text)) == doc.get("items", [])
    with pytest.raises(ValueError):
        list(iter_list_items("[]"))
