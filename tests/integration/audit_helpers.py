"""Run the audit's observe + diagnose path against real components without Prefect."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

from stackwarden.adapters.docker import observe_docker
from stackwarden.adapters.host import observe_host
from stackwarden.adapters.kubernetes import observe_kubernetes
from stackwarden.model import Finding, Profile, Snapshot
from stackwarden.observe import assemble_snapshot
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose


def observe(profile: Profile) -> Snapshot:
    """The same assembly the audit flow does, from the real adapters."""
    docker = observe_docker()
    host = observe_host(frozenset(profile.all_ports()), profile.host_lookup())
    kube = observe_kubernetes(profile.kubernetes) if profile.kubernetes else None
    return assemble_snapshot(
        taken_at=datetime.now(UTC),
        hostname=socket.gethostname(),
        profile=profile.name,
        runtimes=[docker.status, host.status, *([kube.status] if kube else [])],
        kubernetes=kube.observation if kube else None,
        containers=docker.containers,
        networks=docker.networks,
        listeners=host.listeners,
        processes=host.processes,
        host_context=host.context,
    )


def audit(profile_path: Path) -> tuple[Profile, Snapshot, dict[str, Finding]]:
    profile = load_profile(profile_path)
    snapshot = observe(profile)
    return profile, snapshot, {f.id: f for f in diagnose(snapshot, profile)}
