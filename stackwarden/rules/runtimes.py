"""Runtimes that could not be observed: the audit is incomplete, and says so."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.rules.registry import rule

_HOW_TO_CHECK = {
    Runtime.COMPOSE: ("docker info", "docker compose version"),
    Runtime.KUBERNETES: ("kubectl config get-contexts", "kubectl cluster-info"),
    Runtime.HOST: ("ss -ltnp",),
}


@rule("runtime-unreachable")
def runtime_unreachable(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding per runtime the snapshot could not observe.

    Medium, not critical: nothing is known to be broken, but conflicts in that runtime are
    invisible, so the report must not read as a clean bill of health.
    """
    for status in snapshot.runtimes:
        if status.reachable:
            continue
        name = {"compose": "Docker engine", "kubernetes": "Kubernetes cluster", "host": "Host"}[status.runtime]
        where = f" at {status.endpoint}" if status.endpoint else ""
        yield Finding(
            id=f"runtime-unreachable:{status.runtime}",
            rule="runtime-unreachable",
            title=f"{name} unreachable",
            severity=Severity.MEDIUM,
            runtimes=(status.runtime,),
            summary=f"The {name}{where} could not be observed; conflicts there are not diagnosed.",
            evidence=(status.error or "no error text",),
            recommendation=f"Start or fix access to the {name}, then rerun the audit.",
            action=f"Make the {name} reachable",
            commands=_HOW_TO_CHECK[status.runtime],
        )
