"""Crash loops with their cause. One finding per service, however many runtimes it crashes in:
the same root cause seen in compose and in pods is reported once with every location."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stackwarden import commands
from stackwarden.crash import classify_crash
from stackwarden.model.base import CrashCategory, Runtime, Severity
from stackwarden.model.finding import CrashCause, Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import PortOwner, ServicePlacement, StackView, stack_view
from stackwarden.rules.registry import rule


@dataclass(frozen=True)
class _Crash:
    location: Location
    cause: CrashCause
    command: str


def _exit_text(code: int | None) -> str:
    """``exit code 101``; a crash with no recorded death says so instead of printing None."""
    return f"exit code {code}" if code is not None else "no recorded exit code"


def _crashes(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> list[_Crash]:
    """Classify every crash-looping container and pod of one service."""
    ports = profile.all_ports()
    out = []
    for c in placement.containers:
        if not c.is_crash_looping:
            continue
        cause = classify_crash(c.recorded_exit_code, c.log_tail, ports, c.oom_killed)
        out.append(
            _Crash(
                Location(
                    runtime=Runtime.COMPOSE,
                    kind="container",
                    name=c.name,
                    detail=f"{c.state}, {_exit_text(c.recorded_exit_code)}, {c.restart_count or 0} restarts",
                ),
                cause,
                commands.docker_logs(c),
            )
        )
    for p in placement.pods:
        if not p.is_crash_looping:
            continue
        cause = classify_crash(p.last_exit_code, p.log_tail, ports, p.last_reason == "OOMKilled")
        out.append(
            _Crash(
                Location(
                    runtime=Runtime.KUBERNETES,
                    kind="pod",
                    name=f"{p.namespace}/{p.name}",
                    detail=f"{p.waiting_reason or p.phase}, {_exit_text(p.last_exit_code)}, {p.restart_count} restarts",
                ),
                cause,
                commands.kubectl_for(snapshot, profile, "logs", p.name, "--previous", "--tail=50"),
            )
        )
    return out


def _owner_text(owners: tuple[PortOwner, ...]) -> str:
    return " and ".join(f"{o.label} on {o.addresses}" for o in owners) or "nobody (the port is free)"


def _recommendation(cause: CrashCause, service: str, owners: tuple[PortOwner, ...]) -> str:
    match cause.category:
        case CrashCategory.CODE_ISSUE:
            return (
                f"Fix the code of {service}: this is not a deployment conflict, and no mode "
                "switch will stop the crash loop."
            )
        case CrashCategory.DEPLOYMENT_CONFLICT:
            return (
                f"Port {cause.port} is owned by {_owner_text(owners)}: run {service} and its "
                "dependencies in one runtime (stackwarden switch MODE)."
            )
        case CrashCategory.RESOURCES:
            return f"Give {service} more memory or find its leak; switching runtimes will not help."
        case CrashCategory.CONFIGURATION:
            return f"Fix the configuration of {service} (files, variables, permissions)."
        case _:
            return f"Read the logs of {service}; the cause is not recognised."


_ACTIONS = {
    CrashCategory.CODE_ISSUE: "Fix code issue",
    CrashCategory.DEPLOYMENT_CONFLICT: "Free the port / choose one runtime",
    CrashCategory.RESOURCES: "Raise memory limit",
    CrashCategory.CONFIGURATION: "Fix configuration",
    CrashCategory.UNKNOWN: "Read the logs",
}


def _with_own_port(cause: CrashCause, profile: Profile, service: str, view: StackView) -> CrashCause:
    """ "bind: Address already in use" often names no port; then it is the service's own port
    that someone else holds, so take the first of its ports that has an owner."""
    if cause.signature != "address-in-use" or cause.port is not None:
        return cause
    held = [p for p in profile.services[service].ports if view.port_owners.get(p)]
    return cause.model_copy(update={"port": held[0]}) if held else cause


@rule("crash-loops")
def crash_loops(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """Critical: a service that keeps crashing, with the cause that decides what fixes it."""
    view = stack_view(snapshot, profile)
    for service in profile.services:
        crashes = _crashes(snapshot, profile, view.placements[service])
        if not crashes:
            continue
        main = _with_own_port(max(crashes, key=lambda c: c.cause.confidence).cause, profile, service, view)
        owners = view.port_owners.get(main.port, ()) if main.port else ()
        same_cause = all(c.cause.signature == main.signature for c in crashes)
        runtimes = tuple(sorted({c.location.runtime for c in crashes}))
        where = ", ".join(f"{c.location.name} ({c.location.detail})" for c in crashes)
        category_text = main.category.value.replace("-", " ")
        summary = f"{service} is crash-looping in {len(crashes)} place(s): {where}. Cause: {category_text}"
        summary += f" ({main.signature}, confidence {main.confidence:.0%})"
        if len(runtimes) > 1 and same_cause:
            summary += f"; the same root cause in {' and '.join(runtimes)}"
        if main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port:
            summary += f"; port {main.port} is owned by {_owner_text(owners)}"
        evidence = [f"{c.location.name}: {line}" for c in crashes[:1] for line in c.cause.evidence]
        evidence += [f"{c.location.name}: {c.cause.signature} ({c.cause.category})" for c in crashes[1:]]
        if main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port:
            evidence += [f"port {main.port}: {o.label} listens on {o.addresses}" for o in owners]
        yield Finding(
            id=f"crash-loop:{service}",
            rule="crash-loops",
            title=f"{service.capitalize()} crash loop",
            severity=Severity.CRITICAL,
            services=(service,),
            runtimes=runtimes,
            summary=summary + ".",
            evidence=tuple(evidence),
            locations=tuple(c.location for c in crashes),
            recommendation=main.explanation + " " + _recommendation(main, service, owners),
            commands=tuple(dict.fromkeys(c.command for c in crashes)),
            cause=main,
            action=_ACTIONS[main.category],
        )
