"""Runtimes that could not be observed: the audit is incomplete, and says so."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import home_runtime
from stackwarden.rules.registry import rule

_HOW_TO_CHECK = {
    Runtime.COMPOSE: ("docker info", "docker compose version"),
    Runtime.KUBERNETES: ("kubectl config get-contexts", "kubectl cluster-info"),
    Runtime.HOST: ("ss -ltnp",),
}


@rule("runtime-unreachable")
def runtime_unreachable(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding per runtime the snapshot could not observe.

    High when the profile's default mode runs a service there: whether that service is up is
    then unknown, and exit 0 (nothing at or above ``--fail-on high``) would be an all-clear
    the audit cannot give. Medium for a runtime no service calls home: nothing is known to be
    broken, but conflicts there are invisible, so the report still says so.
    """
    for status in snapshot.runtimes:
        if status.reachable:
            continue
        name = {"compose": "Docker engine", "kubernetes": "Kubernetes cluster", "host": "Host"}[status.runtime]
        where = f" at {status.endpoint}" if status.endpoint else ""
        homed = [s for s in profile.services if home_runtime(profile, s) is status.runtime]
        unseen = (
            f" {', '.join(homed)} should run there ({profile.default_mode}): whether they do is unknown."
            if homed
            else ""
        )
        yield Finding(
            id=f"runtime-unreachable:{status.runtime}",
            rule="runtime-unreachable",
            title=f"{name} unreachable",
            severity=Severity.HIGH if homed else Severity.MEDIUM,
            services=tuple(homed),
            runtimes=(status.runtime,),
            summary=f"The {name}{where} could not be observed; conflicts there are not diagnosed.{unseen}",
            evidence=(status.error or "no error text",),
            recommendation=f"Start or fix access to the {name}, then rerun the audit.",
            action=f"Make the {name} reachable",
            commands=_HOW_TO_CHECK[status.runtime],
        )
