"""No false all-clear: a service with no ready instance where it should run is a finding whose
cause is the runtime's own reason and message, and the report never says "no conflicts" then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stackwarden.model import (
    AuditResult,
    CrashCategory,
    KubeEndpoints,
    KubeEvent,
    KubeObservation,
    KubeServicePort,
    KubeServiceState,
    KubeWorkloadState,
    Mode,
    ModeRecommendation,
    PodCondition,
    PodState,
    Runtime,
    Severity,
)
from stackwarden.model.finding import Finding
from stackwarden.report.markdown import render_markdown
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, container, profile, proxy_for, snapshot

NS = "seedstack"
SCHEDULER = (
    "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def _workload(name: str, replicas: int, ready: int = 0) -> KubeWorkloadState:
    return KubeWorkloadState(
        kind="Deployment",
        name=name,
        namespace=NS,
        uid=f"w-{name}",
        resource_version="1",
        replicas=replicas,
        ready_replicas=ready,
        selector={"app": name},
    )


def _pod(name: str, i: int = 0, **fields: Any) -> PodState:
    base: dict[str, Any] = {
        "name": f"{name}-5c8d-{i}",
        "namespace": NS,
        "uid": f"{name}-{i}",
        "phase": "Running",
        "labels": {"app": name},
        "images": (f"registry.example/{name}:1",),
        "total_containers": 1,
    }
    return PodState(**{**base, **fields})


def _event(pod: PodState, reason: str, message: str, source: str = "kubelet") -> KubeEvent:
    return KubeEvent(kind="Pod", name=pod.name, reason=reason, message=message, type="Warning", source=source)


def _kube(*pods: PodState, events: tuple[KubeEvent, ...] = (), **extra: Any) -> KubeObservation:
    apps = {p.labels["app"] for p in pods} | {"backend", "frontend"}
    return KubeObservation(
        namespace=NS,
        workloads=tuple(_workload(a, 2 if a == "frontend" else 1) for a in sorted(apps)),
        pods=pods,
        events=events,
        **extra,
    )


def _k8s_findings(kube: KubeObservation) -> dict[str, Finding]:
    findings = diagnose(snapshot(kubernetes=kube), profile(default_mode="k8s-only"))
    return {f.id: f for f in findings}


def test_image_pull_backoff_is_a_finding_with_the_kubelets_message() -> None:
    pod = _pod(
        "frontend",
        phase="Pending",
        waiting_reason="ImagePullBackOff",
        waiting_message='Back-off pulling image "registry.example/frontend:1"',
    )
    failed = 'Failed to pull image "registry.example/frontend:1": rpc error: code = NotFound desc = not found'
    backend = _pod("backend", ready=True, ready_containers=1)
    found = _k8s_findings(_kube(pod, backend, events=(_event(pod, "Failed", failed),)))
    finding = found["service-unavailable:frontend:kubernetes"]
    assert finding.severity is Severity.HIGH
    assert finding.cause is not None and finding.cause.signature == "ImagePullBackOff"
    assert finding.cause.category is CrashCategory.CONFIGURATION
    assert any('Back-off pulling image "registry.example/frontend:1"' in e for e in finding.evidence)
    assert any(failed in e for e in finding.evidence)
    assert "registry.example/frontend:1" in finding.recommendation
    assert "service-unavailable:backend:kubernetes" not in found  # a ready pod: nothing to say


def test_missing_secret_key_names_the_key_and_the_secret() -> None:
    message = f"couldn't find key DB_PASSWORD in Secret {NS}/app-secrets"
    pod = _pod("backend", phase="Pending", waiting_reason="CreateContainerConfigError", waiting_message=message)
    finding = _k8s_findings(_kube(pod))["service-unavailable:backend:kubernetes"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.CONFIGURATION
    assert any(message in e for e in finding.evidence)
    assert f"Add key DB_PASSWORD to Secret {NS}/app-secrets" in finding.recommendation


def test_missing_configmap_is_named() -> None:
    message = 'configmap "backend-config" not found'
    pod = _pod("backend", phase="Pending", waiting_reason="CreateContainerConfigError", waiting_message=message)
    finding = _k8s_findings(_kube(pod))["service-unavailable:backend:kubernetes"]
    assert "Create ConfigMap backend-config" in finding.recommendation


def test_unschedulable_pod_carries_the_schedulers_message() -> None:
    pod = _pod(
        "backend",
        phase="Pending",
        total_containers=1,
        conditions=(PodCondition(type="PodScheduled", status="False", reason="Unschedulable", message=SCHEDULER),),
    )
    event = _event(pod, "FailedScheduling", SCHEDULER, source="default-scheduler")
    finding = _k8s_findings(_kube(pod, events=(event,)))["service-unavailable:backend:kubernetes"]
    assert finding.cause is not None and finding.cause.category is CrashCategory.RESOURCES
    assert any(SCHEDULER in e for e in finding.evidence)
    assert "resource requests" in finding.recommendation


def test_failing_readiness_probe_is_quoted() -> None:
    pod = _pod(
        "backend",
        conditions=(PodCondition(type="Ready", status="False", reason="ContainersNotReady"),),
    )
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    finding = _k8s_findings(_kube(pod, events=(_event(pod, "Unhealthy", probe),)))[
        "service-unavailable:backend:kubernetes"
    ]
    assert finding.cause is not None and finding.cause.signature == "readiness-probe-failed"
    assert any(probe in e for e in finding.evidence)


def test_oom_killed_in_last_state_is_a_resource_problem_with_its_exit_code() -> None:
    pod = _pod("backend", restart_count=1, last_exit_code=137, last_reason="OOMKilled", phase="Running")
    found = _k8s_findings(_kube(pod))
    crash = found.get("crash-loop:backend") or found["service-unavailable:backend:kubernetes"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.RESOURCES
    assert crash.cause.exit_code == 137


def test_service_selecting_no_pod_is_found_and_the_patch_points_at_the_workload() -> None:
    pod = _pod("backend", ready=True, ready_containers=1)
    svc = KubeServiceState(
        name="backend-service",
        namespace=NS,
        type="ClusterIP",
        ports=(KubeServicePort(port=2000),),
        selector={"app": "backend-v2"},
    )
    data_profile = profile(default_mode="k8s-only")
    spec = data_profile.services["backend"].kubernetes
    assert spec is not None
    bound = data_profile.model_copy(
        update={
            "services": {
                **data_profile.services,
                "backend": data_profile.services["backend"].model_copy(
                    update={"kubernetes": spec.model_copy(update={"service": "backend-service"})}
                ),
            }
        }
    )
    kube = _kube(pod, services=(svc,), endpoints=(KubeEndpoints(name="backend-service"),))
    found = {f.id: f for f in diagnose(snapshot(kubernetes=kube), bound)}
    finding = found["service-selector-unmatched:backend-service"]
    assert finding.severity is Severity.HIGH
    assert "app=backend-v2" in finding.summary and "app=backend" in finding.summary
    assert any(
        "patch service backend-service" in c and '{"spec":{"selector":{"app":"backend"}}}' in c
        for c in finding.commands
    )


def test_a_stopped_compose_service_is_reported_with_its_state_and_the_start_command() -> None:
    redis = container("redis", "exited", exit_code=0)
    frontend = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]),))
    others = (container("backend"), container("postgres"), frontend)
    listener, proxy = proxy_for(frontend, "0.0.0.0", PORTS["frontend"], 900)
    found = {
        f.id: f
        for f in diagnose(snapshot(containers=(redis, *others), listeners=(listener,), processes=(proxy,)), profile())
    }
    finding = found["service-unavailable:redis:compose"]
    assert finding.severity is Severity.HIGH
    assert "exited, exit code 0" in finding.summary
    assert "docker compose -p seedstack -f /srv/seed/compose.yaml start redis" in finding.commands
    assert [f for f in found if f.startswith("service-unavailable:")] == ["service-unavailable:redis:compose"]


def test_a_service_without_any_container_gets_compose_up() -> None:
    found = {f.id: f for f in diagnose(snapshot(containers=(container("backend"),)), profile())}
    finding = found["service-unavailable:redis:compose"]
    assert "docker compose -p seedstack -f /srv/seed/compose.yaml up -d redis" in finding.commands


def test_no_conflicts_is_never_printed_over_a_broken_service() -> None:
    pod = _pod("backend", phase="Pending", waiting_reason="ErrImagePull", waiting_message="not found")
    prof = profile(default_mode="k8s-only")
    snap = snapshot(kubernetes=_kube(pod))
    findings = tuple(f for f in diagnose(snap, prof) if f.rule == "service-unavailable")
    low = tuple(f.model_copy(update={"severity": Severity.LOW}) for f in findings)  # even if someone lowers it
    for chosen in (findings, low):
        result = AuditResult(
            profile=prof.name,
            snapshot_taken_at=datetime.now(UTC).isoformat(),
            findings=chosen,
            recommendation=ModeRecommendation(mode=Mode.K8S_ONLY, reasons=("x",)),
        )
        text = render_markdown(result, snap, prof)
        assert result.at_least_conflict()
        assert "NO CONFLICTS" not in text and "No conflicts" not in text


def test_runtime_not_observed_is_not_blamed_on_the_service() -> None:
    found = {f.id for f in diagnose(snapshot(docker_reachable=False), profile())}
    assert not [f for f in found if f.startswith("service-unavailable:")]
    assert Runtime.COMPOSE.value == "compose"


def test_pods_that_cannot_be_read_are_not_blamed_on_the_service() -> None:
    forbidden = ("list pods in seedstack",)
    down = KubeObservation(namespace=NS, workloads=(_workload("backend", 1, 0),), forbidden=forbidden)
    finding = _k8s_findings(down)["service-unavailable:backend:kubernetes"]
    assert finding.cause is not None and finding.cause.signature == "pods-not-readable"
    up = KubeObservation(namespace=NS, workloads=(_workload("backend", 1, 1),), forbidden=forbidden)
    assert "service-unavailable:backend:kubernetes" not in _k8s_findings(up)  # the controller counts it ready
