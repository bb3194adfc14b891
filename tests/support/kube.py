"""The real control plane (scripts/k8s) for tests: build-or-reuse, start, seed objects, RBAC,
and the apiserver's audit log to count API requests."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from tests.support.realparts import REPO, require, wait_for

K8S_SCRIPTS = REPO / "scripts" / "k8s"
if str(K8S_SCRIPTS) not in sys.path:
    sys.path.insert(0, str(K8S_SCRIPTS))

from controlplane import ControlPlane, binaries_present, find_free_port  # noqa: E402
from fake_kubelet import (  # noqa: E402
    STUCK_MESSAGES,
    ConfigError,
    CrashLoopBackOff,
    Evicted,
    FakeKubelet,
    ImagePullFailure,
    InitCrashLoop,
    InitWaiting,
    NodeNotReady,
    Running,
    Stuck,
    Unschedulable,
)

__all__ = [
    "STUCK_MESSAGES",
    "ConfigError",
    "ControlPlane",
    "CrashLoopBackOff",
    "Evicted",
    "FakeKubelet",
    "ImagePullFailure",
    "InitCrashLoop",
    "InitWaiting",
    "NodeNotReady",
    "Running",
    "Stuck",
    "Unschedulable",
    "start_control_plane",
]

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}
_SUBJECT: Any = getattr(k8s, "RbacV1Subject", None) or getattr(k8s, "V1Subject")  # noqa: B009


def start_control_plane(workdir: Path) -> ControlPlane:
    """Build (or reuse the cached) apiserver and controller-manager and start them with an
    audit log, so tests can count the requests an audit makes."""
    if not binaries_present():
        build = subprocess.run(
            ["bash", str(K8S_SCRIPTS / "build-control-plane.sh")], capture_output=True, text=True, check=False
        )
        require(build.returncode == 0 and binaries_present(), f"control plane build failed: {build.stderr[-2000:]}")
    require(shutil.which("etcd") is not None, "etcd (apt package etcd-server) is not installed")
    policy = workdir / "audit-policy.json"
    policy.write_text(json.dumps(AUDIT_POLICY))
    cp = ControlPlane(
        workdir,
        etcd_port=find_free_port(),
        apiserver_port=find_free_port(),
        etcd_peer_port=find_free_port(),
        extra_apiserver_args=(
            f"--audit-policy-file={policy}",
            f"--audit-log-path={workdir / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ),
    )
    return cp.start()


def audit_events(cp: ControlPlane, user: str, since_offset: int = 0) -> list[dict[str, Any]]:
    """API requests made by ``user`` recorded after byte ``since_offset`` of the audit log."""
    path = cp.workdir / "audit.log"
    with path.open("rb") as handle:
        handle.seek(since_offset)
        lines = handle.read().decode().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e.get("user", {}).get("username") == user and e.get("stage") == "ResponseComplete"]


def audit_offset(cp: ControlPlane) -> int:
    """The current end of the audit log (requests after it are new)."""
    path = cp.workdir / "audit.log"
    return path.stat().st_size if path.exists() else 0


def new_namespace(api: k8s.ApiClient, prefix: str) -> str:
    """A namespace of the test's own; the caller deletes it."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def container(
    name: str,
    *,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    args: list[str] | None = None,
) -> k8s.V1Container:
    """A container spec (never pulled): named ports, literal env, command and args."""
    return k8s.V1Container(
        name=name,
        image=f"example.invalid/{name}:1",
        ports=[k8s.V1ContainerPort(name=port_name, container_port=port) for port_name, port in (ports or {}).items()]
        or None,
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in (env or {}).items()] or None,
        command=command,
        args=args,
    )


def pod_spec(
    name: str,
    *,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    init: list[k8s.V1Container] | None = None,
    node_name: str | None = None,
    claims: dict[str, str] | None = None,
) -> k8s.V1PodSpec:
    """One app container (and init containers, claims mounted as volumes) on ``node_name`` if set."""
    return k8s.V1PodSpec(
        containers=[container(name, ports=ports, env=env, args=args)],
        init_containers=init,
        node_name=node_name,
        volumes=[
            k8s.V1Volume(name=vol, persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim))
            for vol, claim in (claims or {}).items()
        ]
        or None,
    )


def deployment(
    name: str, replicas: int, labels: dict[str, str] | None = None, *, spec: k8s.V1PodSpec | None = None
) -> k8s.V1Deployment:
    """A Deployment whose pods the fake kubelet plays (the image is never pulled)."""
    labels = labels or {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=spec or k8s.V1PodSpec(containers=[k8s.V1Container(name=name, image=f"example.invalid/{name}:1")]),
            ),
        ),
    )


def cluster_ip_service(name: str, app: str, port: int) -> k8s.V1Service:
    """A ClusterIP Service: internal only."""
    return k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1ServiceSpec(selector={"app": app}, ports=[k8s.V1ServicePort(port=port, target_port=port)]),
    )


def pods_settled(api: k8s.ApiClient, ns: str, expected: dict[str, tuple[int, str]], timeout: float = 60) -> None:
    """Wait until each app has ``count`` pods in the given state ("Running" or a waiting reason)."""
    core = k8s.CoreV1Api(api)

    def settled() -> bool:
        pods = core.list_namespaced_pod(ns).items
        for app, (count, state) in expected.items():
            mine = [
                p for p in pods if (p.metadata.labels or {}).get("app") == app and not p.metadata.deletion_timestamp
            ]
            ok = []
            for p in mine:
                statuses = p.status.container_statuses or []
                if not statuses:
                    continue
                waiting = statuses[0].state.waiting.reason if statuses[0].state.waiting else None
                ok.append(
                    waiting == state if state != "Running" else (statuses[0].ready and p.status.phase == "Running")
                )
            if len(mine) != count or not all(ok) or len(ok) != count:
                return False
        return True

    wait_for(settled, timeout, f"pods in {ns} to settle as {expected}")


def bind_read_only(api: k8s.ApiClient, ns: str, user: str = "viewer", verbs: tuple[str, ...] = ("get", "list")) -> None:
    """A read-only Role for what an audit reads, bound to ``user`` in ``ns`` (``verbs`` with
    ``watch`` for what the live view needs to follow changes)."""
    rbac = k8s.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        ns,
        k8s.V1Role(
            metadata=k8s.V1ObjectMeta(name="stackwarden-audit"),
            rules=[
                k8s.V1PolicyRule(api_groups=["apps"], resources=["deployments", "statefulsets"], verbs=list(verbs)),
                k8s.V1PolicyRule(
                    api_groups=[""],
                    resources=["pods", "pods/log", "services", "events", "endpoints"],
                    verbs=list(verbs),
                ),
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="stackwarden-audit"),
            role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="stackwarden-audit"),
            subjects=[_SUBJECT(api_group="rbac.authorization.k8s.io", kind="User", name=user)],
        ),
    )
    auth = k8s.AuthorizationV1Api(api)
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user=user, resource_attributes=k8s.V1ResourceAttributes(namespace=ns, verb="list", resource="pods")
        )
    )
    # the RBAC authorizer learns of new bindings through an informer: wait until it has
    wait_for(lambda: auth.create_subject_access_review(review).status.allowed, 15, f"{user} allowed in {ns}")


def delete_namespace(api: k8s.ApiClient, ns: str) -> None:
    """Delete the test namespace (pods are finished by the fake kubelet)."""
    k8s.CoreV1Api(api).delete_namespace(ns)


def _apiserver(cp: ControlPlane) -> Any:
    """The control plane's kube-apiserver component (its process and how it was started)."""
    return next(c for c in cp._components if c.name == "kube-apiserver")


def kill_apiserver(cp: ControlPlane) -> None:
    """SIGKILL the apiserver: the cluster stops answering (connections refused)."""
    component = _apiserver(cp)
    component.proc.kill()
    component.proc.wait(10)


@contextlib.contextmanager
def frozen_apiserver(cp: ControlPlane) -> Iterator[None]:
    """SIGSTOP the apiserver until the block ends: connections are accepted and never answered."""
    proc = _apiserver(cp).proc
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)


def restart_apiserver(cp: ControlPlane, timeout: float = 60) -> None:
    """Start a killed apiserver again on the same port and etcd: the objects are all still there."""
    component = _apiserver(cp)
    component.stop(5)
    component.start(detach=False)
    api = cp.admin_api_client()

    def ready() -> bool:
        try:
            k8s.CoreV1Api(api).list_namespace(_request_timeout=2)
        except Exception:
            return False
        return True

    wait_for(ready, timeout, "the restarted kube-apiserver to answer")
