"""Chains on fixture snapshots: cycles, a dependency's own (lower) severity, a dependency that
runs nowhere, advice in the dependency's own compose project, Services that route nowhere, a log
read that times out, a runtime not seen, and the report's words for a chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stackwarden.adapters import kubernetes as kube_adapter
from stackwarden.errors import PermanentError
from stackwarden.model import (
    AuditResult,
    CrashCategory,
    KubeContainer,
    KubeContainerPort,
    KubeEndpoints,
    KubeObservation,
    KubeServicePort,
    KubeServiceState,
    KubeWorkloadState,
    Mode,
    ModeRecommendation,
    PodState,
    Runtime,
    RuntimeStatus,
    Severity,
)
from stackwarden.report import render_markdown
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, container, profile, profile_data, snapshot

ENOTFOUND = "Error: getaddrinfo ENOTFOUND {host}"


def _crash(service: str, line: str, **extra: Any) -> Any:
    return container(service, "restarting", exit_code=1, restart_count=5, logs=("> node server.js", line), **extra)


def _by_id(snap: Any, prof: Any) -> dict[str, Any]:
    return {f.id: f for f in diagnose(snap, prof)}


def test_two_services_that_wait_for_each_other_are_a_cycle_not_a_chain() -> None:
    snap = snapshot(
        containers=(
            _crash("backend", ENOTFOUND.format(host="frontend")),
            _crash("frontend", ENOTFOUND.format(host="backend")),
        )
    )
    findings = _by_id(snap, profile())
    for service in ("backend", "frontend"):
        crash = findings[f"crash-loop:{service}"]
        assert crash.caused_by is None and crash.chain == ()
        assert "a dependency cycle" in crash.summary
        assert crash.severity is Severity.CRITICAL


def test_a_dependency_of_the_monitoring_group_gives_its_own_lower_severity() -> None:
    data = profile_data()
    data["services"]["redis"]["group"] = "monitoring"
    findings = _by_id(snapshot(containers=(_crash("backend", ENOTFOUND.format(host="redis")),)), profile(**data))
    root = findings["service-unavailable:redis:compose"]
    crash = findings["crash-loop:backend"]
    assert root.severity is Severity.MEDIUM
    assert crash.severity is Severity.MEDIUM and crash.caused_by == root.id
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN
    assert root.dependents == ("backend",)


def test_the_roots_advice_uses_the_project_and_file_that_define_it() -> None:
    data = profile_data()
    data["compose"] = [
        {"project": "seedstack", "files": ["/srv/seed/compose.yaml"]},
        {"project": "datastores", "files": ["/srv/data/compose.yaml"], "services": ["postgres"]},
    ]
    pg = container("postgres", "exited", exit_code=0, project="datastores")
    findings = _by_id(snapshot(containers=(_crash("backend", ENOTFOUND.format(host="postgres")), pg)), profile(**data))
    crash = findings["crash-loop:backend"]
    assert crash.caused_by == "service-unavailable:postgres:compose"
    starts = [c for c in crash.commands if " start " in c]
    assert starts == ["docker compose -p datastores -f /srv/data/compose.yaml start postgres"]


def test_a_dependency_that_runs_nowhere_and_has_no_home_is_still_the_cause() -> None:
    """k8s-only, redis has no kubernetes side and runs nowhere: no finding of its own says so,
    yet it is why backend crashes."""
    refused = f"Error: connect ECONNREFUSED 127.0.0.1:{PORTS['redis']}"
    backend = _crash("backend", refused, networks=("host",))
    findings = _by_id(snapshot(containers=(backend,)), profile(default_mode="k8s-only"))
    crash = findings["crash-loop:backend"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN
    assert crash.summary.startswith("backend crashes because redis runs nowhere (the profile gives it no home")
    assert crash.caused_by is None and crash.chain == ("backend", "redis")
    assert crash.severity is Severity.HIGH


def test_a_pod_that_names_a_compose_service_is_a_split_across_runtimes() -> None:
    data = profile_data(default_mode="k8s-only")
    data["services"]["backend"]["kubernetes"] = {"name": "backend"}
    prof = profile(**data)
    backend = PodState(
        name="backend-1",
        namespace="seedstack",
        uid="b",
        phase="Running",
        labels={"app": "backend"},
        waiting_reason="CrashLoopBackOff",
        restart_count=3,
        last_exit_code=1,
        log_tail=(ENOTFOUND.format(host="redis"),),
        containers=(KubeContainer(name="backend", reason="CrashLoopBackOff", restart_count=3, last_exit_code=1),),
    )
    workload = KubeWorkloadState(
        kind="Deployment", name="backend", namespace="seedstack", uid="w", resource_version="1", replicas=1,
        selector={"app": "backend"},
    )  # fmt: skip
    snap = snapshot(kubernetes=KubeObservation(namespace="seedstack", workloads=(workload,), pods=(backend,)))
    findings = _by_id(snap, prof)
    crash = findings["crash-loop:backend"]
    # redis has no kubernetes side: a pod cannot reach the compose service by name
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPLOYMENT_CONFLICT
    assert "which a pod cannot reach by name" in crash.summary


def _service_snapshot(target: str, declared: tuple[KubeContainerPort, ...], endpoint_ready: int = 1) -> Any:
    labels = {"app": "backend"}
    pod = PodState(
        name="backend-1", namespace="seedstack", uid="b", phase="Running", labels=labels, ready=True,
        containers=(KubeContainer(name="backend", ready=True, state="running", ports=declared),),
    )  # fmt: skip
    workload = KubeWorkloadState(
        kind="Deployment", name="backend", namespace="seedstack", uid="w", resource_version="1", replicas=1,
        ready_replicas=1, selector=labels,
    )  # fmt: skip
    svc = KubeServiceState(
        name="backend-service", namespace="seedstack", type="ClusterIP", cluster_ip="10.96.0.2",
        ports=(KubeServicePort(port=80, target_port=target),), selector=labels,
    )  # fmt: skip
    ends = KubeEndpoints(name="backend-service", ready=endpoint_ready, ports=(int(target),) if target.isdigit() else ())
    kube = KubeObservation(
        namespace="seedstack", workloads=(workload,), pods=(pod,), services=(svc,), endpoints=(ends,)
    )
    return snapshot(kubernetes=kube)


def _service_profile() -> Any:
    data = profile_data(default_mode="k8s-only")
    data["services"]["backend"]["kubernetes"] = {"name": "backend", "service": "backend-service"}
    return profile(**data)


def test_a_target_port_no_pod_declares_is_found_though_endpoints_exist() -> None:
    http = KubeContainerPort(port=8080, name="http")
    findings = _by_id(_service_snapshot("8081", (http,)), _service_profile())
    mismatch = findings["service-port-mismatch:backend-service"]
    assert mismatch.severity is Severity.HIGH
    assert "targetPort 8081, which no selected pod declares" in mismatch.summary
    assert any('"value": "http"' in c for c in mismatch.commands)  # the patch that points it at the port
    assert "service-port-mismatch:backend-service" not in _by_id(_service_snapshot("8080", (http,)), _service_profile())
    assert "service-port-mismatch:backend-service" not in _by_id(_service_snapshot("http", (http,)), _service_profile())
    named = _by_id(_service_snapshot("web", (http,), endpoint_ready=0), _service_profile())
    assert "a name no container of the pods declares" in named["service-port-mismatch:backend-service"].summary
    # pods that declare no port cannot be checked: no claim either way
    assert "service-port-mismatch:backend-service" not in _by_id(_service_snapshot("8081", ()), _service_profile())


def test_a_service_without_ready_endpoints_while_its_pods_are_ready_is_a_finding() -> None:
    http = KubeContainerPort(port=8080, name="http")
    findings = _by_id(_service_snapshot("8080", (http,), endpoint_ready=0), _service_profile())
    assert findings["service-no-endpoints:backend-service"].severity is Severity.HIGH


def test_a_log_read_that_times_out_marks_only_that_pod_and_skips_its_node(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def hung(api: Any, path: str, timeout: Any, query: Any = None) -> bytes:
        asked.append(path)
        raise PermanentError(f"{path}: the apiserver did not answer in time (timed out): read timed out")

    monkeypatch.setattr(kube_adapter, "_get", hung)
    reads = kube_adapter._LogReads()

    def looping(name: str) -> PodState:
        return PodState(
            name=name, namespace="ns", uid=name, phase="Running", node="node-b", waiting_reason="CrashLoopBackOff",
            restart_count=4, last_exit_code=1,
        )  # fmt: skip

    first = kube_adapter._pod_logs(None, looping("api-1"), 40, (3.0, 2.0), reads)
    second = kube_adapter._pod_logs(None, looping("api-2"), 40, (3.0, 2.0), reads)
    assert len(asked) == 1  # a hung kubelet costs one read timeout, not one per pod
    assert "timed out after 2s" in first.unobserved[0] and "node-b" in first.unobserved[0]
    assert "did not answer an earlier log read" in second.unobserved[0]
    assert [g.reason for g in reads.gaps] == ["timeout", "timeout"]


def test_a_service_not_seen_in_an_unobserved_runtime_is_not_started_twice() -> None:
    snap = snapshot()
    snap = snap.model_copy(
        update={
            "runtimes": (
                *snap.runtimes,
                RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=False, error="timed out"),
            )
        }
    )
    from stackwarden.observe import coverage_of

    snap = snap.model_copy(update={"coverage": coverage_of(snap.runtimes, None)})
    finding = _by_id(snap, profile())["service-unavailable:backend:compose"]
    assert "may run where it was not seen" in finding.recommendation
    assert not [c for c in finding.commands if " up " in c or " start " in c]


def test_the_report_says_the_chain_and_the_roots_dependents() -> None:
    pg = container("postgres", "exited", exit_code=0)
    snap = snapshot(containers=(_crash("backend", ENOTFOUND.format(host="postgres")), pg))
    prof = profile()
    findings = diagnose(snap, prof)
    result = AuditResult(
        profile="seedstack",
        snapshot_taken_at=datetime.now(UTC).isoformat(),
        findings=findings,
        recommendation=ModeRecommendation(mode=Mode.COMPOSE_ONLY, reasons=("x",)),
    )
    text = render_markdown(result, snap, prof)
    assert "**Caused by:** `service-unavailable:postgres:compose` (backend → postgres)" in text
    assert "**Root cause of:** backend" in text
    assert "Dependency down" in text and "Code issue" not in text


def test_a_container_log_read_that_times_out_marks_only_that_container() -> None:
    import requests

    from stackwarden.adapters import docker as docker_adapter

    class HungLogs:
        def logs(self, *args: Any, **kwargs: Any) -> bytes:
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)")

    looping = container("backend", "restarting", exit_code=1, restart_count=4)
    seen = docker_adapter._with_logs(HungLogs(), looping, 40)  # type: ignore[arg-type]
    assert seen.log_tail == () and "timed out" in seen.unobserved[0]
    crash = _by_id(snapshot(containers=(seen,)), profile())["crash-loop:backend"]
    assert crash.gaps == seen.unobserved and "its logs could not be read" in crash.summary
