"""The cluster side on fixture snapshots and kubeconfigs: exposure, isolation, allowlist."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackwarden.adapters.kubernetes import flavour_of, read_contexts
from stackwarden.errors import PermanentError
from stackwarden.model import (
    KubeContext,
    KubeObservation,
    KubernetesSpec,
    KubeServicePort,
    KubeServiceState,
    Runtime,
    Severity,
)
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, container, profile, proxy_for, snapshot


def _svc(name: str, kind: str = "ClusterIP", port: int = 80, node_port: int | None = None) -> KubeServiceState:
    return KubeServiceState(
        name=name, namespace="seedstack", type=kind, ports=(KubeServicePort(port=port, node_port=node_port),)
    )


def _kube(*services: KubeServiceState, context: KubeContext | None = None) -> KubeObservation:
    return KubeObservation(namespace="seedstack", services=services, context=context)


def test_clusterip_services_are_internal_and_isolation_is_ok() -> None:
    kube = _kube(_svc("backend-service", port=2000), _svc("postgres-service", port=5432))
    snap = snapshot(kubernetes=kube)
    findings = {f.id: f for f in diagnose(snap, profile())}
    iso = findings["network-isolation"]
    assert iso.severity is Severity.OK
    assert "Service backend-service: ClusterIP (internal only, no host port)" in iso.evidence
    assert any(e.startswith("All Kubernetes services are ClusterIP") for e in iso.evidence)
    assert not [f for f in findings if f.startswith("port-")]


def test_nodeport_on_a_port_compose_publishes_is_a_port_conflict() -> None:
    port = PORTS["redis"]
    redis = container("redis", publish=(("0.0.0.0", port),))
    listener, proxy = proxy_for(redis, "0.0.0.0", port, 700)
    kube = _kube(_svc("redis-service", "NodePort", 6379, node_port=port))
    snap = snapshot(containers=(redis,), listeners=(listener,), processes=(proxy,), kubernetes=kube)
    finding = {f.id: f for f in diagnose(snap, profile())}[f"port-conflict:{port}"]
    assert finding.severity is Severity.CRITICAL
    assert f"kubernetes Service seedstack/redis-service (NodePort, NodePort {port})" in finding.summary
    assert {loc.runtime for loc in finding.locations} == {Runtime.COMPOSE, Runtime.KUBERNETES}


def test_context_outside_allowlist_is_marked_read_only() -> None:
    ctx = KubeContext(name="prod-east", cluster="prod", server="https://10.0.0.1", allowed=False, current=True)
    finding = {f.id: f for f in diagnose(snapshot(kubernetes=_kube(context=ctx)), profile())}[
        "kube-context-not-allowed:prod-east"
    ]
    assert finding.severity is Severity.LOW
    assert "observed read-only" in finding.summary


def test_forbidden_reads_are_reported() -> None:
    kube = KubeObservation(namespace="seedstack", forbidden=("list pods in seedstack",))
    finding = {f.id: f for f in diagnose(snapshot(kubernetes=kube), profile())}["kube-forbidden"]
    assert finding.severity is Severity.MEDIUM and "list pods in seedstack" in finding.summary


@pytest.mark.parametrize(
    ("context", "cluster", "expected"),
    [
        ("minikube", "minikube", "minikube"),
        ("kind-dev", "kind-dev", "kind"),
        ("docker-desktop", "docker-desktop", "docker-desktop"),
        ("prod", "prod", "other"),
    ],
)
def test_flavours(context: str, cluster: str, expected: str) -> None:
    assert flavour_of(context, cluster, None) == expected


def test_read_contexts_applies_allowlist_and_current(tmp_path: Path) -> None:
    config = {
        "current-context": "minikube",
        "contexts": [
            {"name": "minikube", "context": {"cluster": "minikube", "user": "u"}},
            {"name": "prod", "context": {"cluster": "prod", "user": "u"}},
        ],
        "clusters": [
            {"name": "minikube", "cluster": {"server": "https://127.0.0.1:52254"}},
            {"name": "prod", "cluster": {"server": "https://prod.example:6443"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    spec = KubernetesSpec(namespace="reconciliation-platform", kubeconfig=str(path))
    contexts, chosen, _ = read_contexts(spec)
    by_name = {c.name: c for c in contexts}
    assert chosen == "minikube"
    assert by_name["minikube"].allowed and by_name["minikube"].current
    assert by_name["minikube"].server == "https://127.0.0.1:52254" and by_name["minikube"].flavour == "minikube"
    assert not by_name["prod"].allowed and not by_name["prod"].current


def test_missing_kubeconfig_is_a_permanent_error(tmp_path: Path) -> None:
    spec = KubernetesSpec(namespace="x", kubeconfig=str(tmp_path / "none"))
    with pytest.raises(PermanentError, match="no kubeconfig found"):
        read_contexts(spec)
