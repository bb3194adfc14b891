"""Smoke test for the loopback control plane + fake kubelet test harness.

Why: every Kubernetes integration test builds on ``scripts/k8s``; this test
proves the whole chain works end to end (binaries, etcd, apiserver, RBAC,
controllers, pod binding/status, log proxying through the apiserver, graceful
deletion) before anything more specific is tested on top of it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
K8S_SCRIPTS = REPO / "scripts" / "k8s"
sys.path.insert(0, str(K8S_SCRIPTS))

from controlplane import ControlPlane  # noqa: E402
from fake_kubelet import CrashLoopBackOff, FakeKubelet, Running  # noqa: E402
from kubernetes import client as k8s  # type: ignore[import-untyped,unused-ignore]  # noqa: E402

from tests.support.realparts import require  # noqa: E402

PANIC = "thread 'main' panicked at 'spawn_local called from outside of a task::LocalSet'"
CRASH_LOGS = (
    "2024-01-01T00:00:00Z INFO stackwarden starting\n"
    "2024-01-01T00:00:01Z INFO connecting to database\n"
    f"{PANIC}, src/main.rs:42:5\n"
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
)
pytestmark = pytest.mark.kube

T = TypeVar("T")
# Renamed from V1Subject to RbacV1Subject in client v31; support both.
_SUBJECT: Any = getattr(k8s, "RbacV1Subject", None) or getattr(k8s, "V1Subject")  # noqa: B009


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``fn`` until it returns a truthy value; fail with ``what``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as exc:  # reported on timeout
            last_exc = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")


@pytest.fixture()
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"sw-smoke-{secrets.token_hex(4)}"
    core = k8s.CoreV1Api(control_plane.admin_api_client())
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        require(False, "kubectl not installed (apt package kubernetes-client)")
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def _crashy_deployment(replicas: int) -> k8s.V1Deployment:
    labels = {"app": "crashy"}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="crashy", labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(
                    containers=[k8s.V1Container(name="app", image="example.invalid/crashy:1")],
                    termination_grace_period_seconds=30,
                ),
            ),
        ),
    )


def test_node_is_ready(control_plane: ControlPlane, kubelet: FakeKubelet) -> None:
    core = k8s.CoreV1Api(control_plane.admin_api_client())
    node: Any = core.read_node(kubelet.node_name)
    ready = [c for c in node.status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "True"
    assert [(a.type, a.address) for a in node.status.addresses] == [("InternalIP", "127.0.0.1")]
    assert node.status.daemon_endpoints.kubelet_endpoint.port == kubelet.port


def test_crashloop_logs_rbac_and_scale_down(control_plane: ControlPlane, kubelet: FakeKubelet, namespace: str) -> None:
    api = control_plane.admin_api_client()
    core, apps, rbac = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.RbacAuthorizationV1Api(api)

    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=101, restart_count=5, reason="Error", logs=CRASH_LOGS),
        selector="app=crashy",
        namespace=namespace,
    )
    apps.create_namespaced_deployment(namespace, _crashy_deployment(2))

    def crashing_pods() -> list[Any] | None:
        pods: list[Any] = core.list_namespaced_pod(namespace, label_selector="app=crashy").items
        ok = [
            p
            for p in pods
            if p.status.container_statuses
            and p.status.container_statuses[0].state.waiting is not None
            and p.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
        ]
        return ok if len(ok) == 2 and len(pods) == 2 else None

    pods = wait_for("2 pods in CrashLoopBackOff", crashing_pods)
    for pod in pods:
        assert pod.spec.node_name == kubelet.node_name
        assert pod.status.phase == "Running"
        cs = pod.status.container_statuses[0]
        assert cs.ready is False
        assert cs.restart_count == 5
        assert cs.last_state.terminated.exit_code == 101
        assert cs.last_state.terminated.reason == "Error"
        # Through the apiserver's pod-log proxy to the fake kubelet.
        text = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="app", previous=True, tail_lines=5)
        assert PANIC in text
        tail1 = core.read_namespaced_pod_log(pod.metadata.name, namespace, previous=True, tail_lines=1)
        assert tail1.strip() == CRASH_LOGS.splitlines()[-1]

    # RBAC: the viewer has no permissions until a Role is bound.
    denied = _kubectl(control_plane.viewer_kubeconfig, "get", "pods", "-n", namespace)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr, denied.stderr
    rbac.create_namespaced_role(
        namespace,
        k8s.V1Role(
            metadata=k8s.V1ObjectMeta(name="pod-reader"),
            rules=[k8s.V1PolicyRule(api_groups=[""], resources=["pods", "pods/log"], verbs=["get", "list", "watch"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="viewer-pod-reader"),
            role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"),
            subjects=[_SUBJECT(api_group="rbac.authorization.k8s.io", kind="User", name="viewer")],
        ),
    )

    def viewer_can_list() -> subprocess.CompletedProcess[str] | None:
        res = _kubectl(control_plane.viewer_kubeconfig, "get", "pods", "-n", namespace)
        return res if res.returncode == 0 else None

    allowed = wait_for("viewer allowed to list pods", viewer_can_list, timeout=15)
    assert "CrashLoopBackOff" in allowed.stdout, allowed.stdout

    # Scale down: pods get a deletionTimestamp, the fake kubelet finishes them.
    apps.patch_namespaced_deployment_scale("crashy", namespace, {"spec": {"replicas": 0}})
    wait_for(
        "pods to disappear after scale to 0",
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=crashy").items,
        timeout=30,
    )


def test_behaviour_switch_to_running(control_plane: ControlPlane, kubelet: FakeKubelet, namespace: str) -> None:
    """Default behaviour is Running; deployments become available."""
    api = control_plane.admin_api_client()
    apps = k8s.AppsV1Api(api)
    kubelet.set_behaviour(Running(logs="hello\n"), namespace=namespace)
    apps.create_namespaced_deployment(namespace, _crashy_deployment(1))

    def available() -> bool:
        deployment: Any = apps.read_namespaced_deployment("crashy", namespace)
        return bool(deployment.status.available_replicas == 1)

    wait_for("deployment available", available)
    assert not kubelet.errors, kubelet.errors
