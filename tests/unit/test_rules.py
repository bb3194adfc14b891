"""Every rule on fixture snapshots (no engine): the seed's Docker-and-host half and variations."""

from __future__ import annotations

import importlib
import pkgutil

import stackwarden.rules as rules_pkg
from stackwarden.model import (
    CrashCategory,
    KubeObservation,
    KubeWorkloadState,
    Listener,
    PodState,
    Runtime,
    Severity,
)
from stackwarden.rules import RULES, diagnose
from tests.support.builders import (
    PANIC,
    PORTS,
    container,
    process,
    profile,
    proxy_for,
    seed_snapshot,
    snapshot,
    stop_and_wait,
)


def _by_id(findings: tuple) -> dict:  # type: ignore[type-arg]
    return {f.id: f for f in findings}


def test_every_rule_module_registers_a_rule() -> None:
    registered_modules = {func.__module__ for func in RULES.values()}
    for info in pkgutil.iter_modules(rules_pkg.__path__):
        if info.name == "registry":
            continue
        module = importlib.import_module(f"stackwarden.rules.{info.name}")
        assert module.__name__ in registered_modules, f"{info.name} registers no rule"


def test_seed_scenario_findings_and_severities() -> None:
    findings = _by_id(diagnose(seed_snapshot(), profile()))
    assert findings["dual-deployment"].severity is Severity.HIGH
    assert findings[f"port-conflict:{PORTS['postgres']}"].severity is Severity.CRITICAL
    assert findings[f"port-conflict:{PORTS['redis']}"].severity is Severity.CRITICAL
    assert findings["crash-loop:backend"].severity is Severity.CRITICAL
    assert findings["network-isolation"].severity is Severity.OK
    assert set(findings) == {
        "dual-deployment",
        f"port-conflict:{PORTS['postgres']}",
        f"port-conflict:{PORTS['redis']}",
        "crash-loop:backend",
        "network-isolation",
    }


def test_findings_are_stable_across_runs() -> None:
    first = diagnose(seed_snapshot(), profile())
    second = diagnose(seed_snapshot(), profile())
    assert [f.id for f in first] == [f.id for f in second]
    assert [f.severity.rank for f in first] == sorted((f.severity.rank for f in first), reverse=True)


def test_dual_deployment_names_each_runtime_and_identity() -> None:
    finding = _by_id(diagnose(seed_snapshot(), profile()))["dual-deployment"]
    assert set(finding.services) == {"postgres", "redis"}
    text = "\n".join(finding.evidence)
    assert "PID 2792" in text and "PID 2785" in text
    assert "seedstack-postgres-1" in text and "seedstack-redis-1" in text
    assert stop_and_wait(2792, "INT") in finding.commands  # postgres' own stop signal, not SIGKILL
    assert stop_and_wait(2785) in finding.commands


def test_no_dual_deployment_when_each_service_has_one_runtime() -> None:
    snap = snapshot(containers=(container("backend"), container("redis")))
    assert "dual-deployment" not in _by_id(diagnose(snap, profile()))


def test_failed_publisher_names_the_holder() -> None:
    finding = _by_id(diagnose(seed_snapshot(), profile()))[f"port-conflict:{PORTS['postgres']}"]
    assert "seedstack-postgres-1 declares port" in finding.summary
    assert "process postgres (PID 2792)" in finding.summary
    assert any("address already in use" in e for e in finding.evidence)
    assert finding.action == "Stop process postgres (PID 2792)"


def test_ipv4_ipv6_shadowing_names_both_owners() -> None:
    finding = _by_id(diagnose(seed_snapshot(), profile()))[f"port-conflict:{PORTS['redis']}"]
    assert "2 owners" in finding.summary
    assert "container seedstack-redis-1" in finding.summary and "process redis-server (PID 2785)" in finding.summary
    shadow = [e for e in finding.evidence if e.startswith("IPv4/IPv6 shadowing")]
    assert shadow and "PID 2785" in shadow[0] and "over IPv6" in shadow[0]
    assert {loc.runtime for loc in finding.locations} == {Runtime.COMPOSE, Runtime.HOST}


def test_two_host_processes_on_one_port_conflict_even_in_one_family() -> None:
    port = PORTS["redis"]
    snap = snapshot(
        listeners=(
            Listener(address="127.0.0.1", port=port, pid=10),
            Listener(address="::", port=port, pid=11),
        ),
        processes=(process(10, "redis-server"), process(11, "redis-server")),
    )
    finding = _by_id(diagnose(snap, profile()))[f"port-conflict:{port}"]
    assert "PID 10" in finding.summary and "PID 11" in finding.summary


def test_port_held_by_unknown_executable_is_reported_not_stopped() -> None:
    port = PORTS["postgres"]
    snap = snapshot(listeners=(Listener(address="0.0.0.0", port=port, pid=77),), processes=(process(77, "nc"),))
    finding = _by_id(diagnose(snap, profile()))[f"port-foreign-owner:{port}"]
    assert finding.severity is Severity.HIGH
    assert "will not touch process nc (PID 77)" in finding.recommendation
    assert not any(c.startswith("kill") for c in finding.commands)


def test_single_in_profile_owner_is_no_conflict() -> None:
    port = PORTS["redis"]
    redis = container("redis", publish=(("0.0.0.0", port),))
    listener, proxy = proxy_for(redis, "0.0.0.0", port, 500)
    findings = _by_id(diagnose(snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,)), profile()))
    assert not [i for i in findings if i.startswith("port-")]


def test_crash_loop_code_issue_has_panic_line_and_not_deployment_conflict() -> None:
    finding = _by_id(diagnose(seed_snapshot(), profile()))["crash-loop:backend"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.CODE_ISSUE
    assert any(PANIC in e for e in finding.evidence)
    assert "not a deployment conflict" in finding.recommendation
    assert finding.action == "Fix code issue"
    assert finding.commands == ("docker logs --tail 50 seedstack-backend-1",)


def test_crash_loop_from_port_in_use_names_the_owner() -> None:
    port = PORTS["backend"]
    backend = container(
        "backend",
        "restarting",
        exit_code=1,
        restart_count=3,
        logs=("httpd: bind: Address already in use",),
    )
    snap = snapshot(
        containers=(backend,),
        listeners=(Listener(address="0.0.0.0", port=port, pid=4242),),
        processes=(process(4242, "reconciliation-backend"),),
    )
    finding = _by_id(diagnose(snap, profile()))["crash-loop:backend"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.DEPLOYMENT_CONFLICT
    assert finding.cause.port == port
    assert "process reconciliation-backend (PID 4242)" in finding.summary


def test_same_cause_in_compose_and_pods_is_one_finding_with_every_location() -> None:
    backend = container("backend", "restarting", exit_code=101, restart_count=5, logs=(PANIC,))
    pods = tuple(
        PodState(
            name=f"backend-7d9f-{i}",
            namespace="seedstack",
            uid=f"u{i}",
            phase="Running",
            labels={"app": "backend"},
            waiting_reason="CrashLoopBackOff",
            restart_count=9,
            last_exit_code=101,
            log_tail=(PANIC,),
        )
        for i in range(4)
    )
    kube = KubeObservation(
        namespace="seedstack",
        workloads=(
            KubeWorkloadState(
                kind="Deployment",
                name="backend",
                namespace="seedstack",
                uid="w",
                resource_version="1",
                replicas=4,
                selector={"app": "backend"},
            ),
        ),
        pods=pods,
    )
    findings = diagnose(snapshot(containers=(backend,), kubernetes=kube), profile())
    crash = [f for f in findings if f.rule == "crash-loops"]
    assert len(crash) == 1
    assert set(crash[0].runtimes) == {Runtime.COMPOSE, Runtime.KUBERNETES}
    assert len(crash[0].locations) == 5
    assert "the same root cause in compose and kubernetes" in crash[0].summary
    dual = _by_id(findings)["dual-deployment"]
    assert dual.services == ("backend",)


def test_oom_killed_container_is_a_resource_problem() -> None:
    c = container("frontend", "exited", exit_code=137, restart_count=2, oom_killed=True)
    finding = _by_id(diagnose(snapshot(containers=(c,)), profile()))["crash-loop:frontend"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.RESOURCES


def test_unreachable_docker_is_reported_and_network_check_skipped() -> None:
    findings = _by_id(diagnose(snapshot(docker_reachable=False), profile()))
    assert (
        findings["runtime-unreachable:compose"].severity is Severity.HIGH
    )  # compose-only: the engine runs every service
    assert "connection refused" in findings["runtime-unreachable:compose"].evidence[0]
    assert "network-isolation" not in findings


def test_shared_network_is_not_isolated() -> None:
    ours = container("redis", networks=("seedstack_default",))
    theirs = container("cache", project="otherproject", networks=("seedstack_default",))
    finding = _by_id(diagnose(snapshot(containers=(ours, theirs)), profile()))["network-isolation"]
    assert finding.severity is Severity.MEDIUM
    assert any("otherproject-cache-1" in e for e in finding.evidence)


def test_containers_of_other_projects_are_not_the_profiles() -> None:
    other = container(
        "backend",
        "restarting",
        project="otherproject",
        exit_code=101,
        restart_count=3,
        logs=(PANIC,),
    )
    assert not [
        f for f in diagnose(snapshot(containers=(other,)), profile()) if f.rule in {"crash-loops", "dual-deployment"}
    ]
