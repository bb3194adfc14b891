"""Each invariant of the verdict and of make-before-break's wait (``not_ready``) on its own:
up in the target runtime (per runtime: a running container, a live and fully ready workload,
a host process), the health check, what could not be observed, and the rollback's "where now"
table. Written against the surviving mutants of the mutation check (docs/testing.md): each
test fails when one of those checks is inverted, dropped or loosened."""

from __future__ import annotations

from stackwarden.model import (
    KubeContext,
    KubeObservation,
    KubeWorkloadState,
    Listener,
    Mode,
    NoHomePolicy,
    PodState,
    Profile,
    Runtime,
    RuntimeStatus,
    Snapshot,
)
from stackwarden.model.plan import Outcome
from stackwarden.model.snapshot import HealthResult
from stackwarden.verdict import host_health, not_ready, verdict, where_now
from tests.support.builders import PANIC, PORTS, container, deployment, process, profile, proxy_for, snapshot


def _only(*names: str, **updates: object) -> Profile:
    """The seed profile with only ``names`` (each updated with ``updates``)."""
    data = profile()
    return data.model_copy(update={"services": {n: data.services[n].model_copy(update=dict(updates)) for n in names}})


def _redis_serving(status: str = "Up 2 minutes", state: str = "running") -> Snapshot:
    redis = container("redis", state, publish=(("127.0.0.1", PORTS["redis"]),))
    redis = redis.model_copy(update={"status": status})
    listener, proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 803)
    return snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,))


def _cluster(*workloads: KubeWorkloadState) -> Snapshot:
    pods = tuple(
        PodState(
            name=f"{w.name}-{i}",
            namespace="seedstack",
            uid=f"p{w.name}{i}",
            phase="Running",
            labels={"app": w.name},
            ready=i < w.ready_replicas,
        )
        for w in workloads
        for i in range(w.replicas)
    )
    ctx = KubeContext(name="kind-dev", cluster="kind-dev", server="https://127.0.0.1:6443", allowed=True, current=True)
    kube = KubeObservation(context=ctx, namespace="seedstack", workloads=workloads, pods=pods)
    return snapshot(kubernetes=kube)


# compose: a running container that serves, nothing less


def test_a_compose_service_whose_container_exited_is_not_up() -> None:
    data = _only("redis")
    snap = snapshot(containers=(container("redis", "exited", exit_code=0),))
    expected = "redis: not up under compose: no running container"
    assert expected in verdict(snap, data, Mode.COMPOSE_ONLY, {}).failures
    assert not_ready(snap, data, Mode.COMPOSE_ONLY, ["redis"], {}) == [expected]


def test_a_compose_container_running_but_not_serving_is_named_with_its_status() -> None:
    data = _only("redis")
    snap = _redis_serving("Up 3 seconds (health: starting)")
    assert not_ready(snap, data, Mode.COMPOSE_ONLY, ["redis"], {}) == [
        "redis: not up under compose: running but not serving: seedstack-redis-1 (Up 3 seconds (health: starting))"
    ]


def test_a_compose_service_that_serves_is_ready_and_passes() -> None:
    data = _only("redis")
    snap = _redis_serving()
    assert not_ready(snap, data, Mode.COMPOSE_ONLY, ["redis"], {}) == []
    result = verdict(snap, data, Mode.COMPOSE_ONLY, {"redis": None})
    assert result.outcome is Outcome.PASSED
    assert result.checks == ("redis: up under compose, healthy",)


def test_without_a_health_check_the_check_line_claims_no_health() -> None:
    result = verdict(_redis_serving(), _only("redis"), Mode.COMPOSE_ONLY, {})
    assert result.checks == ("redis: up under compose",)


# kubernetes: a live workload, every replica ready


def test_a_workload_scaled_to_zero_is_not_up() -> None:
    data = _only("backend")
    assert not_ready(_cluster(deployment("backend", 0, ready=0)), data, Mode.K8S_ONLY, ["backend"], {}) == [
        "backend: not up under kubernetes: its workload is scaled to 0 or missing"
    ]


def test_a_workload_of_one_replica_fully_ready_is_up() -> None:
    data = _only("backend")
    assert not_ready(_cluster(deployment("backend", 1, ready=1)), data, Mode.K8S_ONLY, ["backend"], {}) == []


def test_a_rollout_not_complete_is_not_up_and_says_how_far() -> None:
    data = _only("backend")
    assert not_ready(_cluster(deployment("backend", 4, ready=3)), data, Mode.K8S_ONLY, ["backend"], {}) == [
        "backend: not up under kubernetes: backend 3/4 ready"
    ]


# host: a process of the service


def test_a_host_service_is_up_with_its_process_and_not_without() -> None:
    data = _only("redis", runtime=Runtime.HOST)
    redis = process(2785, "redis-server", ("redis-server ::1:36379",), exe="/usr/bin/redis-check-rdb")
    running = snapshot(listeners=(Listener(address="::1", port=PORTS["redis"], pid=2785),), processes=(redis,))
    assert not_ready(running, data, Mode.HYBRID_GUARDED, ["redis"], {}) == []
    assert not_ready(snapshot(), data, Mode.HYBRID_GUARDED, ["redis"], {}) == [
        "redis: not up under host: no host process"
    ]


# health, blind spots and code issues in make-before-break's wait


def test_a_failing_health_check_holds_the_wait() -> None:
    data = _only("redis")
    assert not_ready(_redis_serving(), data, Mode.COMPOSE_ONLY, ["redis"], {"redis": "tcp: refused"}) == [
        "redis: health check failed: tcp: refused"
    ]


def test_the_wait_reads_the_snapshots_own_health_checks_by_default() -> None:
    data = _only("redis")
    snap = _redis_serving().model_copy(
        update={"health": (HealthResult(service="redis", target="tcp:127.0.0.1:36379", error="tcp: refused"),)}
    )
    assert not_ready(snap, data, Mode.COMPOSE_ONLY, ["redis"]) == ["redis: health check failed: tcp: refused"]
    assert verdict(snap, data, Mode.COMPOSE_ONLY).outcome is Outcome.FAILED


def test_an_unobserved_runtime_holds_the_wait() -> None:
    data = _only("redis")
    snap = _redis_serving()
    blind = snap.model_copy(
        update={
            "runtimes": (*snap.runtimes, RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=False, error="timeout"))
        }
    )
    assert not_ready(blind, data, Mode.COMPOSE_ONLY, ["redis"], {}) == ["kubernetes could not be observed (timeout)"]


def test_a_code_issue_in_one_service_does_not_end_the_wait_for_the_next() -> None:
    data = _only("backend", "redis", runtime=Runtime.COMPOSE)
    backend = container("backend", "restarting", exit_code=101, restart_count=7, logs=(PANIC,))
    snap = snapshot(containers=(backend,))
    assert not_ready(snap, data, Mode.COMPOSE_ONLY, ["backend", "redis"], {}) == [
        "redis: not up under compose: no running container"
    ]


# host health checks count only where the service serves on this host's ports


def test_health_checks_count_only_for_services_that_serve_on_host_ports() -> None:
    data = _only("backend", "redis")
    snap = snapshot().model_copy(
        update={
            "health": (
                HealthResult(service="backend", target="http://127.0.0.1:32000/", error="refused"),
                HealthResult(service="redis", target="tcp:127.0.0.1:36379"),
            )
        }
    )
    assert host_health(snap, data, Mode.K8S_ONLY) == {}
    assert host_health(snap, data, Mode.COMPOSE_ONLY) == {"backend": "refused", "redis": None}


# no_home: stop


def test_no_home_stop_passes_only_when_it_runs_nowhere_and_everything_was_seen() -> None:
    data = _only("redis", no_home=NoHomePolicy.STOP)
    gone = verdict(snapshot(kubernetes=_cluster().kubernetes), data, Mode.K8S_ONLY, {})
    assert gone.outcome is Outcome.PASSED
    assert gone.checks == ("redis: no home in kubernetes; runs nowhere (no_home: stop)",)
    still = verdict(_redis_serving().model_copy(update={"kubernetes": _cluster().kubernetes}), data, Mode.K8S_ONLY, {})
    assert still.outcome is Outcome.FAILED
    assert any(f.startswith("redis: still runs under compose") for f in still.failures), still.failures
    blind = snapshot(docker_reachable=False, kubernetes=_cluster().kubernetes)
    unseen = verdict(blind, data, Mode.K8S_ONLY, {})
    assert unseen.outcome is Outcome.FAILED and unseen.checks == ()


# the rollback's "where now" table


def test_where_now_says_where_each_service_runs_and_whether_it_serves() -> None:
    data = _only("redis", "postgres")
    snap = _redis_serving().model_copy(update={"kubernetes": _cluster().kubernetes})
    rows = {row.service: row for row in where_now(snap, data)}
    assert rows["redis"].compose == "container(s) seedstack-redis-1" and rows["redis"].serving is True
    assert rows["redis"].kubernetes == "-" and rows["redis"].host == "-"
    assert rows["postgres"].compose == "-" and rows["postgres"].serving is False


def test_where_now_never_says_not_serving_where_it_could_not_look() -> None:
    data = _only("redis")
    rows = where_now(snapshot(docker_reachable=False), data)
    assert rows[0].compose == "not observed" and rows[0].serving is None


def test_where_now_has_no_cluster_column_without_a_cluster_in_the_profile() -> None:
    data = _only("redis").model_copy(update={"kubernetes": None})
    rows = where_now(_redis_serving(), data)
    assert rows[0].kubernetes == "-" and rows[0].serving is True
