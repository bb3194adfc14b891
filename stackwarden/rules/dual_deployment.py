"""Dual deployment: one service deployed by more than one runtime at once."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import ServicePlacement, converge_commands, keep_runtime, stack_view
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


def _commands(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> tuple[Runtime | None, list[str]]:
    """The runtime the service keeps (its home in the default mode, or where it is ready) and the
    commands that stop it everywhere else, then start it there if it is not running: pasted in
    order, they leave the service with exactly one owner, never none."""
    keep = keep_runtime(snapshot, profile, placement)
    return keep, converge_commands(snapshot, profile, placement, keep)


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
    evidence, locations, cmds, kept = [], [], [], []
    runtimes: set[Runtime] = set()
    for placement in duplicated:
        locs = _locations(placement)
        locations += locs
        runtimes.update(placement.runtimes)
        where = "; ".join(f"{loc.runtime}: {loc.kind} {loc.name} ({loc.detail})" for loc in locs)
        evidence.append(f"{placement.service}: {where}")
        keep, stops = _commands(snapshot, profile, placement)
        cmds += stops
        if keep is not None:
            kept.append(f"{placement.service} in {keep}")
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
        recommendation=(
            "Choose one deployment mode (stackwarden switch MODE) so each service has one runtime"
            + (f"; the commands keep {', '.join(kept)} and stop the rest." if kept else ".")
        ),
        commands=tuple(cmds),
    )
