"""Dual deployment: one service deployed by more than one runtime at once."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden import commands
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import ServicePlacement, stack_view
from stackwarden.rules.registry import rule


def _locations(placement: ServicePlacement) -> list[Location]:
    """Every place the service was seen, with the identity a command would need."""
    out = [
        Location(
            runtime=Runtime.COMPOSE,
            kind="container",
            name=c.name,
            detail=f"{c.state}; id {c.short_id}",
        )
        for c in placement.containers
    ]
    out += [
        Location(
            runtime=Runtime.KUBERNETES,
            kind=w.kind,
            name=f"{w.namespace}/{w.name}",
            detail=f"{w.ready_replicas}/{w.replicas} ready",
        )
        for w in placement.workloads
    ]
    out += [
        Location(runtime=Runtime.HOST, kind="process", name=p.name, detail=f"PID {p.pid}") for p in placement.processes
    ]
    return out


def _commands(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> list[str]:
    """Commands that would stop the service in each runtime, for the user to choose from."""
    out = []
    for c in placement.containers:
        out.append(commands.compose(profile, "stop", c.compose_service or placement.service, project=c.compose_project))
    for w in placement.workloads:
        out.append(commands.kubectl_for(snapshot, profile, "scale", f"{w.kind.lower()}/{w.name}", "--replicas=0"))
    matcher = profile.services[placement.service].host
    for p in placement.processes:
        out.append(commands.stop_process(p, matcher.stop_signal if matcher else "SIGTERM"))
    return out


@rule("dual-deployment")
def dual_deployment(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding for the stack listing every service that runs in two or more runtimes.

    One finding, as in the seed's table ("Dual Deployment: choose one method"); its id is
    stable, and its evidence names each duplicated service and where it runs.
    """
    view = stack_view(snapshot, profile)
    duplicated = [p for p in view.placements.values() if len(p.runtimes) > 1]
    if not duplicated:
        return
    evidence, locations, cmds = [], [], []
    runtimes: set[Runtime] = set()
    for placement in duplicated:
        locs = _locations(placement)
        locations += locs
        runtimes.update(placement.runtimes)
        where = "; ".join(f"{loc.runtime}: {loc.kind} {loc.name} ({loc.detail})" for loc in locs)
        evidence.append(f"{placement.service}: {where}")
        cmds += _commands(snapshot, profile, placement)
    names = ", ".join(p.service for p in duplicated)
    yield Finding(
        id="dual-deployment",
        rule="dual-deployment",
        title="Dual deployment",
        severity=Severity.HIGH,
        services=tuple(p.service for p in duplicated),
        runtimes=tuple(sorted(runtimes)),
        summary=(
            f"{len(duplicated)} service(s) run in more than one runtime at once ({names}): "
            "duplicate containers waste resources, fight over ports and split traffic."
        ),
        evidence=tuple(evidence),
        locations=tuple(locations),
        action="Choose one method",
        recommendation="Choose one deployment mode (stackwarden switch MODE) so each service has one runtime.",
        commands=tuple(cmds),
    )
