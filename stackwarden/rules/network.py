"""Network isolation: is the compose project's network separate from other runtimes', and are
the cluster's services internal (ClusterIP) or exposed on host ports?"""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.rules.registry import rule

_CLUSTER_NETWORKS = ("minikube", "kind")
_SHARED_BY_DESIGN = {"bridge", "host", "none"}


def _docker_facts(snapshot: Snapshot, profile: Profile) -> tuple[list[str], list[tuple[str, str]]]:
    """Evidence lines about the project's networks, and (network, foreign container) pairs."""
    projects = {spec.project for spec in profile.compose_projects}
    project = ", ".join(sorted(projects))
    ours = [c for c in snapshot.containers if c.compose_project in projects]
    our_networks = sorted({n for c in ours for n in c.networks})
    shared = sorted(
        {
            (n, c.name)
            for c in snapshot.containers
            if c.compose_project not in projects
            for n in c.networks
            if n in our_networks and n not in _SHARED_BY_DESIGN
        }
    )
    cluster_nets = sorted(n.name for n in snapshot.networks if n.name in _CLUSTER_NETWORKS or n.name.startswith("kind"))
    evidence = [f"{n} (Docker Compose project {project})" for n in our_networks]
    evidence += [f"{n}: a local cluster's network, separate from {project}" for n in cluster_nets]
    if profile.compose.network and ours and profile.compose.network not in our_networks:
        evidence.append(
            f"the profile names network {profile.compose.network!r} but the containers use "
            + (", ".join(our_networks) or "none")
        )
    if not ours:
        evidence.append(f"no container of {project} is deployed")
    return evidence, shared


def _kube_facts(snapshot: Snapshot) -> list[str]:
    """One line per Service: ClusterIP ones are internal and hold no host port."""
    kube = snapshot.kubernetes
    if kube is None or not snapshot.reachable(Runtime.KUBERNETES):
        return []
    lines = []
    for svc in kube.services:
        if svc.type == "ClusterIP":
            lines.append(f"Service {svc.name}: ClusterIP (internal only, no host port)")
        else:
            exposed = ", ".join(str(p.node_port or p.port) for p in svc.ports)
            lines.append(f"Service {svc.name}: {svc.type}, exposed on host port(s) {exposed}")
    if kube.services and all(s.type == "ClusterIP" for s in kube.services):
        lines.append("All Kubernetes services are ClusterIP: no NodePort or LoadBalancer exposes a port")
    return lines


@rule("network-isolation")
def network_isolation(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """``ok`` when the project's containers share no network with other projects or a local
    cluster and cluster services are internal; ``medium`` when networks are shared. Exposed
    NodePorts that collide with a host port are the port rule's business."""
    docker_seen = snapshot.reachable(Runtime.COMPOSE)
    kube_lines = _kube_facts(snapshot)
    if not docker_seen and not kube_lines:
        return
    evidence, shared = _docker_facts(snapshot, profile) if docker_seen else ([], [])
    evidence += kube_lines
    runtimes = tuple(r for r, seen in ((Runtime.COMPOSE, docker_seen), (Runtime.KUBERNETES, bool(kube_lines))) if seen)
    if shared:
        yield Finding(
            id="network-isolation",
            rule="network-isolation",
            title="Network isolation",
            severity=Severity.MEDIUM,
            runtimes=runtimes,
            summary="The compose project shares networks with containers outside it.",
            evidence=tuple(evidence + [f"{n}: shared with {name}" for n, name in shared]),
            action="Separate the networks",
            recommendation="Give the project its own network so other deployments cannot reach it by accident.",
            commands=tuple(f"docker network inspect {n}" for n in sorted({n for n, _ in shared})),
        )
        return
    yield Finding(
        id="network-isolation",
        rule="network-isolation",
        title="Network isolation",
        severity=Severity.OK,
        runtimes=runtimes,
        summary=(
            "Isolated: no container of another project or cluster shares the project's networks"
            + ("; cluster services are internal." if kube_lines else ".")
        ),
        evidence=tuple(evidence),
        recommendation="None.",
        action="None",
        commands=("docker network ls",),
    )
