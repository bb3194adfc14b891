"""The cluster's own reasons, against the real kube-apiserver and the fake kubelet (which writes
statuses and events as a real kubelet and scheduler do): an image that cannot be pulled, a
missing Secret key, an unschedulable pod, a failing readiness probe, OOMKilled in lastState,
a Service whose selector matches no pod, and a port-less worker that is fine."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.model import CrashCategory, Runtime, Severity
from stackwarden.placement import stack_view
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose
from tests.integration.audit_helpers import observe
from tests.support.kube import (
    ConfigError,
    CrashLoopBackOff,
    ImagePullFailure,
    Running,
    Unschedulable,
    cluster_ip_service,
    delete_namespace,
    deployment,
    new_namespace,
)
from tests.support.realparts import free_ports, run, wait_for

pytestmark = pytest.mark.kube

APPS = ("web", "api", "search", "cache", "etl", "worker", "backend")
PROBE = "HTTP probe failed with statuscode: 503"


@dataclass(frozen=True)
class Broken:
    namespace: str
    profile_path: Path
    kubeconfig: Path


def _settled(core: k8s.CoreV1Api, ns: str) -> bool:
    """Every app's pod shows the state its behaviour gives it, and its events are written."""
    pods = {p.metadata.labels.get("app"): p for p in core.list_namespaced_pod(ns).items}
    if set(pods) != set(APPS):
        return False

    def waiting(app: str) -> str | None:
        statuses = pods[app].status.container_statuses or []
        return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None

    conditions = {c.type: c for c in pods["search"].status.conditions or []}
    scheduled = conditions.get("PodScheduled")
    ready = {a: bool(pods[a].status.container_statuses) and pods[a].status.container_statuses[0].ready for a in APPS}
    reasons = {e.reason for e in core.list_namespaced_event(ns).items}
    return (
        waiting("web") == "ImagePullBackOff"
        and waiting("api") == "CreateContainerConfigError"
        and waiting("etl") == "CrashLoopBackOff"
        and scheduled is not None
        and scheduled.status == "False"
        and pods["cache"].status.phase == "Running"
        and not ready["cache"]
        and ready["worker"]
        and ready["backend"]
        and {"Failed", "BackOff", "Unhealthy", "FailedScheduling"} <= reasons
    )


@pytest.fixture
def broken(control_plane: Any, kubelet: Any, tmp_path: Path) -> Iterator[Broken]:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-why")
    kubelet.set_behaviour(ImagePullFailure(), selector="app=web", namespace=ns)
    kubelet.set_behaviour(ConfigError(), selector="app=api", namespace=ns)
    kubelet.set_behaviour(Unschedulable(), selector="app=search", namespace=ns)
    kubelet.set_behaviour(Running(ready=False, readiness_failure=PROBE), selector="app=cache", namespace=ns)
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=137, reason="OOMKilled", restart_count=3, logs="loading 4000000 rows\n"),
        selector="app=etl",
        namespace=ns,
    )
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    for app in APPS:
        apps.create_namespaced_deployment(ns, deployment(app, 1))
    # the Service still selects the old label: it matches no pod
    core.create_namespaced_service(ns, cluster_ip_service("backend-service", "backend-v2", 2000))
    ports = dict(zip(APPS, free_ports(len(APPS)), strict=True))
    services: dict[str, Any] = {
        app: {"ports": [ports[app]], "kubernetes": {"name": app}} for app in APPS if app != "worker"
    }
    services["worker"] = {"kubernetes": {"name": "worker"}}  # port-less
    services["backend"]["kubernetes"]["service"] = "backend-service"
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(
        yaml.safe_dump(
            {
                "name": ns,
                "default_mode": "k8s-only",
                "compose": {"project": ns, "files": [str(tmp_path / "unused.compose.yaml")]},
                "kubernetes": {
                    "namespace": ns,
                    "kubeconfig": str(control_plane.admin_kubeconfig),
                    "allowed_contexts": ["stackwarden-test"],
                },
                "services": services,
            },
            sort_keys=False,
        )
    )
    try:
        wait_for(lambda: _settled(core, ns), 60, f"pods and events in {ns} to settle")
        yield Broken(ns, profile_path, Path(control_plane.admin_kubeconfig))
    finally:
        delete_namespace(api, ns)


def test_each_cluster_reason_is_a_finding_with_the_runtimes_own_words(broken: Broken) -> None:
    ns = broken.namespace
    profile = load_profile(broken.profile_path)
    snapshot = observe(profile)
    assert snapshot.reachable(Runtime.KUBERNETES)
    findings = {f.id: f for f in diagnose(snapshot, profile)}

    web = findings["service-unavailable:web:kubernetes"]
    assert web.severity is Severity.HIGH and web.cause is not None
    assert web.cause.signature == "ImagePullBackOff" and web.cause.category is CrashCategory.CONFIGURATION
    evidence = "\n".join(web.evidence)
    assert 'Back-off pulling image "example.invalid/web:1"' in evidence
    assert 'Failed to pull image "example.invalid/web:1": rpc error: code = NotFound' in evidence

    api = findings["service-unavailable:api:kubernetes"]
    assert api.cause is not None and api.cause.signature == "CreateContainerConfigError"
    assert f"couldn't find key password in Secret {ns}/app-secrets" in "\n".join(api.evidence)
    assert f"Add key password to Secret {ns}/app-secrets" in api.recommendation

    search = findings["service-unavailable:search:kubernetes"]
    assert search.cause is not None and search.cause.signature == "Unschedulable"
    assert search.cause.category is CrashCategory.RESOURCES
    assert any("0/1 nodes are available: 1 Insufficient memory." in e for e in search.evidence)
    assert any(e.source == "default-scheduler" and e.reason == "FailedScheduling" for e in snapshot.kubernetes.events)  # type: ignore[union-attr]

    cache = findings["service-unavailable:cache:kubernetes"]
    assert cache.cause is not None and cache.cause.signature == "readiness-probe-failed"
    assert any(f"Readiness probe failed: {PROBE}" in e for e in cache.evidence)

    etl = findings["crash-loop:etl"]
    assert etl.cause is not None and etl.cause.category is CrashCategory.RESOURCES
    assert etl.cause.exit_code == 137 and "exit code 137" in etl.locations[0].detail

    selector = findings["service-selector-unmatched:backend-service"]
    assert "app=backend-v2" in selector.summary
    assert "Endpoints backend-service: " in "\n".join(selector.evidence)

    # the port-less worker is placed by its workload and is fine; so is the backend's pod
    view = stack_view(snapshot, profile)
    assert view.placements["worker"].runtimes == (Runtime.KUBERNETES,)
    assert len(view.placements["worker"].pods) == 1
    assert not [f for f in findings if f.endswith((":worker:kubernetes", ":backend:kubernetes"))]
    assert "crash-loop:worker" not in findings

    # the advice resolves it on this host: the printed kubectl patch points the Service at the pods
    patch = next(c for c in selector.commands if " patch service " in c)
    run(shlex.split(patch), env={**os.environ, "KUBECONFIG": str(broken.kubeconfig)})

    def endpoints_ready() -> bool:
        again = observe(profile)
        ends = {e.name: e for e in again.kubernetes.endpoints} if again.kubernetes else {}  # type: ignore[union-attr]
        return "backend-service" in ends and ends["backend-service"].ready == 1

    wait_for(endpoints_ready, 30, "backend-service to get its endpoint")
    after = {f.id for f in diagnose(observe(profile), profile)}
    assert "service-selector-unmatched:backend-service" not in after
