"""Rules on situations found by exploratory audits from outside (no engine): what the audit
must not read as an all-clear, and advice that must fit what the owner really is."""

from __future__ import annotations

from stackwarden.model import CrashCategory, KubeObservation, PodState, Runtime, Severity
from stackwarden.rules import diagnose
from tests.support.builders import PANIC, PORTS, container, profile, proxy_for, snapshot


def _by_id(findings: tuple) -> dict:  # type: ignore[type-arg]
    return {f.id: f for f in findings}


def test_docker_proxies_of_one_container_are_one_owner_when_the_engine_is_unreachable() -> None:
    # the frontend published on 0.0.0.0 and :: : two docker-proxy processes, one container; with
    # the engine down nobody can name it, but it is not two owners and not a port conflict
    front = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]), ("::", PORTS["frontend"])))
    l4, p4 = proxy_for(front, "0.0.0.0", PORTS["frontend"], 4101)
    l6, p6 = proxy_for(front, "::", PORTS["frontend"], 4102)
    snap = snapshot(containers=(front,), listeners=(l4, l6), processes=(p4, p6), docker_reachable=False)
    findings = _by_id(diagnose(snap, profile()))
    assert f"port-conflict:{PORTS['frontend']}" not in findings
    owner = findings[f"port-foreign-owner:{PORTS['frontend']}"]
    assert owner.severity is Severity.MEDIUM
    assert "docker-proxy to" in owner.summary and "PID" not in owner.summary
    assert f"docker ps --filter publish={PORTS['frontend']}" in owner.commands
    assert not any(c.startswith(("kill", "docker stop", "docker compose")) for c in owner.commands)


def test_unreachable_engine_that_runs_the_default_mode_is_high() -> None:
    # compose-only: every service's home is the engine that could not be read
    findings = _by_id(diagnose(snapshot(docker_reachable=False), profile(default_mode="compose-only")))
    finding = findings["runtime-unreachable:compose"]
    assert finding.severity is Severity.HIGH
    assert set(finding.services) == {"backend", "frontend", "postgres", "redis"}


def test_unreachable_engine_no_service_calls_home_stays_medium() -> None:
    findings = _by_id(diagnose(snapshot(docker_reachable=False), profile(default_mode="k8s-only")))
    assert findings["runtime-unreachable:compose"].severity is Severity.MEDIUM


def test_pods_forbidden_in_k8s_only_is_high_not_an_all_clear() -> None:
    kube = KubeObservation(namespace="seedstack", forbidden=("list pods in seedstack",))
    findings = _by_id(diagnose(snapshot(kubernetes=kube), profile(default_mode="k8s-only")))
    assert findings["kube-forbidden"].severity is Severity.HIGH
    assert "backend" in findings["kube-forbidden"].services


def test_events_forbidden_only_stays_medium() -> None:
    kube = KubeObservation(namespace="seedstack", forbidden=("list events in seedstack",))
    findings = _by_id(diagnose(snapshot(kubernetes=kube), profile(default_mode="k8s-only")))
    assert findings["kube-forbidden"].severity is Severity.MEDIUM


def test_a_neighbour_projects_container_is_not_advised_as_an_executable() -> None:
    theirs = container("api", project="neighbour", publish=(("0.0.0.0", PORTS["backend"]),))
    listener, proxy = proxy_for(theirs, "0.0.0.0", PORTS["backend"], 4201)
    snap = snapshot(containers=(theirs,), listeners=(listener,), processes=(proxy,))
    owner = _by_id(diagnose(snap, profile()))[f"port-foreign-owner:{PORTS['backend']}"]
    assert "compose project neighbour" in owner.recommendation
    assert "host.executables" not in owner.recommendation
    assert owner.runtimes == (Runtime.COMPOSE,)


def test_a_workload_list_that_is_forbidden_is_not_a_missing_workload() -> None:
    kube = KubeObservation(namespace="seedstack", forbidden=("list deployments in seedstack", "list pods in seedstack"))
    findings = _by_id(diagnose(snapshot(kubernetes=kube), profile(default_mode="k8s-only")))
    finding = findings["service-unavailable:backend:kubernetes"]
    assert finding.cause is not None and finding.cause.signature == "workload-not-readable"
    assert "does not exist" not in finding.summary and "Apply its manifests" not in finding.recommendation
    assert finding.title == "Backend not verified in kubernetes"
    assert finding.severity is Severity.HIGH


def test_a_container_that_died_of_oom_is_not_advised_to_just_start_again() -> None:
    etl = container("backend", "exited", exit_code=137, oom_killed=True, logs=("loading 4000000 rows",))
    finding = _by_id(diagnose(snapshot(containers=(etl,)), profile()))["service-unavailable:backend:compose"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.RESOURCES
    assert "memory" in finding.recommendation and "mem_limit" in finding.recommendation
    assert "loading 4000000 rows" in finding.evidence


def test_a_worker_that_died_on_an_unresolvable_dependency_names_it() -> None:
    line = "consumer: Cannot connect to amqp://guest:**@rabbitmq:5672//: [Errno -2] Name or service not known."
    worker = container("backend", "exited", exit_code=1, logs=("celery worker starting", line))
    finding = _by_id(diagnose(snapshot(containers=(worker,)), profile()))["service-unavailable:backend:compose"]
    assert finding.cause is not None and finding.cause.signature == "dependency-name-unresolved"
    assert finding.cause.category is CrashCategory.CONFIGURATION
    assert any("rabbitmq" in e for e in finding.evidence)


def test_a_code_crash_that_stays_down_gets_no_start_command() -> None:
    dead = container("backend", "exited", exit_code=101, logs=(PANIC,))
    finding = _by_id(diagnose(snapshot(containers=(dead,)), profile()))["service-unavailable:backend:compose"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.CODE_ISSUE
    assert not any(" up -d" in c or " start" in c for c in finding.commands)


def test_a_container_stopped_by_hand_is_not_a_death() -> None:
    stopped = container("backend", "exited", exit_code=143)
    assert not stopped.died_failing
    finding = _by_id(diagnose(snapshot(containers=(stopped,)), profile()))["service-unavailable:backend:compose"]
    assert finding.cause is not None and finding.cause.signature == "container-exited"


def _worker_pod(uptime: float | None) -> PodState:
    return PodState(
        name="backend-5d9c-x1",
        namespace="seedstack",
        uid="u-1",
        phase="Running",
        labels={"app": "backend"},
        ready=True,  # no readiness probe: ready the moment it runs again
        restart_count=7,
        last_exit_code=2,
        owner="backend-5d9c",
        uptime_seconds=uptime,
        log_tail=("panic: runtime error: invalid memory address or nil pointer dereference",),
    )


def test_a_pod_seen_running_right_after_a_failed_restart_is_crash_looping() -> None:
    assert _worker_pod(uptime=3.0).is_crash_looping
    assert not _worker_pod(uptime=3600.0).is_crash_looping  # crashed long ago, fine since
    assert not _worker_pod(uptime=None).is_crash_looping


def test_a_proxy_that_closes_at_once_on_every_family_is_a_port_with_no_reply() -> None:
    web = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]), ("::", PORTS["frontend"])))
    l4, p4 = proxy_for(web, "0.0.0.0", PORTS["frontend"], 4301)
    l6, p6 = proxy_for(web, "::", PORTS["frontend"], 4302)
    why = "accepted, then closed at once with no reply"
    dead = snapshot(
        containers=(web,),
        listeners=(l4.model_copy(update={"no_reply": why}), l6.model_copy(update={"no_reply": why})),
        processes=(p4, p6),
    )
    finding = _by_id(diagnose(dead, profile()))[f"port-no-reply:{PORTS['frontend']}"]
    assert finding.severity is Severity.HIGH and finding.services == ("frontend",)
    half = snapshot(containers=(web,), listeners=(l4.model_copy(update={"no_reply": why}), l6), processes=(p4, p6))
    assert f"port-no-reply:{PORTS['frontend']}" not in _by_id(diagnose(half, profile()))


def test_a_neighbour_holding_our_port_is_looked_up_never_stopped() -> None:
    # two compose projects publish one port: the neighbour's got it, ours failed to bind
    port = PORTS["backend"]
    theirs = container("api", project="neighbour", publish=(("0.0.0.0", port),))
    ours = container(
        "backend",
        "created",
        declared=(("0.0.0.0", port),),
        error=f"Bind for 0.0.0.0:{port} failed: port is already allocated",
    )
    listener, proxy = proxy_for(theirs, "0.0.0.0", port, 4401)
    snap = snapshot(containers=(theirs, ours), listeners=(listener,), processes=(proxy,))
    finding = _by_id(diagnose(snap, profile()))[f"port-conflict:{port}"]
    assert not any(c.startswith("docker stop") for c in finding.commands), finding.commands
    assert any(c.startswith("docker inspect") and theirs.name in c for c in finding.commands)
    # starting ours while theirs holds the port would only fail again
    assert not any(c.startswith("docker compose") for c in finding.commands), finding.commands


def test_a_neighbour_blocking_our_container_is_one_finding_not_two() -> None:
    port = PORTS["backend"]
    theirs = container("api", project="neighbour", publish=(("0.0.0.0", port),))
    ours = container("backend", "created", declared=(("0.0.0.0", port),), error="port is already allocated")
    listener, proxy = proxy_for(theirs, "0.0.0.0", port, 4501)
    found = _by_id(diagnose(snapshot(containers=(theirs, ours), listeners=(listener,), processes=(proxy,)), profile()))
    assert f"port-conflict:{port}" in found
    assert f"port-foreign-owner:{port}" not in found
