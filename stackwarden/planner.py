"""plan(snapshot, profile, mode) -> Plan: pure, ordered, explained.

Order: scale down workloads, stop host processes, stop containers (ports are freed), then start
the new owners (containers, compose up, workloads restored to their recorded replicas). Anything
that must not be touched refuses the whole plan, so nothing is left half-changed.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass, field

from stackwarden import commands
from stackwarden.model.base import CrashCategory, Mode, Runtime
from stackwarden.model.plan import (
    PREVIOUS_REPLICAS,
    ComposeUp,
    Plan,
    ScaleWorkload,
    StartContainer,
    Step,
    StopContainer,
    StopProcess,
)
from stackwarden.model.profile import MAX_REPLICAS, ComposeSpec, NoHomePolicy, Profile
from stackwarden.model.snapshot import INSPECT_GAP, Container, KubeWorkloadState, ProcessInfo, Snapshot
from stackwarden.placement import ServicePlacement, StackView, is_service_container, stack_view
from stackwarden.rules import diagnose
from stackwarden.rules.kubernetes import any_context_warning
from stackwarden.sanitize import command

_RUNNING = {"running", "restarting", "paused"}


def target_runtime(profile: Profile, mode: Mode, service: str) -> Runtime | None:
    """The one runtime ``service`` may use in ``mode`` (None: hybrid without an assignment)."""
    if mode is Mode.COMPOSE_ONLY:
        return Runtime.COMPOSE
    if mode is Mode.K8S_ONLY:
        return Runtime.KUBERNETES
    return profile.services[service].runtime


def parse_replicas(raw: str) -> int | None:
    """A replica count exactly as stackwarden writes it (``str(int)``): ASCII digits, no sign,
    space or leading zero, at most ``MAX_REPLICAS``; anything else is None. ``str.isdigit``
    alone would take ``²`` (then ``int`` raises) and ``100000``."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_REPLICAS)) or str(int(raw)) != raw:
        return None
    count = int(raw)
    return count if count <= MAX_REPLICAS else None


def recorded_replicas(workload: KubeWorkloadState, profile_replicas: int) -> int:
    """The count to restore: the annotation written when we scaled down, else the profile's (no
    annotation, or ``0``: nothing recorded to restore). An annotation that is not a count
    stackwarden could have written refuses the plan (``replica_record_refusals``); until then
    the profile's count stands in, so nothing downstream ever sees the bad value."""
    count = parse_replicas(workload.annotations.get(PREVIOUS_REPLICAS, ""))
    return count if count else profile_replicas


def replica_record_refusals(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> list[str]:
    """A workload to be scaled up from 0 whose recorded count is not one stackwarden wrote: too
    big (``100000``), not a number (``²``, ``-1``, ``4 ``). The record is the only word on how
    many replicas ran, and someone or something other than stackwarden changed it: guessing
    (the profile's count) could start far fewer than served before or overrun the cluster, so
    the switch refuses and says how to fix the record."""
    spec = profile.services[placement.service].kubernetes
    out = []
    for w in placement.workloads:
        raw = w.annotations.get(PREVIOUS_REPLICAS)
        if w.replicas != 0 or raw is None or parse_replicas(raw) is not None or spec is None:
            continue
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        ref = f"{w.kind.lower()}/{w.name}"
        drop = commands.kubectl_for(snapshot, profile, "annotate", ref, f"{PREVIOUS_REPLICAS}-")
        out.append(
            f"{placement.service}: {w.kind} {w.namespace}/{w.name} records {PREVIOUS_REPLICAS}={shown!r}, which is "
            f"not a replica count (a whole number 0..{MAX_REPLICAS}); stackwarden will not guess how many to start. "
            f"Set it to the count that ran, or remove it to restore the profile's {spec.replicas}: `{drop}`"
        )
    return out


def _home_hint(runtime: Runtime, name: str) -> str:
    """Which profile section would give the service a home in ``runtime``."""
    if runtime is Runtime.KUBERNETES:
        return f"no services.{name}.kubernetes, or no kubernetes section in the profile"
    if runtime is Runtime.HOST:
        return f"no services.{name}.host"
    return "no compose service"


def _context(snapshot: Snapshot) -> str | None:
    kube = snapshot.kubernetes
    return kube.context.name if kube is not None and kube.context is not None else None


def _scale(
    snapshot: Snapshot, profile: Profile, service: str, w: KubeWorkloadState, replicas: int, *, why: str
) -> ScaleWorkload:
    return ScaleWorkload.of(
        w,
        service=service,
        why=why,
        replicas=replicas,
        context=_context(snapshot),
        kubeconfig=profile.kubernetes.kubeconfig if profile.kubernetes else None,
    )


def _trusted_unit(observed: str | None, executables: tuple[str, ...], exe: str | None) -> str | None:
    """A unit read from the process's cgroup is used only when it is plausibly the service's own
    (named after one of its executables: redis-server.service, postgresql@15-main.service).
    A process started from a terminal sits in a session or user manager unit (user@1000.service):
    stopping that would end far more than the service, so it is stopped by signal instead. The
    names compared are the profile's and the base name of the file the process runs, never its
    ``comm``, which the process sets itself (``prctl``): a process may not name the unit it
    would have stopped."""
    if not observed or observed.startswith("user@"):
        return None
    stem = observed.removesuffix(".service").split("@", 1)[0]
    names = (*executables, *([posixpath.basename(exe)] if exe else []))
    return observed if any(stem.startswith(n) or n.startswith(stem) for n in names) else None


def _stop_process(profile: Profile, service: str, p: ProcessInfo, mode: Mode) -> StopProcess:
    spec = profile.services[service]
    matcher = spec.host
    if matcher is None:  # placement only matches processes through a matcher
        raise ValueError(f"{service}: a host process was matched without services.{service}.host")
    # the profile's unit only when this process really is in it (a stray started by hand is not)
    named = matcher.systemd_unit if matcher.systemd_unit and matcher.systemd_unit == p.systemd_unit else None
    return StopProcess.of(
        p,
        service=service,
        why=f"{mode}: {service} must not run on the host"
        + (f"; frees port(s) {', '.join(map(str, spec.ports))}" if spec.ports else ""),
        signal=matcher.stop_signal,
        grace_seconds=matcher.grace_period_seconds,
        systemd_unit=named or _trusted_unit(p.systemd_unit, matcher.executables, p.exe),
        stateful=spec.stateful,
        start_command=matcher.start_command,
    )


def _grace(profile: Profile, service: str) -> int:
    """Whole seconds a container of ``service`` gets to stop (Docker counts in seconds)."""
    spec = profile.services[service]
    return math.ceil(spec.host.grace_period_seconds) if spec.host else (30 if spec.stateful else 10)


def _stop_container(profile: Profile, service: str, c: Container, mode: Mode) -> StopContainer:
    return StopContainer.of(
        c,
        service=service,
        why=f"{mode}: {service} must not run under Compose; the container and its volumes are kept",
        timeout_seconds=_grace(profile, service),
        stateful=profile.services[service].stateful,
    )


def _start_container(profile: Profile, service: str, c: Container, mode: Mode) -> StartContainer:
    return StartContainer.of(
        c,
        service=service,
        why=f"{mode}: {service} runs under Compose; its container exists but is {c.state}",
        stop_timeout_seconds=_grace(profile, service),
        stateful=profile.services[service].stateful,
    )


def _compose_up(project: ComposeSpec, mode: Mode, wanted: list[tuple[str, str]]) -> ComposeUp:
    """``compose up --no-deps`` for exactly the services of ``project`` that have no container.
    ``wanted`` pairs each profile service with its compose name."""
    names = sorted(compose for _, compose in wanted)
    return ComposeUp.of(
        project=project.project,
        files=project.files,
        working_dir=project.working_dir,
        pairs=wanted,
        why=f"{mode}: no container exists yet for {', '.join(names)}",
    )


def _foreign_owners(view: StackView, profile: Profile, service: str) -> list[str]:
    """Owners of the service's ports that the profile does not name: never touched."""
    out = []
    for port in profile.services[service].ports:
        for owner in view.port_owners.get(port, ()):
            if not owner.in_profile:
                name_it = (
                    f"name its file and user in services.{service}.host.exe / .user if it really is {service}"
                    if owner.passed_over is not None
                    else "name its executable in the profile"
                )
                out.append(
                    f"{service}: port {port} is held by {owner.label}, {owner.not_ours}; "
                    f"stackwarden will not stop it. Stop it yourself or {name_it}."
                )
    return out


def passed_over_notes(view: StackView, profile: Profile) -> list[str]:
    """Processes that answer to a port-less service's name but are not it: left alone, and the
    plan says so with why (a port's such owners refuse the plan instead, as foreign owners)."""
    return [
        f"{name}: PID {process.pid} is left alone, not taken for {name}: {why}"
        for name, placement in view.placements.items()
        if not profile.services[name].ports
        for process, why in placement.passed_over
    ]


def signal_refusals(snapshot: Snapshot, steps: list[Step]) -> list[str]:
    """A process of another user that the profile names (``host.user``) while stackwarden runs
    as neither root nor that user: the kernel would refuse the signal (EPERM) halfway through
    the switch. Say so before anything changes."""
    context = snapshot.host_context
    if context is None or context.uid == 0:
        return []
    return [
        f"{step.service}: PID {step.pid} runs as {step.run_as.user or step.run_as.uid}, and stackwarden runs as "
        f"{context.runner}, who may not signal it; run the switch as root (or as that user)"
        for step in steps
        if isinstance(step, StopProcess) and step.run_as is not None and step.run_as.uid != context.uid
    ]


def _kube_refusals(snapshot: Snapshot, profile: Profile, steps: list[Step]) -> list[str]:
    """Kubernetes steps need an observed, allowed context (the profile's allowlist is the scope)."""
    if not any(isinstance(s, ScaleWorkload) for s in steps):
        return []
    kube = snapshot.kubernetes
    if kube is None or kube.context is None:
        return ["the plan scales Kubernetes workloads but the cluster was not observed"]
    spec = profile.kubernetes
    if not kube.context.allowed or spec is None or not spec.allows(kube.context.name, kube.context.server):
        allowed = ", ".join(spec.allowed_contexts) if spec else ""
        servers = (
            f", or its API server {kube.context.server or '(unknown)'} is not in allowed_servers "
            f"({', '.join(spec.allowed_servers)})"
            if spec and spec.allowed_servers
            else ""
        )
        return [
            f"context {kube.context.name!r} is not in the profile's allowed_contexts ({allowed}){servers}: "
            "it is observed read-only and never changed"
        ]
    return []


def _hybrid_guard(snapshot: Snapshot, profile: Profile, view: StackView) -> list[str]:
    """No host port may be reachable through two runtimes: compose-published ports of compose
    services against NodePort/LoadBalancer of Kubernetes services and hostPorts of their pods."""
    missing = [n for n, s in profile.services.items() if s.runtime is None]
    refusals = ["hybrid-guarded needs services.<name>.runtime for: " + ", ".join(missing)] if missing else []
    kube = snapshot.kubernetes
    k8s_exposed: dict[int, str] = {}
    for name, spec in profile.services.items():
        if spec.runtime is not Runtime.KUBERNETES or spec.kubernetes is None or kube is None:
            continue
        for svc in kube.services:
            if svc.name == spec.kubernetes.service and svc.type in {"NodePort", "LoadBalancer"}:
                for p in svc.ports:
                    exposed = [p.node_port, p.port if svc.type == "LoadBalancer" else None]
                    for port in (x for x in exposed if x is not None):
                        k8s_exposed[port] = f"{name} (Service {svc.name} {svc.type})"
        for pod in view.placements[name].pods:  # a hostPort binds the node's port: this host's, here
            for port in pod.host_ports if pod.phase not in {"Succeeded", "Failed"} else ():
                k8s_exposed.setdefault(port, f"{name} (pod {pod.name} hostPort {port})")
    for name, spec in profile.services.items():
        if spec.runtime is not Runtime.COMPOSE:
            continue
        published = {
            p.host_port for c in snapshot.containers if is_service_container(profile, name, c) for p in c.declared
        } | set(spec.ports)
        for port in sorted(published & set(k8s_exposed)):
            refusals.append(
                f"hybrid guard: host port {port} would be reachable through compose ({name}) and "
                f"kubernetes ({k8s_exposed[port]}); assign both to one runtime or remove the exposure"
            )
    return refusals


@dataclass
class _Part:
    """What one concern adds to a plan."""

    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _no_home(snapshot: Snapshot, profile: Profile, mode: Mode, placement: ServicePlacement, want: Runtime) -> _Part:
    """The profile's ``no_home`` policy for a service the mode's runtime cannot run: refuse,
    leave it running where it is, or stop it everywhere. Always stated in the plan."""
    name = placement.service
    policy = profile.services[name].no_home
    part = _Part()
    if policy is NoHomePolicy.REFUSE:
        part.refusals.append(
            f"{name}: has no home in {want} ({_home_hint(want, name)}) and services.{name}.no_home is "
            "'refuse'; set it to 'stop' or 'leave', or give it a home there"
        )
    elif policy is NoHomePolicy.LEAVE:
        where = ", ".join(placement.runtimes) or "nowhere"
        part.notes.append(f"{name}: no home in {want}; left as it runs ({where}) by no_home: leave")
    else:
        part.notes.append(f"{name}: no home in {want}; stopped wherever it runs by no_home: stop")
        why = f"{mode}: {name} has no home in {want} and its profile says no_home: stop"
        part.steps += [_scale(snapshot, profile, name, w, 0, why=why) for w in placement.workloads if w.replicas > 0]
        part.steps += [_stop_process(profile, name, p, mode) for p in placement.processes]
        part.steps += [_stop_container(profile, name, c, mode) for c in placement.containers if c.state in _RUNNING]
    return part


def _target_refusals(
    view: StackView, profile: Profile, mode: Mode, placement: ServicePlacement, want: Runtime, *, host_seen: bool
) -> list[str]:
    """What stops a service from living in ``want``: a host service stackwarden cannot start, a
    paused container (it looks running and is not: planning nothing for it would be "nothing to
    do" over a service that is down), or a Kubernetes Service that exposes the port the new owner
    needs (never edited)."""
    name, spec, out = placement.service, profile.services[placement.service], []
    if want is Runtime.HOST and not placement.processes and not host_seen:
        out.append(f"{name}: assigned to the host, whose processes could not be observed")
    elif want is Runtime.HOST and not placement.processes:
        out.append(
            f"{name}: assigned to the host but no host process runs, and stackwarden does not start "
            "host services; start it first"
        )
    if want is Runtime.COMPOSE:  # frozen by `docker pause`: running to Docker, serving nothing
        out += [
            f"{name}: container {c.name} is paused, so it serves nothing, and stackwarden does not unpause "
            f"what someone froze; run `{command(['docker', 'unpause', c.name])}` (or stop it), then switch again"
            for c in placement.containers
            if c.state == "paused"
        ]
    if want is not Runtime.KUBERNETES:
        out += [
            f"{name}: port {o.port} is exposed by {o.label}; {mode} needs that port for {want} and "
            "stackwarden does not edit Services: make it ClusterIP first"
            for port in spec.ports
            for o in view.port_owners.get(port, ())
            if o.in_profile and o.kube_object is not None and o.kube_object.startswith("Service ")
        ]
    return out


_WORKLOAD_KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def blind_spots(snapshot: Snapshot, profile: Profile, service: str) -> list[str]:
    """What of the service's runtimes could not be fully seen (a forbidden list, a timeout).
    Not seen is never absent: a plan built on it could leave the service running twice, and a
    verdict built on it could say "passed" over pods it never saw. A whole runtime that could
    not be observed is said once for the plan, not per service."""
    spec = profile.services[service]
    out = []
    if spec.kubernetes is not None and profile.kubernetes is not None:
        kinds = frozenset({_WORKLOAD_KINDS[spec.kubernetes.kind], "pods", "services"})
        out += [
            f"{service}: kubernetes {gap.kind} {gap.state} ({gap.reason}: {gap.detail}); the switch cannot tell "
            "what of it runs there"
            for gap in snapshot.gaps(Runtime.KUBERNETES, kinds)
            if gap.kind != "*"
        ]
    out += [
        f"{service}: {gap}; the switch cannot tell how to stop it (stop signal, restart policy) or whether it "
        "is still the one seen"
        for c in snapshot.containers
        if is_service_container(profile, service, c)
        for gap in c.unobserved
        if gap.startswith(INSPECT_GAP)
    ]
    return out


def _visibility_refusals(snapshot: Snapshot) -> list[str]:
    """A runtime that could not be observed: the switch can neither see what runs there nor
    verify the result, so not seen is never read as absent."""
    return [
        f"{status.runtime} could not be observed ({status.error}): the switch could neither see what runs "
        "there nor verify the result"
        + (
            " (a stack without a cluster side needs no kubernetes section)"
            if status.runtime is Runtime.KUBERNETES
            else ""
        )
        for status in snapshot.runtimes
        if not status.reachable
    ]


def needs_freed_port(view: StackView, profile: Profile, service: str, want: Runtime) -> bool:
    """Whether the new owner of ``service`` in ``want`` needs a host port that someone else holds
    now. A compose container or host process binds the service's ports on the host; a Kubernetes
    workload behind a ClusterIP Service binds none (unless the profile's own Service or pods
    expose one). Only then must the old owner stop before the new one starts."""
    ports = profile.services[service].ports
    owners = [o for port in ports for o in view.port_owners.get(port, ())]
    if want is Runtime.KUBERNETES:
        exposes = any(o.runtime is Runtime.KUBERNETES and o.in_profile for o in owners)
        return exposes and any(o.runtime is not Runtime.KUBERNETES for o in owners)
    return any(not (o.runtime is want and o.in_profile) for o in owners)


def _service_steps(
    snapshot: Snapshot, profile: Profile, mode: Mode, placement: ServicePlacement, want: Runtime
) -> tuple[list[Step], list[Step], list[str]]:
    """(stops of the old owners, starts of the new one, compose services to bring up)."""
    name, spec = placement.service, profile.services[placement.service]
    stops: list[Step] = []
    starts: list[Step] = []
    compose_up: list[str] = []
    if want is not Runtime.KUBERNETES:
        why = f"{mode}: {name} must not run in Kubernetes; replicas recorded on the object"
        stops += [_scale(snapshot, profile, name, w, 0, why=why) for w in placement.workloads if w.replicas > 0]
    if want is not Runtime.HOST:
        stops += [_stop_process(profile, name, p, mode) for p in placement.processes]
    if want is not Runtime.COMPOSE:
        stops += [_stop_container(profile, name, c, mode) for c in placement.containers if c.state in _RUNNING]
    if want is Runtime.COMPOSE:
        existing = [c for c in snapshot.containers if is_service_container(profile, name, c)]
        if not existing:
            compose_up.append(profile.compose_service_name(name))
        starts += [_start_container(profile, name, c, mode) for c in existing if c.state not in _RUNNING]
    if want is Runtime.KUBERNETES and spec.kubernetes is not None:
        why = f"{mode}: {name} runs in Kubernetes; restoring its recorded replica count"
        starts += [
            _scale(snapshot, profile, name, w, recorded_replicas(w, spec.kubernetes.replicas), why=why)
            for w in placement.workloads
            if w.replicas == 0
        ]
    return stops, starts, compose_up


def _missing_workload(snapshot: Snapshot, profile: Profile, placement: ServicePlacement, want: Runtime) -> list[str]:
    """Kubernetes as the target needs the workload to exist: stackwarden never creates one. A
    workload that was not seen because the cluster (or its kind of object) could not be read is
    said to be not observed, never to not exist."""
    spec = profile.services[placement.service].kubernetes
    if want is not Runtime.KUBERNETES or spec is None or placement.workloads:
        return []
    status = snapshot.runtime_status(Runtime.KUBERNETES)
    gaps = snapshot.gaps(Runtime.KUBERNETES, frozenset({_WORKLOAD_KINDS[spec.kind]}))
    if status is None or not status.reachable or gaps:
        why = status.error if status is not None and not status.reachable else "; ".join(f"{g.reason}" for g in gaps)
        return [
            f"{placement.service}: {spec.kind} {spec.name} was not observed (kubernetes could not be read: "
            f"{why or 'no observation'}); whether it exists is unknown"
        ]
    return [
        f"{placement.service}: {spec.kind} {spec.name} does not exist in the namespace; "
        "apply its manifests first (stackwarden never creates workloads)"
    ]


def plan(snapshot: Snapshot, profile: Profile, mode: Mode) -> Plan:
    """The ordered steps that take this host to ``mode``, or the reasons it must not.

    Order (make before break): new owners that need no port an old owner holds start first
    (phase ``make``; the switch waits for their health), then every old owner stops (``break``;
    independent, so run concurrently), then the new owners that needed a freed port start
    (``start``), back to back with the stops."""
    view = stack_view(snapshot, profile)
    refusals: list[str] = _hybrid_guard(snapshot, profile, view) if mode is Mode.HYBRID_GUARDED else []
    notes: list[str] = passed_over_notes(view, profile)
    phased: dict[str, list[Step]] = {"make": [], "break": [], "start": []}
    compose_up: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name, placement in view.placements.items():
        want = target_runtime(profile, mode, name)
        if want is None:
            continue
        refusals += _foreign_owners(view, profile, name) + blind_spots(snapshot, profile, name)
        if not profile.has_home(name, want):
            homeless = _no_home(snapshot, profile, mode, placement, want)
            refusals += homeless.refusals
            notes += homeless.notes
            phased["break"] += homeless.steps
            continue
        stops, starts, ups = _service_steps(snapshot, profile, mode, placement, want)
        phase = "start" if needs_freed_port(view, profile, name, want) else "make"
        phased["break"] += stops
        phased[phase] += [step.model_copy(update={"phase": phase}) for step in starts]
        for compose_name in ups:
            compose_up.setdefault((profile.compose_for(name).project, phase), []).append((name, compose_name))
        refusals += _target_refusals(view, profile, mode, placement, want, host_seen=snapshot.reachable(Runtime.HOST))
        refusals += _missing_workload(snapshot, profile, placement, want)
        if want is Runtime.KUBERNETES:
            refusals += replica_record_refusals(snapshot, profile, placement)
    for project in profile.compose_projects:  # one compose up per project and phase, in profile order
        for phase in ("make", "start"):
            wanted = compose_up.get((project.project, phase), [])
            if wanted:
                phased[phase].append(_compose_up(project, mode, wanted).model_copy(update={"phase": phase}))
    steps = phased["make"] + phased["break"] + phased["start"]
    refusals += _kube_refusals(snapshot, profile, steps) + signal_refusals(snapshot, steps)
    refusals += _visibility_refusals(snapshot)
    for finding in diagnose(snapshot, profile):
        if finding.cause is not None and finding.cause.category is CrashCategory.CODE_ISSUE:
            notes.append(f"{finding.title}: a code issue; it will keep crashing in {mode} too")
    if (warning := any_context_warning(profile)) is not None:
        notes.append(f"WARNING: {warning}")
    return Plan(
        profile=profile.name,
        mode=mode,
        steps=tuple(steps),
        refusals=tuple(dict.fromkeys(refusals)),
        notes=tuple(notes),
    )


def undo_after_failure(step: Step) -> bool:
    """Whether a step that *failed* is taken into the rollback too (its kind says: a failed
    ``compose up a b`` may have started a, a failed start or scale may have gone through before
    its answer was lost, a failed stop may have sent its signal). A failed stop that cannot be
    undone is taken too: its old owner may be on its way out, and the rollback must not stop
    the new owner that serves for it."""
    return step.UNDO_AFTER_FAILURE


def inverse_of(step: Step) -> Step | None:
    """The step that undoes ``step`` (None when it cannot be undone), as its kind defines it."""
    return step.undo()
