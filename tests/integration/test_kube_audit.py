"""The cluster side against a real kube-apiserver (fake kubelet playing the node): the whole seed
scenario, a read-only identity, a context outside the allowlist, and the request count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackwarden.adapters.kubernetes import observe_kubernetes
from stackwarden.errors import PermanentError
from stackwarden.model import CrashCategory, KubernetesSpec, Runtime, Severity
from tests.conftest import FullSeed, SeedCluster
from tests.integration.audit_helpers import audit
from tests.support.compose import PANIC_LINE
from tests.support.kube import (
    CrashLoopBackOff,
    audit_events,
    audit_offset,
    bind_read_only,
    cluster_ip_service,
    delete_namespace,
    deployment,
    new_namespace,
    pods_settled,
)
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.kube, pytest.mark.docker]


def test_full_seed_scenario_conflicts_one_to_four(full_seed: FullSeed) -> None:
    _, snapshot, findings = audit(full_seed.profile_path)
    assert snapshot.reachable(Runtime.KUBERNETES)

    dual = findings["dual-deployment"]
    assert dual.severity is Severity.HIGH
    assert set(dual.services) == {"backend", "frontend", "postgres", "redis"}
    assert set(dual.runtimes) == {Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST}
    evidence = "\n".join(dual.evidence)
    assert f"kubernetes: Deployment {full_seed.cluster.namespace}/frontend (5/5 ready)" in evidence
    assert f"kubernetes: Deployment {full_seed.cluster.namespace}/backend (0/4 ready)" in evidence

    ports = full_seed.scenario.ports
    for service in ("postgres", "redis"):
        assert findings[f"port-conflict:{ports[service]}"].severity is Severity.CRITICAL
    assert not [f for f in findings if f in {f"port-conflict:{ports['backend']}", f"port-conflict:{ports['frontend']}"}]

    crash = findings["crash-loop:backend"]
    assert crash.severity is Severity.CRITICAL
    assert crash.cause is not None and crash.cause.category is CrashCategory.CODE_ISSUE
    assert set(crash.runtimes) == {Runtime.COMPOSE, Runtime.KUBERNETES}
    assert len([loc for loc in crash.locations if loc.kind == "pod"]) == 4
    assert len([loc for loc in crash.locations if loc.kind == "container"]) == 1
    assert "the same root cause in compose and kubernetes" in crash.summary
    assert any(PANIC_LINE in line for line in crash.evidence)
    assert [f for f in findings if f.startswith("crash-loop:")] == ["crash-loop:backend"]

    isolation = findings["network-isolation"]
    assert isolation.severity is Severity.OK
    for svc in ("backend-service", "frontend-service", "postgres-service", "redis-service"):
        assert f"Service {svc}: ClusterIP (internal only, no host port)" in isolation.evidence
    backend_pods = [p for p in snapshot.kubernetes.pods if p.labels.get("app") == "backend"]  # type: ignore[union-attr]
    assert all(p.last_exit_code == 101 and p.restart_count == 7 for p in backend_pods)


@pytest.fixture
def tenant(control_plane: Any, kubelet: Any) -> Iterator[str]:
    """A namespace of its own with a crash-looping and a running deployment."""
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-ro")
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=101, restart_count=3, logs=PANIC_LINE + "\n"), selector="app=backend", namespace=ns
    )
    from kubernetes import client as k8s

    k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("backend", 2))
    k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("frontend", 1))
    k8s.CoreV1Api(api).create_namespaced_service(ns, cluster_ip_service("backend-service", "backend", 2000))
    pods_settled(api, ns, {"backend": (2, "CrashLoopBackOff"), "frontend": (1, "Running")})
    try:
        yield ns
    finally:
        delete_namespace(api, ns)


def test_read_only_identity_can_run_the_whole_audit(control_plane: Any, tenant: str) -> None:
    spec = KubernetesSpec(
        namespace=tenant,
        kubeconfig=str(control_plane.viewer_kubeconfig),
        allowed_contexts=("*",),
        allow_any_context=True,
    )
    before = observe_kubernetes(spec)
    assert before.status.reachable
    assert {"list pods in " + tenant, "list deployments in " + tenant} <= set(before.observation.forbidden)

    bind_read_only(control_plane.admin_api_client(), tenant)
    after = observe_kubernetes(spec).observation
    assert after.forbidden == ()
    assert {w.name for w in after.workloads} == {"backend", "frontend"}
    crashing = [p for p in after.pods if p.is_crash_looping]
    assert len(crashing) == 2 and all(PANIC_LINE in p.log_tail for p in crashing)
    assert [s.type for s in after.services] == ["ClusterIP"]


def test_context_outside_allowlist_is_observed_and_marked(seed_cluster: SeedCluster, tmp_path: Path) -> None:
    spec = KubernetesSpec(
        namespace=seed_cluster.namespace, kubeconfig=str(seed_cluster.kubeconfig), allowed_contexts=("minikube",)
    )
    result = observe_kubernetes(spec)
    assert result.status.reachable
    context = result.observation.context
    assert context is not None and context.name == seed_cluster.context and context.allowed is False
    assert len(result.observation.pods) == 9  # still observed, read-only


def test_requests_per_audit_do_not_grow_with_pods(control_plane: Any, kubelet: Any) -> None:
    from kubernetes import client as k8s

    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-count")
    try:
        bind_read_only(api, ns)
        spec = KubernetesSpec(
            namespace=ns,
            kubeconfig=str(control_plane.viewer_kubeconfig),
            allowed_contexts=("*",),
            allow_any_context=True,
        )
        apps = k8s.AppsV1Api(api)
        apps.create_namespaced_deployment(ns, deployment("frontend", 1))
        pods_settled(api, ns, {"frontend": (1, "Running")})
        offset = audit_offset(control_plane)
        observe_kubernetes(spec)
        few = audit_events(control_plane, "viewer", offset)

        apps.patch_namespaced_deployment_scale("frontend", ns, {"spec": {"replicas": 12}})
        pods_settled(api, ns, {"frontend": (12, "Running")})
        offset = audit_offset(control_plane)
        seen = observe_kubernetes(spec)
        many = audit_events(control_plane, "viewer", offset)
    finally:
        delete_namespace(api, ns)
    assert len(seen.observation.pods) == 12
    assert len(few) == len(many), ([e["requestURI"] for e in few], [e["requestURI"] for e in many])
    # version + deployments, statefulsets, pods, services, events, endpoints: one list call each
    assert len(many) == 7, [e["requestURI"] for e in many]
    # the events are the namespace's Warnings only, selected by the apiserver (one list call)
    (events,) = [e["requestURI"] for e in many if "/events" in e["requestURI"]]
    assert "fieldSelector=type%3DWarning" in events


def test_unreachable_cluster_is_a_permanent_error(control_plane: Any, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = Path(control_plane.admin_kubeconfig).read_text().replace(str(control_plane.apiserver_port), str(port))
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(config)
    with pytest.raises(PermanentError, match="not reachable"):
        observe_kubernetes(KubernetesSpec(namespace="default", kubeconfig=str(dead)))
