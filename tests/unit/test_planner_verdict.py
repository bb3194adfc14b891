"""The pure planner and verdict on fixture snapshots: order, identities, refusals, idempotence."""

from __future__ import annotations

import pytest

from stackwarden.model import (
    KubeContext,
    KubeObservation,
    KubeServicePort,
    KubeServiceState,
    KubeWorkloadState,
    Listener,
    Mode,
    NoHomePolicy,
    PodState,
    Runtime,
)
from stackwarden.model.base import Severity
from stackwarden.model.plan import PREVIOUS_REPLICAS, Outcome, ScaleWorkload, StartContainer, StopContainer, StopProcess
from stackwarden.planner import inverse_of, parse_replicas, plan, recorded_replicas
from stackwarden.verdict import verdict
from tests.support.builders import (
    PANIC,
    PORTS,
    container,
    deployment,
    process,
    profile,
    proxy_for,
    seed_snapshot,
    snapshot,
)


def _workload(name: str, replicas: int, annotations: dict[str, str] | None = None) -> KubeWorkloadState:
    return deployment(name, replicas, annotations=annotations)


def _kube(
    *workloads: KubeWorkloadState, allowed: bool = True, services: tuple[KubeServiceState, ...] = ()
) -> KubeObservation:
    pods = tuple(
        PodState(
            name=f"{w.name}-{i}",
            namespace="seedstack",
            uid=f"p{w.name}{i}",
            phase="Running",
            labels={"app": w.name},
            ready=True,
        )
        for w in workloads
        for i in range(w.replicas)
    )
    ctx = KubeContext(
        name="kind-dev", cluster="kind-dev", server="https://127.0.0.1:6443", allowed=allowed, current=True
    )
    return KubeObservation(context=ctx, namespace="seedstack", workloads=workloads, pods=pods, services=services)


def _seed_with_cluster(allowed: bool = True) -> object:
    base = seed_snapshot()
    return base.model_copy(
        update={"kubernetes": _kube(_workload("backend", 4), _workload("frontend", 5), allowed=allowed)}
    )


def test_compose_only_frees_ports_before_starting_and_names_identities() -> None:
    result = plan(_seed_with_cluster(), profile(), Mode.COMPOSE_ONLY)  # type: ignore[arg-type]
    assert result.applicable, result.refusals
    kinds = [s.kind for s in result.steps]
    assert kinds == ["scale-workload", "scale-workload", "stop-process", "stop-process", "start-container"]
    scale = [s for s in result.steps if isinstance(s, ScaleWorkload)]
    assert {(s.name, s.replicas, s.previous_replicas) for s in scale} == {("backend", 0, 4), ("frontend", 0, 5)}
    assert all(s.uid == f"uid-{s.name}" and s.generation == 3 and s.context == "kind-dev" for s in scale)
    stops = {s.pid: s for s in result.steps if isinstance(s, StopProcess)}
    assert stops[2792].signal == "SIGINT" and stops[2792].stateful and stops[2792].create_time == 1_700_002_792.0
    assert stops[2785].signal == "SIGTERM"
    start = result.steps[-1]
    assert isinstance(start, StartContainer) and start.name == "seedstack-postgres-1"
    assert any("Backend crash loop" in n for n in result.notes)


def test_k8s_only_stops_running_containers_and_restores_recorded_replicas() -> None:
    snap = seed_snapshot().model_copy(
        update={"kubernetes": _kube(_workload("backend", 0, {PREVIOUS_REPLICAS: "3"}), _workload("frontend", 5))}
    )
    data = profile()
    result = plan(snap, data, Mode.K8S_ONLY)
    refusals = " ".join(result.refusals)
    assert "postgres: has no home in kubernetes" in refusals and "services.postgres.no_home is 'refuse'" in refusals
    assert "redis: has no home in kubernetes" in refusals
    stopped = {s.name for s in result.steps if isinstance(s, StopContainer)}
    assert stopped == {"seedstack-backend-1", "seedstack-frontend-1"}  # not the created one
    up = [s for s in result.steps if isinstance(s, ScaleWorkload)]
    assert [(s.name, s.replicas) for s in up] == [("backend", 3)]  # the annotation, not the profile's 4
    # make before break: the cluster needs no host port the containers hold, so it starts first
    assert result.steps.index(up[0]) == 0 and up[0].phase == "make"
    assert {s.phase for s in result.steps[1:]} == {"break"}


def test_context_outside_allowlist_refuses_the_whole_plan() -> None:
    result = plan(_seed_with_cluster(allowed=False), profile(), Mode.COMPOSE_ONLY)  # type: ignore[arg-type]
    assert not result.applicable
    assert any("'kind-dev' is not in the profile's allowed_contexts" in r for r in result.refusals)


def test_unknown_process_on_a_profile_port_refuses() -> None:
    port = PORTS["redis"]
    snap = snapshot(listeners=(Listener(address="0.0.0.0", port=port, pid=66),), processes=(process(66, "nc"),))
    result = plan(snap, profile(), Mode.COMPOSE_ONLY)
    assert not result.applicable
    assert any(f"port {port} is held by process nc (PID 66)" in r for r in result.refusals)
    assert not [s for s in result.steps if isinstance(s, StopProcess) and s.pid == 66]


def test_hybrid_guard_refuses_a_port_reachable_through_two_runtimes() -> None:
    data = profile()
    port = PORTS["postgres"]
    exposure = KubeServiceState(
        name="backend-service",
        namespace="seedstack",
        type="NodePort",
        ports=(KubeServicePort(port=2000, node_port=port),),
    )
    data = data.model_copy(
        update={
            "services": {
                **data.services,
                "backend": data.services["backend"].model_copy(
                    update={
                        "kubernetes": data.services["backend"].kubernetes.model_copy(
                            update={"service": "backend-service"}
                        )
                    }  # type: ignore[union-attr]
                ),
            }
        }
    )
    snap = snapshot(kubernetes=_kube(_workload("backend", 1), services=(exposure,)))
    result = plan(snap, data, Mode.HYBRID_GUARDED)
    assert any(f"hybrid guard: host port {port}" in r for r in result.refusals)


def test_hybrid_guard_refuses_a_host_port_of_a_pod_that_compose_publishes_too() -> None:
    """docs/runbooks/hybrid-guarded.md: the guard checks NodePort, LoadBalancer *and hostPort*
    exposures; a pod of a service assigned to Kubernetes that binds the host port a compose
    service publishes makes that port reachable through two runtimes."""
    port = PORTS["postgres"]
    base = _kube(_workload("backend", 1))
    pods = tuple(p.model_copy(update={"host_ports": (port,)}) for p in base.pods)
    snap = snapshot(kubernetes=base.model_copy(update={"pods": pods}))
    result = plan(snap, profile(), Mode.HYBRID_GUARDED)
    (refusal,) = [r for r in result.refusals if r.startswith("hybrid guard")]
    assert f"host port {port} would be reachable through compose (postgres) and kubernetes (backend" in refusal
    assert "hostPort" in refusal


def test_rerun_after_success_plans_nothing() -> None:
    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    pg = container("postgres", publish=(("0.0.0.0", PORTS["postgres"]),))
    backend = container("backend", "restarting", exit_code=101, restart_count=9, logs=(PANIC,))
    frontend = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]),))
    listeners, procs = zip(
        proxy_for(redis, "127.0.0.1", PORTS["redis"], 801),
        proxy_for(pg, "0.0.0.0", PORTS["postgres"], 802),
        proxy_for(frontend, "0.0.0.0", PORTS["frontend"], 803),
        strict=True,
    )
    snap = snapshot(
        containers=(backend, frontend, pg, redis),
        listeners=listeners,
        processes=procs,
        kubernetes=_kube(_workload("backend", 0, {PREVIOUS_REPLICAS: "4"}), _workload("frontend", 0)),
    )
    assert plan(snap, profile(), Mode.COMPOSE_ONLY).steps == ()
    result = verdict(snap, profile(), Mode.COMPOSE_ONLY)
    assert result.outcome is Outcome.BROKEN_BY_CODE_ISSUE, result.failures
    assert result.code_issues == ("backend: Backend crash loop",)


def test_verdict_fails_while_a_host_process_remains() -> None:
    result = verdict(seed_snapshot(), profile(), Mode.COMPOSE_ONLY)
    assert result.outcome is Outcome.FAILED
    assert any("redis: still runs under host (redis-server PID 2785)" in f for f in result.failures)
    assert any("port" in f and "process postgres (PID 2792)" in f for f in result.failures)


def test_verdict_reports_failed_health_checks() -> None:
    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    listener, proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 803)
    snap = snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,))
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})
    assert verdict(snap, data, Mode.COMPOSE_ONLY, {"redis": None}).outcome is Outcome.PASSED
    failed = verdict(snap, data, Mode.COMPOSE_ONLY, {"redis": "tcp 127.0.0.1:1: refused"})
    assert failed.outcome is Outcome.FAILED and "health check failed" in failed.failures[0]


def test_inverses_undo_what_was_done() -> None:
    result = plan(_seed_with_cluster(), profile(), Mode.COMPOSE_ONLY)  # type: ignore[arg-type]
    scale = next(s for s in result.steps if isinstance(s, ScaleWorkload))
    undo = inverse_of(scale)
    assert isinstance(undo, ScaleWorkload) and undo.replicas == scale.previous_replicas and undo.uid == scale.uid
    start = next(s for s in result.steps if isinstance(s, StartContainer))
    assert isinstance(inverse_of(start), StopContainer)
    stop = next(s for s in result.steps if isinstance(s, StopProcess))
    assert not stop.reversible and inverse_of(stop) is None  # no unit, no start_command: says so


def test_an_unobservable_runtime_refuses_the_switch() -> None:
    result = plan(snapshot(docker_reachable=False), profile(), Mode.K8S_ONLY)
    assert any(r.startswith("compose could not be observed (connection refused)") for r in result.refusals)


def test_a_container_stopped_by_hand_under_restart_always_is_not_a_crash_loop() -> None:
    stopped = container("backend", "exited", exit_code=101, restart_count=9).model_copy(
        update={"restart_policy": "always"}
    )
    gave_up = container("backend", "exited", exit_code=101, restart_count=3).model_copy(
        update={"restart_policy": "on-failure"}
    )
    assert not stopped.is_crash_looping and not stopped.is_active
    assert gave_up.is_crash_looping and gave_up.is_active


def test_verdict_fails_when_a_runtime_cannot_be_observed() -> None:
    result = verdict(snapshot(docker_reachable=False), profile(), Mode.K8S_ONLY)
    assert result.outcome is Outcome.FAILED
    assert any(f.startswith("compose could not be observed") for f in result.failures)


def test_a_code_issue_elsewhere_does_not_excuse_the_target_runtime() -> None:
    # backend crash-loops under compose, but k8s-only wants it up in Kubernetes, where it is 0/4
    backend = container("backend", "restarting", exit_code=101, restart_count=5, logs=(PANIC,))
    behind = _workload("backend", 4).model_copy(update={"ready_replicas": 0})
    kube = _kube(behind).model_copy(update={"pods": ()})
    data = profile()
    data = data.model_copy(update={"services": {"backend": data.services["backend"]}})
    result = verdict(snapshot(containers=(backend,), kubernetes=kube), data, Mode.K8S_ONLY)
    assert result.outcome is Outcome.FAILED
    assert "backend: not up under kubernetes: backend 0/4 ready" in result.failures
    assert result.code_issues == ()


def test_units_from_the_cgroup_are_trusted_only_when_they_are_the_services_own() -> None:
    from stackwarden.planner import _trusted_unit

    assert _trusted_unit("redis-server.service", ("redis-server",), "redis-server") == "redis-server.service"
    assert _trusted_unit("postgresql@15-main.service", ("postgres",), "postgres") == "postgresql@15-main.service"
    assert _trusted_unit("user@1000.service", ("redis-server",), "redis-server") is None
    assert _trusted_unit("prefect-worker.service", ("redis-server",), "redis-server") is None
    # the file the process runs counts, not the comm it gave itself
    assert _trusted_unit("sshd.service", ("redis-server",), "/usr/bin/redis-server") is None
    assert _trusted_unit("redis-server.service", ("redis",), "/usr/bin/redis-server") == "redis-server.service"


def test_a_process_names_no_unit_by_its_comm() -> None:
    """A matched process whose comm says ``sshd`` while it sits in sshd.service's cgroup is
    stopped by signal: its comm is its own to set, and ``systemctl`` would stop all of sshd."""
    from stackwarden.model.base import Mode
    from stackwarden.planner import _stop_process
    from tests.support.builders import process, profile

    seeded = profile()
    impostor = process(4242, "sshd", ("sshd",), exe="/usr/bin/redis-server", unit="sshd.service")
    step = _stop_process(seeded, "redis", impostor, Mode.COMPOSE_ONLY)
    assert step.systemd_unit is None and step.signal == "SIGTERM"


def test_compose_up_is_undone_by_compose_stop() -> None:
    from stackwarden.model.plan import ComposeStop, ComposeUp

    result = plan(snapshot(), profile(), Mode.COMPOSE_ONLY)
    (up,) = [s for s in result.steps if isinstance(s, ComposeUp)]
    undo = inverse_of(up)
    assert isinstance(undo, ComposeStop) and undo.services == up.services == (
        "backend",
        "frontend",
        "postgres",
        "redis",
    )


def test_a_host_assigned_service_without_a_process_is_refused() -> None:
    data = profile()
    data = data.model_copy(
        update={
            "services": {**data.services, "redis": data.services["redis"].model_copy(update={"runtime": Runtime.HOST})}
        }
    )
    result = plan(snapshot(), data, Mode.HYBRID_GUARDED)
    assert any(r.startswith("redis: assigned to the host but no host process runs") for r in result.refusals)


def _with_no_home(policy: str) -> object:
    data = profile()
    services = {
        **data.services,
        "redis": data.services["redis"].model_copy(update={"no_home": NoHomePolicy(policy)}),
        "postgres": data.services["postgres"].model_copy(update={"no_home": NoHomePolicy(policy)}),
    }
    return data.model_copy(update={"services": services})


def test_no_home_leave_keeps_the_service_where_it_runs_and_says_so() -> None:
    data = _with_no_home("leave")
    snap = _seed_with_cluster()
    result = plan(snap, data, Mode.K8S_ONLY)  # type: ignore[arg-type]
    assert not [r for r in result.refusals if "redis" in r or "postgres" in r], result.refusals
    assert not [s for s in result.steps if s.service in {"redis", "postgres"}]
    assert any(n.startswith("redis: no home in kubernetes; left as it runs (compose, host)") for n in result.notes)
    result_verdict = verdict(snap, data, Mode.K8S_ONLY)  # type: ignore[arg-type]
    assert not [f for f in result_verdict.failures if f.startswith(("redis", "postgres"))]
    assert any("redis: no home in kubernetes; left as it runs" in c for c in result_verdict.checks)


def test_no_home_stop_stops_the_service_everywhere_and_verify_holds_it_to_that() -> None:
    data = _with_no_home("stop")
    snap = _seed_with_cluster()
    result = plan(snap, data, Mode.K8S_ONLY)  # type: ignore[arg-type]
    redis_steps = {(s.kind, getattr(s, "name", "")) for s in result.steps if s.service == "redis"}
    assert redis_steps == {("stop-process", "redis-server"), ("stop-container", "seedstack-redis-1")}
    assert any("redis: no home in kubernetes; stopped wherever it runs" in n for n in result.notes)
    failures = verdict(snap, data, Mode.K8S_ONLY).failures  # type: ignore[arg-type]
    assert any(f.startswith("redis: still runs under compose") and "no_home is 'stop'" in f for f in failures)


def test_a_forbidden_list_is_never_read_as_empty() -> None:
    from stackwarden.model.snapshot import Coverage

    gap = Coverage(
        runtime=Runtime.KUBERNETES, kind="pods", state="unobserved", reason="forbidden", detail="list pods in seedstack"
    )
    kube = _kube(_workload("backend", 0), _workload("frontend", 0)).model_copy(
        update={"pods": (), "forbidden": ("list pods in seedstack",), "coverage": (gap,)}
    )
    snap = seed_snapshot()
    snap = snapshot(containers=snap.containers, listeners=snap.listeners, processes=snap.processes, kubernetes=kube)
    assert snap.gaps(Runtime.KUBERNETES) == (gap,)
    result = plan(snap, profile(), Mode.COMPOSE_ONLY)
    assert not result.applicable
    assert any(r.startswith("backend: kubernetes pods unobserved (forbidden") for r in result.refusals)
    assert any(r.startswith("frontend: kubernetes pods unobserved (forbidden") for r in result.refusals)
    failures = verdict(snap, profile(), Mode.COMPOSE_ONLY).failures
    assert any(f.startswith("could not observe: backend: kubernetes pods unobserved") for f in failures)


def test_an_unreachable_runtime_is_unobserved_with_its_reason() -> None:
    snap = snapshot(docker_reachable=False)
    (gap,) = snap.gaps(Runtime.COMPOSE)
    assert (gap.kind, gap.state, gap.reason) == ("*", "unobserved", "error")
    from stackwarden.model.snapshot import failure_reason

    assert failure_reason("HTTPSConnectionPool: Read timed out. (read timeout=5)") == "timeout"
    assert failure_reason("(403) Forbidden") == "forbidden"


def test_verdict_fails_when_a_foreign_owner_of_the_target_runtime_holds_the_port() -> None:
    """A container of another compose project (same service name) publishing the profile's port
    on another address: the runtime is right, the owner is not the service, and a TCP health
    check on the port would be answered by it. That is no proof the switch worked."""
    port = PORTS["redis"]
    ours = container("redis", publish=(("127.0.0.1", port),))
    theirs = container("redis", project="otherstack", publish=(("127.0.0.2", port),))
    l1, p1 = proxy_for(ours, "127.0.0.1", port, 803)
    l2, p2 = proxy_for(theirs, "127.0.0.2", port, 804)
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})
    result = verdict(
        snapshot(containers=(ours, theirs), listeners=(l1, l2), processes=(p1, p2)),
        data,
        Mode.COMPOSE_ONLY,
        {"redis": None},
    )
    assert result.outcome is Outcome.FAILED
    assert any(f"port {port} is owned by container otherstack-redis-1" in f for f in result.failures)


def test_a_printed_inverse_is_exactly_the_command_of_its_undo_step() -> None:
    """What the plan shows as "reversible: ..." is what a person would copy: the compose stop
    with the profile's files, a start_command quoted so its arguments stay arguments."""
    from stackwarden.commands import step_commands
    from stackwarden.model.plan import ComposeUp

    data = profile()
    redis = data.services["redis"]
    assert redis.host is not None
    host = redis.host.model_copy(update={"start_command": ("sh", "-c", "redis-server --port 1")})
    data = data.model_copy(update={"services": {**data.services, "redis": redis.model_copy(update={"host": host})}})
    snap = seed_snapshot()
    gone = snap.model_copy(update={"containers": tuple(c for c in snap.containers if c.compose_service != "frontend")})
    result = plan(gone, data, Mode.COMPOSE_ONLY)
    stop = next(s for s in result.steps if isinstance(s, StopProcess) and s.service == "redis")
    up = next(s for s in result.steps if isinstance(s, ComposeUp))
    for step in (stop, up):
        undo = inverse_of(step)
        assert undo is not None and step.inverse == step_commands(undo, data)[0]
    assert stop.inverse == "sh -c 'redis-server --port 1'"
    assert " -f " in up.inverse


def test_verdict_waits_for_a_containers_own_healthcheck() -> None:
    """Docker's "(health: starting)" and "(unhealthy)" are not serving; "(healthy)" is."""
    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    listener, proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 803)
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})

    def outcome(status: str) -> Outcome:
        c = redis.model_copy(update={"status": status})
        return verdict(
            snapshot(containers=(c,), listeners=(listener,), processes=(proxy,)), data, Mode.COMPOSE_ONLY
        ).outcome

    assert outcome("Up 3 seconds (health: starting)") is Outcome.FAILED
    assert outcome("Up 40 seconds (unhealthy)") is Outcome.FAILED
    assert outcome("Up 40 seconds (healthy)") is Outcome.PASSED
    assert outcome("Up 40 seconds") is Outcome.PASSED


def test_a_rollback_restarts_a_host_process_as_the_user_it_ran_as() -> None:
    """A database stopped by the switch runs again as its own user, not as root (root-owned files
    in its data directory, or a server that refuses root); the printed inverse says the same."""
    from stackwarden.commands import step_commands
    from stackwarden.model.plan import RunAs, StartProcess

    data = profile()
    redis = data.services["redis"]
    assert redis.host is not None
    host = redis.host.model_copy(update={"start_command": ("redis-server", "--port", "1")})
    data = data.model_copy(update={"services": {**data.services, "redis": redis.model_copy(update={"host": host})}})
    snap = seed_snapshot()
    as_redis = tuple(
        p.model_copy(update={"uid": 108, "gid": 112, "user": "redis"}) if "redis-server" in p.names else p
        for p in snap.processes
    )
    result = plan(snap.model_copy(update={"processes": as_redis}), data, Mode.COMPOSE_ONLY)
    stop = next(s for s in result.steps if isinstance(s, StopProcess) and s.service == "redis")
    assert stop.run_as == RunAs(uid=108, gid=112, user="redis")
    undo = inverse_of(stop)
    assert isinstance(undo, StartProcess) and undo.run_as == stop.run_as
    expected = "setpriv --reuid=108 --regid=112 --init-groups -- redis-server --port 1"
    assert stop.inverse == expected == step_commands(undo, data)[0]
    as_root = tuple(p.model_copy(update={"uid": 0, "gid": 0}) if "redis-server" in p.names else p for p in as_redis)
    root_stop = next(
        s
        for s in plan(snap.model_copy(update={"processes": as_root}), data, Mode.COMPOSE_ONLY).steps
        if isinstance(s, StopProcess) and s.service == "redis"
    )
    assert root_stop.inverse == "redis-server --port 1"


def test_a_service_up_but_not_on_its_port_is_a_finding_and_fails_verify() -> None:
    """The compose file publishes another port than the profile names: the container is up, no
    port conflicts, and clients of the profile's port are refused. That is not an all-clear."""
    from stackwarden.rules import diagnose

    drifted = container("redis", publish=(("127.0.0.1", PORTS["redis"] + 1),))
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})
    listener, proxy = proxy_for(drifted, "127.0.0.1", PORTS["redis"] + 1, 804)
    snap = snapshot(containers=(drifted,), listeners=(listener,), processes=(proxy,))
    found = {f.id: f for f in diagnose(snap, data)}
    finding = found[f"port-unserved:{PORTS['redis']}"]
    assert finding.severity.rank >= Severity.MEDIUM.rank
    assert f"127.0.0.1:{PORTS['redis'] + 1}->" in finding.summary
    result = verdict(snap, data, Mode.COMPOSE_ONLY)
    assert result.outcome is Outcome.FAILED
    assert any(f"redis: port {PORTS['redis']} is served by nothing" in f for f in result.failures)
    served = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    listener, proxy = proxy_for(served, "127.0.0.1", PORTS["redis"], 805)
    ok = snapshot(containers=(served,), listeners=(listener,), processes=(proxy,))
    assert not [f for f in diagnose(ok, data) if f.rule == "port-unserved"]
    no_proxy = snapshot(containers=(served,))  # Docker without its userland proxy: no listener at all
    assert not [f for f in diagnose(no_proxy, data) if f.rule == "port-unserved"]


def test_a_service_that_runs_but_fails_its_health_check_is_a_finding() -> None:
    """Up, on its port, no conflict, and every client gets an error: only the profile's health
    check says so. Down, or serving only in Kubernetes, it is left to the rules that say that."""
    from stackwarden.model.snapshot import HealthResult
    from stackwarden.rules import diagnose

    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    listener, proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 806)
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})
    failing = (HealthResult(service="redis", target="GET http://x/health", error="HTTP Error 500"),)
    up = snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,)).model_copy(update={"health": failing})
    finding = {f.id: f for f in diagnose(up, data)}["health-failing:redis"]
    assert "HTTP Error 500" in finding.summary and finding.runtimes == (Runtime.COMPOSE,)
    passing = up.model_copy(update={"health": (failing[0].model_copy(update={"error": None}),)})
    assert not [f for f in diagnose(passing, data) if f.rule == "health-failing"]
    down = snapshot(containers=(container("redis", "exited", exit_code=1),)).model_copy(update={"health": failing})
    assert not [f for f in diagnose(down, data) if f.rule == "health-failing"]


def test_an_unobserved_cluster_never_says_a_workload_does_not_exist() -> None:
    """With the cluster unreachable, a k8s-only refusal says the workload was not observed, and the
    verdict judges nothing there ("scaled to 0 or missing" would be a guess)."""
    from stackwarden.model import RuntimeStatus

    snap = seed_snapshot()
    blind = snap.model_copy(
        update={
            "runtimes": (
                *snap.runtimes,
                RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=False, error="connection refused"),
            )
        }
    )
    refusals = " ".join(plan(blind, profile(), Mode.K8S_ONLY).refusals)
    assert "backend: Deployment backend was not observed (kubernetes could not be read: connection refused)" in refusals
    assert "does not exist" not in refusals
    observed = snap.model_copy(
        update={
            "kubernetes": _kube(),
            "runtimes": (*snap.runtimes, RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True)),
        }
    )
    seen = plan(observed, profile(), Mode.K8S_ONLY).refusals
    assert any("Deployment backend does not exist in the namespace" in r for r in seen)  # seen, and absent
    result = verdict(blind, profile(), Mode.K8S_ONLY)
    assert "backend: not observed under kubernetes (connection refused)" in result.unobserved
    assert not [f for f in result.failures if "scaled to 0 or missing" in f]


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        *[("3", 3), ("1000", 1000), ("0", 0), ("100000", None), ("1001", None), ("²", None), ("٣", None)],
        *[("-1", None), ("+3", None), (" 3", None), ("3\n", None), ("03", None), ("3.0", None), ("", None)],
    ],
)
def test_a_recorded_replica_count_is_read_only_as_stackwarden_writes_it(raw: str, count: int | None) -> None:
    assert parse_replicas(raw) == count
    restored = recorded_replicas(_workload("backend", 0, {PREVIOUS_REPLICAS: raw}), 4)
    assert restored == (count or 4)  # "0" records nothing; a bad value is never used, never a crash


@pytest.mark.parametrize("raw", ["100000", "²", "-1", "04"])
def test_a_replica_record_stackwarden_did_not_write_refuses_the_plan_naming_it(raw: str) -> None:
    snap = seed_snapshot().model_copy(
        update={"kubernetes": _kube(_workload("backend", 0, {PREVIOUS_REPLICAS: raw}), _workload("frontend", 5))}
    )
    result = plan(snap, profile(), Mode.K8S_ONLY)
    refusal = next((r for r in result.refusals if PREVIOUS_REPLICAS in r), "")
    assert refusal.startswith(f"backend: Deployment seedstack/backend records {PREVIOUS_REPLICAS}={raw!r}"), (
        result.refusals
    )
    assert "not a replica count (a whole number 0..1000)" in refusal and "restore the profile's 4" in refusal
    assert f"annotate deployment/backend {PREVIOUS_REPLICAS}-" in refusal
    assert not any(isinstance(s, ScaleWorkload) and s.replicas > 1000 for s in result.steps)


def test_a_good_record_or_none_plans_without_a_replica_refusal() -> None:
    for record in ({PREVIOUS_REPLICAS: "7"}, {PREVIOUS_REPLICAS: "0"}, {}):
        snap = seed_snapshot().model_copy(
            update={"kubernetes": _kube(_workload("backend", 0, record), _workload("frontend", 5))}
        )
        result = plan(snap, profile(), Mode.K8S_ONLY)
        assert not [r for r in result.refusals if PREVIOUS_REPLICAS in r]
        up = [(s.name, s.replicas) for s in result.steps if isinstance(s, ScaleWorkload)]
        assert up == [("backend", 7 if record.get(PREVIOUS_REPLICAS) == "7" else 4)]


def test_a_docker_proxy_whose_engine_was_not_observed_is_not_a_foreign_owner() -> None:
    """Docker did not answer: the docker-proxy on redis's port cannot be attributed to a container.
    That is not seen, not "someone else's": the verdict is blind, not failed (no rollback)."""
    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    listener, proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 803)
    data = profile()
    data = data.model_copy(update={"services": {"redis": data.services["redis"]}})
    result = verdict(
        snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,), docker_reachable=False),
        data,
        Mode.COMPOSE_ONLY,
        {"redis": None},
    )
    assert result.blind, result
    assert any("published by a container not identified (compose not observed)" in u for u in result.unobserved)
    assert not [f for f in result.seen_failures if "unidentified" in f]


def test_a_container_that_could_not_be_inspected_refuses_the_switch_and_says_so() -> None:
    """One container's inspect timed out: the engine is not unreachable (every other container
    is seen), but the switch cannot tell how to stop that one (its stop signal and restart
    policy are in the inspect) nor that it is the one seen, so it refuses, naming it; the
    crash-loop finding says the container was not inspected."""
    from stackwarden.model.snapshot import INSPECT_GAP
    from stackwarden.rules import diagnose

    seed = seed_snapshot()
    gap = f"{INSPECT_GAP} seedstack-postgres-1 failed: read timed out after 5 s"
    containers = tuple(
        c.model_copy(update={"unobserved": (gap,)}) if c.compose_service in {"postgres", "backend"} else c
        for c in seed.containers
    )
    blind = seed.model_copy(update={"containers": containers})
    the_plan = plan(blind, profile(), Mode.COMPOSE_ONLY)
    assert not the_plan.applicable
    assert any(
        r.startswith("postgres: inspect of container") and "cannot tell how to stop it" in r for r in the_plan.refusals
    )
    crash = next(f for f in diagnose(blind, profile()) if f.id == "crash-loop:backend")
    assert any("could not be inspected" in (loc.detail or "") for loc in crash.locations), crash.locations
    assert gap in crash.gaps
