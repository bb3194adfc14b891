"""The profile's health checks, as the audit ran them: a service can run, hold its ports and
still answer every client with an error. Only the check a user wrote down says so."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden import commands
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import ready_in, stack_view
from stackwarden.rules.ports import unserved_ports
from stackwarden.rules.registry import rule

_HOST_SERVING = (Runtime.COMPOSE, Runtime.HOST)


@rule("health-failing")
def health_failing(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High (medium outside the core group): the service runs on this host (a ready container or
    host process of it) but its profile health check fails. A service that is down is left to
    service-unavailable, one that serves only in Kubernetes (no host port to check) is not
    judged, and a TCP check on a port nothing serves is left to port-unserved."""
    view = stack_view(snapshot, profile)
    for result in snapshot.health:
        placement = view.placements.get(result.service)
        if result.error is None or placement is None:
            continue
        running = [r for r in _HOST_SERVING if ready_in(placement, r)]
        if not running:
            continue
        spec = profile.services[result.service]
        check = spec.health
        unserved = {port for port, _ in unserved_ports(view, profile, result.service)}
        if check is not None and check.tcp is not None and check.tcp in unserved:
            continue
        where = " and ".join(str(r) for r in running)
        yield Finding(
            id=f"health-failing:{result.service}",
            rule="health-failing",
            title=f"{result.service.capitalize()} runs but fails its health check",
            severity=Severity.HIGH if spec.group == "core" else Severity.MEDIUM,
            services=(result.service,),
            runtimes=tuple(running),
            summary=(
                f"{result.service} runs under {where}, but its health check ({result.target}) fails: "
                f"{result.error}. Clients get the same answer."
            ),
            evidence=(f"{result.target}: {result.error}",),
            locations=(Location(runtime=running[0], kind="health check", name=result.service, detail=result.target),),
            recommendation=(
                f"Read the logs of {result.service} for why it answers so, or correct "
                f"services.{result.service}.health in the profile if the check is wrong."
            ),
            action=f"Make {result.service} pass its health check",
            commands=tuple(commands.docker_logs(c) for c in placement.containers[:1]),
        )
