"""Local clusters as developers run them hold profile ports for the kubernetes runtime, never as
a foreign owner: a real ``kubectl port-forward`` (through the real apiserver to the fake
kubelet's stream endpoint) and node containers of kind and k3d publishing ports through
docker-proxy, on the real engine."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.model import Runtime
from stackwarden.pipeline import observe_all
from stackwarden.placement import stack_view
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose
from tests.support.compose import unique_name
from tests.support.kube import delete_namespace, deployment, new_namespace, pod_spec, pods_settled
from tests.support.realparts import IMAGE, free_ports, listening, run, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.docker]


@contextlib.contextmanager
def _node_container(label: str, cluster: str, host_port: int, node_port: int) -> Iterator[str]:
    """A container labelled as a local cluster's node, publishing ``host_port`` to ``node_port``
    (what kind's extraPortMappings and k3d's ``-p`` do): docker-proxy holds the host port."""
    name = unique_name("swtest-node")
    run(["docker", "network", "create", name])  # as kind does: the cluster's own network
    try:
        run(
            [
                "docker", "run", "-d", "--name", name, "--network", name, "--label", f"{label}={cluster}",
                "-p", f"127.0.0.1:{host_port}:{node_port}", IMAGE, "httpd", "-f", "-p", str(node_port),
            ]
        )  # fmt: skip
        wait_for(lambda: listening(host_port), 30, f"{name} to publish {host_port}")
        yield name
    finally:
        run(["docker", "rm", "-f", name], check=False)
        run(["docker", "network", "rm", name], check=False)


@contextlib.contextmanager
def _port_forward(kubeconfig: str, ns: str, target: str, port: int, remote: int) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``kubectl port-forward``, listening on 127.0.0.1:``port``."""
    proc = subprocess.Popen(
        ["kubectl", "--kubeconfig", kubeconfig, "-n", ns, "port-forward", target, f"{port}:{remote}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: listening(port) or proc.poll() is not None, 30, f"kubectl port-forward on {port}")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def _profile(path: Path, ns: str, kubeconfig: str, ports: dict[str, int]) -> Path:
    doc: dict[str, Any] = {
        "name": ns,
        "default_mode": "k8s-only",
        "compose": {"project": unique_name("swtest-nocompose"), "files": [str(path.parent / "none.yaml")]},
        "kubernetes": {"namespace": ns, "kubeconfig": kubeconfig, "allowed_contexts": ["stackwarden-test"]},
        "services": {
            "web": {"ports": [ports["web"]], "kubernetes": {"name": "web", "service": "web"}},
            "db": {"ports": [ports["db"]], "kubernetes": {"name": "db", "service": "db"}},
            "cache": {"ports": [ports["cache"]], "kubernetes": {"name": "cache", "service": "cache"}},
            "search": {"ports": [ports["search"]]},
        },
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_port_forwards_and_node_containers_are_the_kubernetes_runtime(
    control_plane: Any, kubelet: Any, docker_engine: None, tmp_path: Path
) -> None:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-local")
    ports = dict(zip(("web", "db", "cache", "search"), free_ports(4), strict=True))
    kubeconfig = str(control_plane.admin_kubeconfig)
    try:
        apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
        for name, port in (("web", 8080), ("db", 5432), ("cache", 6379)):
            apps.create_namespaced_deployment(ns, deployment(name, 1, spec=pod_spec(name, ports={"tcp": port})))
        web_svc: Any = core.create_namespaced_service(
            ns,
            k8s.V1Service(
                metadata=k8s.V1ObjectMeta(name="web"),
                spec=k8s.V1ServiceSpec(
                    type="NodePort", selector={"app": "web"}, ports=[k8s.V1ServicePort(port=8080, target_port=8080)]
                ),
            ),
        )
        node_port = int(web_svc.spec.ports[0].node_port)
        for name, port in (("db", 5432), ("cache", 6379)):
            core.create_namespaced_service(
                ns,
                k8s.V1Service(
                    metadata=k8s.V1ObjectMeta(name=name),
                    spec=k8s.V1ServiceSpec(selector={"app": name}, ports=[k8s.V1ServicePort(port=port)]),
                ),
            )
        pods_settled(api, ns, {"web": (1, "Running"), "db": (1, "Running"), "cache": (1, "Running")})
        with contextlib.ExitStack() as stack:
            stack.enter_context(_port_forward(kubeconfig, ns, "svc/db", ports["db"], 5432))
            other = new_namespace(api, "swtest-other")
            stack.callback(delete_namespace, api, other)
            apps.create_namespaced_deployment(other, deployment("cache", 1, spec=pod_spec("cache", ports={"t": 6379})))
            pods_settled(api, other, {"cache": (1, "Running")})
            stack.enter_context(_port_forward(kubeconfig, other, "deployment/cache", ports["cache"], 6379))
            stack.enter_context(_node_container("io.x-k8s.kind.cluster", "swtest", ports["web"], node_port))
            stack.enter_context(_node_container("k3d.cluster", "dev", ports["search"], 30999))
            profile = load_profile(_profile(tmp_path / "profile.yaml", ns, kubeconfig, ports))
            snapshot = observe_all(profile)
            findings = {f.id: f for f in diagnose(snapshot, profile)}
            view = stack_view(snapshot, profile)
    finally:
        delete_namespace(api, ns)

    def owner(service: str) -> Any:
        (found,) = view.port_owners[ports[service]]
        return found

    db, web, cache, search = owner("db"), owner("web"), owner("cache"), owner("search")
    # the profile's own exposures: a port-forward to its Service, a kind node carrying its NodePort
    assert (db.runtime, db.in_profile, db.cluster) == (Runtime.KUBERNETES, True, "kubectl port-forward"), db
    assert "to svc/db" in db.label
    assert (web.runtime, web.in_profile, web.cluster) == (Runtime.KUBERNETES, True, "kind cluster swtest"), web
    assert f"NodePort {node_port} of Service web" in web.label
    # the cluster's, but not this service's: a forward into another namespace, a k3d node port
    assert (cache.runtime, cache.in_profile) == (Runtime.KUBERNETES, False)
    assert (search.runtime, search.in_profile, search.cluster) == (Runtime.KUBERNETES, False, "k3d cluster dev")
    assert not [f for f in findings if f.startswith("port-foreign-owner:")], sorted(findings)
    for service in ("cache", "search"):
        held = findings[f"port-held-by-cluster:{ports[service]}"]
        assert held.runtimes == (Runtime.KUBERNETES,)
        assert not any(c.startswith(("kill", "docker stop", "systemctl stop")) for c in held.commands)
    assert f"port-held-by-cluster:{ports['db']}" not in findings
    assert f"port-held-by-cluster:{ports['web']}" not in findings
