"""Local Kubernetes clusters as developers run them, recognised on the host: what they hold is
the kubernetes runtime's, never a foreign owner.

- ``kubectl port-forward`` processes (a profile port forwarded to a pod or Service);
- node containers of kind, k3d and minikube (their published ports, through docker-proxy, carry
  NodePorts and hostPorts of the cluster);
- ``minikube tunnel`` (and ``minikube service``), whose ssh forwards hold LoadBalancer ports;
- k3s (its embedded kube-proxy holds NodePorts, ServiceLB/klipper exposes LoadBalancer ports)
  and a host's kube-proxy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackwarden.model.snapshot import Container, ProcessInfo

_NODE_LABELS: tuple[tuple[str, str], ...] = (
    ("io.x-k8s.kind.cluster", "kind"),
    ("k3d.cluster", "k3d"),
    ("name.minikube.sigs.k8s.io", "minikube"),
)
_NODE_IMAGES: tuple[tuple[str, str], ...] = (
    ("kindest/node", "kind"),
    ("rancher/k3s", "k3d"),
    ("ghcr.io/k3d-io/k3d-proxy", "k3d"),
    ("k8s-minikube/kicbase", "minikube"),
)


def cluster_node(labels: Mapping[str, str], image: str) -> str | None:
    """``kind cluster dev``, ``k3d cluster dev``, ``minikube profile minikube`` for a node (or
    k3d load-balancer) container of a local cluster, from its labels, else its image."""
    for label, flavour in _NODE_LABELS:
        if labels.get(label):
            noun = "profile" if flavour == "minikube" else "cluster"
            return f"{flavour} {noun} {labels[label]}"
    for prefix, flavour in _NODE_IMAGES:
        if prefix in image:
            return f"{flavour} node"
    return None


@dataclass(frozen=True)
class ClusterProcess:
    """A host process that holds a port on behalf of a local cluster."""

    how: str
    """``kubectl port-forward``, ``minikube tunnel``, ``k3s``, ``kube-proxy``."""
    target: str | None = None
    """What it forwards to, when it says: ``service/orders-db``, ``pod/api-0``."""
    namespace: str | None = None


def _port_forward(argv: Sequence[str]) -> ClusterProcess:
    """``kubectl [-n NS] port-forward [svc/]NAME LOCAL:REMOTE ...``: the resource and namespace."""
    words = list(argv[1:])
    namespace = None
    target = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in {"-n", "--namespace"} and i + 1 < len(words):
            namespace = words[i + 1]
            i += 2
            continue
        if word.startswith("--namespace="):
            namespace = word.partition("=")[2]
        elif word.startswith("-"):
            if word in {"--context", "--kubeconfig", "--address", "--pod-running-timeout", "-c", "--cluster"}:
                i += 1
        elif word != "port-forward" and target is None and not word[:1].isdigit() and ":" not in word:
            target = word if "/" in word else f"pod/{word}"
        i += 1
    return ClusterProcess("kubectl port-forward", target, namespace)


def cluster_process(process: ProcessInfo) -> ClusterProcess | None:
    """The local-cluster role of a host process, if it has one (by its resolved executable and
    its arguments: a process named ``kubectl`` that is not a port-forward is not one)."""
    exe = process.exe_basename
    argv = process.cmdline
    if exe == "kubectl" and "port-forward" in argv:
        return _port_forward(argv)
    if exe == "minikube" and any(a in {"tunnel", "service"} for a in argv):
        return ClusterProcess("minikube tunnel" if "tunnel" in argv else "minikube service")
    if exe == "ssh" and any("/.minikube/machines/" in a for a in argv):
        return ClusterProcess("minikube tunnel (ssh forward)")
    if exe in {"k3s", "kubelite"}:
        return ClusterProcess(exe)
    if exe == "kube-proxy":
        return ClusterProcess("kube-proxy")
    return None


def is_cluster_node(container: Container | None) -> bool:
    """The container is a node of a local cluster: what it publishes is the cluster's."""
    return container is not None and container.cluster_node is not None
