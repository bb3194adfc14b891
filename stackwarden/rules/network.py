"""Network isolation: is the compose project's network separate from other runtimes'?"""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.rules.registry import rule

_CLUSTER_NETWORKS = ("minikube", "kind")


@rule("network-isolation")
def network_isolation(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """``ok`` when the profile's containers share no network with other projects or a local
    cluster; ``medium`` when they do (traffic can cross between deployments unnoticed)."""
    if not snapshot.reachable(Runtime.COMPOSE):
        return
    project = profile.compose.project
    ours = [c for c in snapshot.containers if c.compose_project == project]
    our_networks = sorted({n for c in ours for n in c.networks})
    others = [c for c in snapshot.containers if c.compose_project != project]
    shared = sorted(
        {(n, c.name) for c in others for n in c.networks if n in our_networks and n not in {"bridge", "host", "none"}}
    )
    by_name = {n.name: n for n in snapshot.networks}
    cluster_nets = sorted(n for n in by_name if n in _CLUSTER_NETWORKS or n.startswith("kind"))
    evidence = [f"{n} ({'compose project ' + project})" for n in our_networks]
    evidence += [f"{n}: a local cluster's network, separate from {project}" for n in cluster_nets]
    if profile.compose.network and ours and profile.compose.network not in our_networks:
        evidence.append(
            f"the profile names network {profile.compose.network!r} but the containers use "
            + (", ".join(our_networks) or "none")
        )
    if shared:
        yield Finding(
            id="network-isolation",
            rule="network-isolation",
            title="Network isolation",
            severity=Severity.MEDIUM,
            runtimes=(Runtime.COMPOSE,),
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
        runtimes=(Runtime.COMPOSE,),
        summary=(
            f"The compose project's networks ({', '.join(our_networks) or 'none in use'}) are "
            "isolated: no container of another project or cluster is attached to them."
        ),
        evidence=tuple(evidence) or ("no container of the project is running",),
        recommendation="None.",
        action="None",
        commands=("docker network ls",),
    )
