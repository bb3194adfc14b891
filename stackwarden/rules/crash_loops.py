"""Crash loops with their cause. One finding per service, however many runtimes it crashes in:
the same root cause seen in compose and in pods is reported once with every location."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stackwarden import commands
from stackwarden.clusterevents import event_line, pod_warnings
from stackwarden.crash import classify_crash
from stackwarden.model.base import CrashCategory, Runtime, Severity
from stackwarden.model.finding import CrashCause, DependencyFailure, Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import INSPECT_GAP, KubeContainer, PodState, Snapshot
from stackwarden.placement import PortOwner, ServicePlacement, StackView, stack_view
from stackwarden.rules.registry import rule


@dataclass(frozen=True)
class _Crash:
    location: Location
    cause: CrashCause
    command: str
    gaps: tuple[str, ...] = ()


def _exit_text(code: int | None) -> str:
    """``exit code 101``; a crash with no recorded death says so instead of printing None."""
    return f"exit code {code}" if code is not None else "no recorded exit code"


def _restarts_text(count: int | None) -> str:
    """``4 restarts``; a container that could not be inspected has no count, and says so."""
    return f"{count} restarts" if count is not None else "restarts not counted"


def _crashes(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> list[_Crash]:
    """Classify every crash-looping container and pod of one service."""
    ports = profile.all_ports()
    out = []
    for c in placement.containers:
        if not c.is_crash_looping:
            continue
        cause = classify_crash(c.recorded_exit_code, c.log_tail, ports, c.oom_killed)
        uninspected = any(g.startswith(INSPECT_GAP) for g in c.unobserved)
        unread = ("; it could not be inspected" if uninspected else "") + (
            "; its logs could not be read" if any(not g.startswith(INSPECT_GAP) for g in c.unobserved) else ""
        )
        out.append(
            _Crash(
                Location(
                    runtime=Runtime.COMPOSE,
                    kind="container",
                    name=c.name,
                    detail=f"{c.state}, {_exit_text(c.recorded_exit_code)}, {_restarts_text(c.restart_count)}{unread}",
                ),
                cause,
                commands.docker_logs(c),
                c.unobserved,
            )
        )
    for p in placement.pods:
        if p.is_crash_looping:
            out.append(_pod_crash(snapshot, profile, ports, p))
    return out


_LIVENESS = "Liveness probe failed"


def _liveness(snapshot: Snapshot, pod: PodState, cause: CrashCause) -> CrashCause:
    """A container the kubelet kills for failing its liveness probe prints nothing decisive (it
    is SIGKILLed or SIGTERMed from outside): the kubelet's Unhealthy event is the cause then."""
    probes = [e for e in pod_warnings(snapshot, pod, {"Unhealthy"}) if _LIVENESS in e.message]
    if not probes or cause.category not in {CrashCategory.UNKNOWN, CrashCategory.RESOURCES}:
        return cause
    if cause.signature == "oom-killed":
        return cause
    return CrashCause(
        category=CrashCategory.CONFIGURATION,
        signature="liveness-probe-failed",
        explanation="The kubelet restarts the container because it fails its liveness probe: the probe's path, "
        "port or timing is wrong, or the app stops answering (then a code issue or a dependency it waits on).",
        confidence=0.85,
        evidence=(*(event_line(e) for e in probes[-2:]), *cause.evidence),
        exit_code=cause.exit_code,
        decisive_line=f"{probes[-1].reason}: {probes[-1].message}",
        alternative=CrashCategory.CODE_ISSUE,
    )


def _pod_crash(snapshot: Snapshot, profile: Profile, ports: tuple[int, ...], p: PodState) -> _Crash:
    """One crash-looping pod: its crashing container (an init container holds the whole pod),
    classified from that container's last run, with the kubelet's Warning events."""
    crashing = p.crashing_container
    if crashing is not None:
        code, oom = crashing.recorded_exit_code, crashing.last_reason == "OOMKilled"
        state = crashing.reason or ("Init:CrashLoopBackOff" if crashing.init else "CrashLoopBackOff")
        what = f"init container {crashing.name}: " if crashing.init else ""
        detail = f"{what}{state}, {_exit_text(code)}, {crashing.restart_count} restarts"
    else:
        code, oom = p.last_exit_code, p.last_reason == "OOMKilled"
        detail = f"{p.waiting_reason or p.phase}, {_exit_text(code)}, {p.restart_count} restarts"
    cause = _liveness(snapshot, p, classify_crash(code, p.log_tail, ports, oom))
    if crashing is not None and crashing.init and cause.dependency is None:
        cause = _init_dependency(cause, crashing)
    if p.unobserved:
        detail += "; its logs could not be read"
    container = ("-c", crashing.name) if crashing is not None and (crashing.init or len(p.containers) > 1) else ()
    return _Crash(
        Location(runtime=Runtime.KUBERNETES, kind="pod", name=f"{p.namespace}/{p.name}", detail=detail),
        cause,
        commands.kubectl_for(snapshot, profile, "logs", p.name, *container, "--previous", "--tail=50"),
        p.unobserved,
    )


def _init_dependency(cause: CrashCause, init: KubeContainer) -> CrashCause:
    """An init container that fails with nothing a dependency wording says, but that is declared
    to wait for one (``until nc -z orders-db 5432``): that dependency is what it failed on."""
    target = next(iter(init.targets), None)
    if target is None or (cause.category is CrashCategory.CODE_ISSUE and cause.signature != "unknown"):
        return cause
    line = f"init container {init.name} waits for {target.display} ({target.source})"
    failure = DependencyFailure(kind="wait", host=target.host, port=target.port, line=line)
    return cause.model_copy(update={"dependency": failure})


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


def _recommendation(cause: CrashCause, service: str, owners: tuple[PortOwner, ...]) -> str:
    match cause.category:
        case CrashCategory.CODE_ISSUE:
            return (
                f"Fix the code of {service}: this is not a deployment conflict, and no mode "
                "switch will stop the crash loop."
            )
        case CrashCategory.DEPLOYMENT_CONFLICT if not owners and cause.dependency is not None:
            return (
                f"Nothing listens on port {cause.port}: start the service that should answer there "
                f"({service} recovers on its next restart)."
            )
        case CrashCategory.DEPLOYMENT_CONFLICT:
            return (
                f"Port {cause.port} is owned by {_owner_text(owners)}: run {service} and its "
                "dependencies in one runtime (stackwarden switch MODE)."
            )
        case CrashCategory.RESOURCES:
            return f"Give {service} more memory or find its leak; switching runtimes will not help."
        case CrashCategory.CONFIGURATION if cause.signature == "credentials-rejected":
            return (
                f"Give {service} the credentials its dependency expects (the password or user in its environment "
                "or secret), or set them on the dependency; switching runtimes will not help."
            )
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
    CrashCategory.DEPENDENCY_DOWN: "Fix the dependency first",
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
        extra_commands: list[str] = []
        if main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port and owners:
            summary += f"; port {main.port} is owned by {_owner_text(owners)}"
        gaps = tuple(dict.fromkeys(g for c in crashes for g in c.gaps))
        if gaps:
            summary += "; partly observed: " + "; ".join(gaps)
        evidence = [f"{leading.location.name}: {line}" for line in main.evidence]
        evidence += [
            f"{c.location.name}: {c.cause.signature} ({c.cause.category})" for c in crashes if c is not leading
        ]
        if main.category is CrashCategory.DEPLOYMENT_CONFLICT and main.port:
            evidence += [f"port {main.port}: {o.label} listens on {o.addresses}" for o in owners]
        said = "\n".join(evidence)
        evidence += [line for line in _pod_events(snapshot, view.placements[service]) if line not in said]
        recommendation = main.explanation + " " + _recommendation(main, service, owners)
        if main.signature == "missing-setting":
            advice, setting_commands = _setting_advice(snapshot, profile, service, main, set(runtimes))
            recommendation = main.explanation + " " + advice
            extra_commands = setting_commands
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
            action=_ACTIONS[main.category],
            condition=_condition(main),
            gaps=gaps,
        )


def _condition(cause: CrashCause) -> str:
    """``crash-loops (code issue: ...)``: the state a chain quotes for a crash-looping service."""
    what = cause.category.value.replace("-", " ")
    return f"crash-loops ({what}" + (f": {cause.decisive_line})" if cause.decisive_line else ")")


def _pod_events(snapshot: Snapshot, placement: ServicePlacement) -> list[str]:
    """The kubelet's Warning events of the crash-looping pods (BackOff, Unhealthy ...), each once."""
    lines = [event_line(e) for p in placement.pods if p.is_crash_looping for e in pod_warnings(snapshot, p)]
    return list(dict.fromkeys(lines))[-4:]
