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
from stackwarden.placement import (
    PortOwner,
    ServicePlacement,
    StackView,
    home_runtime,
    is_service_container,
    ready_in,
    stack_view,
)
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


def _setting_advice(
    snapshot: Snapshot, profile: Profile, service: str, cause: CrashCause, runtimes: set[Runtime]
) -> tuple[str, list[str]]:
    """Where to set the missing setting in each runtime it crashes in, and how to apply it."""
    what = f"Set {cause.setting}" if cause.setting else "Provide the missing setting"
    places, cmds = [], []
    if Runtime.COMPOSE in runtimes:
        spec = profile.compose_for(service)
        files = ", ".join(spec.files) or "the compose file"
        places.append(f"under services.{profile.compose_service_name(service)}.environment in {files}")
        cmds.append(commands.compose_service(profile, service, "up", "-d"))
    workload = profile.services[service].kubernetes
    if Runtime.KUBERNETES in runtimes and workload is not None:
        ref = f"{workload.kind.lower()}/{workload.name}"
        places.append(f"in the env of {workload.kind} {workload.name} (or the Secret/ConfigMap it reads)")
        cmds.append(commands.kubectl_for(snapshot, profile, "rollout", "restart", ref))
    where = " and ".join(places) or "where the service reads its configuration"
    text = f"{what} for {service} {where}, then recreate it"
    if cause.alternative is CrashCategory.CODE_ISSUE:
        text += "; if it is set and the crash stays, the code reads it wrongly (a code issue)"
    return text + ".", cmds


def _dependency(snapshot: Snapshot, profile: Profile, view: StackView, port: int) -> tuple[str, list[str]] | None:
    """The profile service that declares ``port``, its state in every runtime, and how to start
    it where it should run: "connection refused" on a free port means it is not running."""
    dep = profile.service_for_port(port)
    if dep is None:
        return None
    placement = view.placements[dep]
    states, cmds = [], []
    every = [c for c in snapshot.containers if is_service_container(profile, dep, c)]
    for c in every:
        code = c.recorded_exit_code
        states.append(
            f"compose container {c.name} {c.state}"
            + (f" (exit code {code})" if code is not None and c.state != "running" else "")
        )
    home = home_runtime(profile, dep)
    if snapshot.reachable(Runtime.COMPOSE) and (home is Runtime.COMPOSE or every):
        if not every:
            states.append(f"no compose container in project {profile.compose_for(dep).project}")
            cmds.append(commands.compose_service(profile, dep, "up", "-d"))
        elif not any(c.state == "running" for c in every):
            cmds.append(commands.compose_service(profile, dep, "start"))
    spec = profile.services[dep].kubernetes
    for w in placement.workloads:
        states.append(f"{w.kind} {w.name} {w.ready_replicas} of {w.replicas} ready")
        if w.replicas == 0 and (home is Runtime.KUBERNETES or not cmds):
            replicas = spec.replicas if spec else 1
            cmds.append(
                commands.kubectl_for(snapshot, profile, "scale", f"{w.kind.lower()}/{w.name}", f"--replicas={replicas}")
            )
    if home is Runtime.KUBERNETES and spec is not None and not placement.workloads:
        states.append(f"{spec.kind} {spec.name} does not exist")
    if not states:
        states.append("not deployed in any runtime")
    return f"{dep} ({'; '.join(states)})", cmds


def _refused_dependency(
    snapshot: Snapshot, profile: Profile, view: StackView, port: int, *, service: str, runtime: Runtime
) -> tuple[tuple[str, list[str]] | None, str | None]:
    """For "connection refused" to a free profile port: the missing dependency (named, with its
    state and start commands), or, when it is up but only where ``service`` in ``runtime``
    cannot reach it, why not (then starting another copy would be the wrong advice)."""
    missing = _dependency(snapshot, profile, view, port)
    dep = profile.service_for_port(port)
    if missing is None or dep is None:
        return missing, None
    served = [r for r in (Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST) if ready_in(view.placements[dep], r)]
    if not served:
        return missing, None
    if runtime is Runtime.KUBERNETES and Runtime.KUBERNETES in served:
        return (
            None,
            f"{dep} is ready in kubernetes, so this is not a missing dependency: check the address "
            f"{service} connects to",
        )
    return (
        None,
        f"{missing[0]} runs only in {', '.join(served)}, where {service} in {runtime} cannot reach it on port {port}",
    )


def _recommendation(cause: CrashCause, service: str, owners: tuple[PortOwner, ...], dependency: str | None) -> str:
    match cause.category:
        case CrashCategory.CODE_ISSUE:
            return (
                f"Fix the code of {service}: this is not a deployment conflict, and no mode "
                "switch will stop the crash loop."
            )
        case CrashCategory.DEPLOYMENT_CONFLICT if dependency is not None and not owners:
            return (
                f"Nothing listens on port {cause.port}: its service {dependency} is not running. "
                f"Start it (the port is already free); {service} recovers on its next restart."
            )
        case CrashCategory.DEPLOYMENT_CONFLICT:
            return (
                f"Port {cause.port} is owned by {_owner_text(owners)}: run {service} and its "
                "dependencies in one runtime (stackwarden switch MODE)."
            )
        case CrashCategory.RESOURCES:
            return f"Give {service} more memory or find its leak; switching runtimes will not help."
        case CrashCategory.CONFIGURATION:
            alternative = " If the configuration is right, look for a code issue." if cause.alternative else ""
            return f"Fix the configuration of {service} (files, variables, permissions).{alternative}"
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
        leading = max(crashes, key=lambda c: c.cause.confidence)
        main = _with_own_port(leading.cause, profile, service, view)
        owners = view.port_owners.get(main.port, ()) if main.port else ()
        same_cause = all(c.cause.signature == main.signature for c in crashes)
        runtimes = tuple(sorted({c.location.runtime for c in crashes}))
        where = ", ".join(f"{c.location.name} ({c.location.detail})" for c in crashes)
        category_text = main.category.value.replace("-", " ")
        summary = f"{service} is crash-looping in {len(crashes)} place(s): {where}. Cause: {category_text}"
        summary += f" ({main.signature}, confidence {main.confidence:.0%})"
        if main.decisive_line:
            summary += f": {main.decisive_line}"
        if len(runtimes) > 1 and same_cause:
            summary += f"; the same root cause in {' and '.join(runtimes)}"
        dep = profile.service_for_port(main.port) if main.port else None
        missing, elsewhere = (
            _refused_dependency(snapshot, profile, view, main.port, service=service, runtime=leading.location.runtime)
            if main.signature == "connection-refused-profile-port" and main.port and not owners
            else (None, None)
        )
        extra_commands: list[str] = []
        if elsewhere is not None:
            summary += f"; nothing listens on host port {main.port}: {elsewhere}"
        elif missing is not None:
            summary += f"; nothing listens on port {main.port}: {missing[0]} is not running"
            extra_commands = missing[1]
        elif main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port:
            summary += f"; port {main.port} is owned by {_owner_text(owners)}"
        evidence = [f"{leading.location.name}: {line}" for line in main.evidence]
        evidence += [
            f"{c.location.name}: {c.cause.signature} ({c.cause.category})" for c in crashes if c is not leading
        ]
        if missing is not None or elsewhere is not None:
            evidence.append(f"port {main.port}: no listener on this host; declared by {dep}")
        elif main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port:
            evidence += [f"port {main.port}: {o.label} listens on {o.addresses}" for o in owners]
        recommendation = (
            main.explanation + " " + _recommendation(main, service, owners, missing[0] if missing else None)
        )
        if elsewhere is not None:
            recommendation = (
                f"{main.explanation} {elsewhere}. Run {service} and {dep} in one runtime (stackwarden switch "
                f"MODE); starting a second copy of {dep} would split it across runtimes."
            )
        if main.signature == "missing-setting":
            advice, setting_commands = _setting_advice(snapshot, profile, service, main, set(runtimes))
            recommendation = main.explanation + " " + advice
            extra_commands = setting_commands
        dependency_name = profile.service_for_port(main.port) if missing is not None and main.port else None
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
            recommendation=recommendation,
            commands=tuple(dict.fromkeys([*extra_commands, *(c.command for c in crashes)])),
            cause=main,
            action=f"Start {dependency_name}" if dependency_name else _ACTIONS[main.category],
        )
