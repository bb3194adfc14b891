"""No false all-clear: a profile service with no ready instance where it should run is always a
finding, with the runtime's own reason and message as its cause.

"Where it should run" is the runtime of the profile's default mode (when the service has a home
there) plus every runtime where it is deployed: a workload with replicas, a compose container
that is up or trying to be. Crash loops are left to the crash-loop rule (critical, with logs);
everything else that keeps a service from being ready is reported here, in the manner of
k8sgpt's pod analyzer: ImagePullBackOff/ErrImagePull, CreateContainerConfigError, OOMKilled,
unschedulable pods with the scheduler's message, failing readiness probes, a Service whose
selector matches no pod, a stopped or never created container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from stackwarden import commands
from stackwarden.clusterevents import event_line, pod_warnings, service_warnings
from stackwarden.crash import classify_crash, dependency_failure
from stackwarden.model.base import CrashCategory, Runtime, Severity
from stackwarden.model.finding import CrashCause, DependencyFailure, Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Container, KubeContainer, KubeServiceState, PodState, Snapshot
from stackwarden.placement import (
    ServicePlacement,
    StackView,
    converge_commands,
    home_runtime,
    is_service_container,
    ready_in,
    stack_view,
    start_command,
)
from stackwarden.rules.registry import rule

_MISSING_REF = re.compile(
    r"couldn't find key (?P<key>\S+) in (?P<kind>Secret|ConfigMap) (?P<ref>\S+)"
    r"|(?P<kind2>secret|configmap) \"(?P<ref2>[^\"]+)\" not found",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Unready:
    """Why one runtime has no ready instance of a service, and what resolves it."""

    runtime: Runtime
    cause: CrashCause
    location: Location
    summary: str
    recommendation: str
    commands: tuple[str, ...]


def _expected(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> list[Runtime]:
    """The runtimes that should have a ready instance of the service (observed ones only)."""
    wanted = []
    home = home_runtime(profile, placement.service)
    if home is not None:
        wanted.append(home)
    if any(w.replicas > 0 for w in placement.workloads):
        wanted.append(Runtime.KUBERNETES)
    if placement.containers:
        wanted.append(Runtime.COMPOSE)
    if placement.processes:
        wanted.append(Runtime.HOST)
    return [r for r in dict.fromkeys(wanted) if snapshot.reachable(r)]


def _reported_elsewhere(view: StackView, placement: ServicePlacement, runtime: Runtime) -> bool:
    """Another rule reports this runtime already, critical and with its cause: a crash loop
    (with the logs) or a container that could not bind a port someone else holds."""
    if runtime is Runtime.COMPOSE:
        blocked = any(
            c.failed_to_start and any(view.port_owners.get(p.host_port) for p in c.declared)
            for c in placement.containers
        )
        return blocked or any(c.is_crash_looping for c in placement.containers)
    if runtime is Runtime.KUBERNETES:
        return any(p.is_crash_looping for p in placement.pods)
    return False


def _cause(category: CrashCategory, signature: str, explanation: str, evidence: list[str]) -> CrashCause:
    return CrashCause(
        category=category,
        signature=signature,
        explanation=explanation,
        confidence=0.95,
        evidence=tuple(dict.fromkeys(e for e in evidence if e)),
    )


# ------------------------------------------------------------------------------------ compose
def _compose_unready(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> _Unready:
    """Why the service has no running container in its compose project, and how to start it."""
    name = placement.service
    project = profile.compose_for(name).project
    every = [c for c in snapshot.containers if is_service_container(profile, name, c)]
    logs = tuple(commands.docker_logs(c) for c in every[:1])
    if not every:
        cause = _cause(
            CrashCategory.CONFIGURATION,
            "no-container",
            f"Compose project {project} has no container for {name}: it was never created or was removed.",
            [f"no container labelled {project}/{profile.compose_service_name(name)}"],
        )
        start = commands.compose_service(profile, name, "up", "-d")
        return _Unready(
            Runtime.COMPOSE,
            cause,
            Location(runtime=Runtime.COMPOSE, kind="compose service", name=f"{project}/{name}", detail="no container"),
            f"{name} has no container in compose project {project}",
            f"Create and start it: `{start}`.",
            (start,),
        )
    c = every[0]
    if c.failed_to_start:
        cause = _cause(
            CrashCategory.DEPLOYMENT_CONFLICT if "address already in use" in (c.error or "") else CrashCategory.UNKNOWN,
            "engine-error",
            "The engine could not start the container.",
            [f"{c.name}: {c.error}"],
        )
        what = f"{c.name} is {c.state} and could not start: {c.error}"
        advice = "Resolve the engine error above (see the port findings for a port held by another owner)."
        return _Unready(
            Runtime.COMPOSE,
            cause,
            Location(runtime=Runtime.COMPOSE, kind="container", name=c.name, detail=f"{c.state}: {c.error}"),
            what,
            advice,
            logs,
        )
    code = c.recorded_exit_code
    state = f"{c.state}" + (f", exit code {code}" if code is not None else "")
    if c.state == "running":  # up but failing its health check
        said = f" Its last check: {c.health_output}." if c.health_output else ""
        waits = dependency_failure(list(reversed(c.log_tail[-5:])))
        cause = _cause(
            CrashCategory.UNKNOWN,
            "unhealthy",
            f"The container runs but its health check fails.{said}",
            [
                f"{c.name}: {c.status}",
                *([f"last health check: {c.health_output}"] if c.health_output else []),
                *c.log_tail[-2:],
            ],
        ).model_copy(update={"dependency": waits, "decisive_line": waits.line if waits else None})
        return _Unready(
            Runtime.COMPOSE,
            cause,
            Location(runtime=Runtime.COMPOSE, kind="container", name=c.name, detail=c.status),
            f"{c.name} runs but is not healthy ({c.status})",
            "Read its logs and health check output (docker inspect) to see why it fails.",
            (*logs, f"docker inspect --format '{{{{json .State.Health}}}}' {c.name}"),
        )
    if c.died_failing:
        return _died(profile, placement, c, logs)
    start = commands.compose_service(profile, name, "start")
    cause = _cause(
        CrashCategory.UNKNOWN,
        f"container-{c.state}",
        f"The container is {state}: nothing runs {name} under Compose.",
        [f"{c.name}: {state}", *c.log_tail[-2:]],
    ).model_copy(update={"exit_code": code})
    return _Unready(
        Runtime.COMPOSE,
        cause,
        Location(runtime=Runtime.COMPOSE, kind="container", name=c.name, detail=state),
        f"{c.name} is {state}",
        f"Start it: `{start}` (read its logs first if it exited with an error).",
        (*logs, start),
    )


def _died_advice(profile: Profile, service: str, cause: CrashCause) -> tuple[str, bool]:
    """What fixes a container that died of ``cause``, and whether starting it again (after the
    fix) belongs in the commands: "start it" alone would only repeat the same death."""
    spec = profile.compose_for(service)
    where = f"services.{profile.compose_service_name(service)} in {', '.join(spec.files) or 'the compose file'}"
    match cause.category:
        case CrashCategory.RESOURCES:
            return (
                f"It was killed for memory: raise its limit (mem_limit or deploy.resources.limits.memory of "
                f"{where}) or find what uses the memory, then recreate it; starting it unchanged dies again.",
                True,
            )
        case CrashCategory.CONFIGURATION if cause.signature == "missing-setting":
            what = f"Set {cause.setting}" if cause.setting else "Provide the missing setting"
            return f"{what} under the environment of {where}, then recreate it.", True
        case CrashCategory.CONFIGURATION if cause.signature == "dependency-name-unresolved":
            return (
                "Start the dependency it names on the same network (or add it to the stack), or correct the host "
                f"name in its configuration ({where}), then start it again.",
                True,
            )
        case CrashCategory.CONFIGURATION if cause.signature == "credentials-rejected":
            return (
                f"Set the credentials its dependency expects under the environment of {where} (or set them on the "
                "dependency), then recreate it.",
                True,
            )
        case CrashCategory.CONFIGURATION:
            return f"Fix the configuration the log line names ({where}), then recreate it.", True
        case CrashCategory.DEPLOYMENT_CONFLICT:
            return (
                "A port it needs is held or a dependency refused it: resolve the port findings or start the "
                "dependency first, then start it again.",
                True,
            )
        case CrashCategory.CODE_ISSUE:
            return (
                f"Fix the code of {service}: starting it again crashes the same way, and no mode switch helps.",
                False,
            )
        case _:
            return "Read its logs for why it exited, fix that, then start it again.", True


def _died(profile: Profile, placement: ServicePlacement, c: Container, logs: tuple[str, ...]) -> _Unready:
    """A container that exited on a failure and stays down (no restart policy, or given up):
    its cause comes from its logs and exit code as a crash loop's does."""
    name = placement.service
    cause = classify_crash(c.recorded_exit_code, c.log_tail, profile.all_ports(), c.oom_killed)
    state = f"{c.state}, exit code {c.recorded_exit_code}" + (", OOM-killed" if c.oom_killed else "")
    advice, restart = _died_advice(profile, name, cause)
    recreate = commands.compose_service(profile, name, "up", "-d")
    decisive = f": {cause.decisive_line.rstrip('.')}" if cause.decisive_line else ""
    return _Unready(
        Runtime.COMPOSE,
        cause.model_copy(
            update={
                "explanation": f"The container died ({state}){decisive}. {cause.explanation}",
                "evidence": (f"{c.name}: {state}", *cause.evidence),
            }
        ),
        Location(runtime=Runtime.COMPOSE, kind="container", name=c.name, detail=state),
        f"{c.name} is {state}",
        advice,
        (*logs, recreate) if restart else logs,
    )


# --------------------------------------------------------------------------------- kubernetes
def _pod_events(snapshot: Snapshot, pod: PodState, reasons: set[str]) -> list[str]:
    """The messages of the pod's events with those reasons, newest last, each once."""
    return list(
        dict.fromkeys(f"{e.reason}: {e.message}" for e in snapshot.events_for("Pod", pod.name) if e.reason in reasons)
    )


def _pod_cause(snapshot: Snapshot, pod: PodState) -> tuple[CrashCause, str]:
    """The cause of one unready pod from the kubelet's and scheduler's own words, and advice."""
    image = ", ".join(pod.images) or "?"
    unschedulable = pod.unschedulable
    if unschedulable is not None:
        message = unschedulable.message or unschedulable.reason or "not scheduled"
        resources = bool(
            re.search(r"Insufficient (cpu|memory)|Too many pods|(memory|disk|pid)-pressure", message, re.IGNORECASE)
        )
        cause = _cause(
            CrashCategory.RESOURCES if resources else CrashCategory.CONFIGURATION,
            "Unschedulable",
            f"The scheduler found no node for the pod: {message}",
            [
                f"{pod.name}: PodScheduled=False ({unschedulable.reason}): {message}",
                *_pod_events(snapshot, pod, {"FailedScheduling"}),
            ],
        )
        advice = (
            "Lower the pod's resource requests or add node capacity"
            if resources
            else "Fix the pod's node selector, affinity, tolerations or volume claims"
        ) + " so the scheduler can place it."
        return cause, advice
    reason = pod.waiting_reason
    if reason in {"ImagePullBackOff", "ErrImagePull", "InvalidImageName"}:
        cause = _cause(
            CrashCategory.CONFIGURATION,
            reason,
            f"The image {image} cannot be pulled: a wrong name or tag, a private registry without "
            "credentials, or a registry out of reach.",
            [
                f"{pod.name}: {reason}: {pod.waiting_message or ''}".rstrip(": "),
                *_pod_events(snapshot, pod, {"Failed", "BackOff"})[:3],
            ],
        )
        return cause, f"Correct the image reference ({image}) or give the pod an imagePullSecret for its registry."
    if reason in {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}:
        message = pod.waiting_message or ""
        ref = _MISSING_REF.search(message)
        advice = "Fix the pod's configuration named in the message."
        if ref is not None:
            kind = (ref.group("kind") or ref.group("kind2") or "").capitalize().replace("map", "Map")
            target = ref.group("ref") or ref.group("ref2") or ""
            key = ref.group("key")
            advice = (
                f"Add key {key} to {kind} {target}" if key else f"Create {kind} {target}"
            ) + " (or correct the reference in the workload)."
        cause = _cause(
            CrashCategory.CONFIGURATION,
            reason,
            "The kubelet cannot create the container from its configuration: a referenced ConfigMap "
            "or Secret, or a key in it, is missing.",
            [f"{pod.name}: {reason}: {message}", *_pod_events(snapshot, pod, {"Failed"})[:2]],
        )
        return cause, advice
    if pod.last_reason == "OOMKilled":
        cause = _cause(
            CrashCategory.RESOURCES,
            "OOMKilled",
            "The container was killed for exceeding its memory limit (lastState.terminated: OOMKilled).",
            [f"{pod.name}: lastState.terminated OOMKilled, exit code {pod.last_exit_code}"],
        ).model_copy(update={"exit_code": pod.last_exit_code})
        return cause, "Raise the container's memory limit or find what makes it use more memory."
    blocked = _init_cause(snapshot, pod)
    if blocked is not None:
        return blocked
    stuck = _sandbox_or_volume(snapshot, pod)
    if stuck is not None:
        return stuck
    if reason:
        cause = _cause(
            CrashCategory.UNKNOWN,
            reason,
            f"The container waits: {reason}.",
            [f"{pod.name}: {reason}: {pod.waiting_message or ''}".rstrip(": ")],
        )
        return cause, "Read the pod's events (kubectl describe pod) for what it waits on."
    probes = _pod_events(snapshot, pod, {"Unhealthy"})
    readiness = [p for p in probes if "Readiness probe failed" in p]
    if readiness:
        cause = _cause(
            CrashCategory.UNKNOWN,
            "readiness-probe-failed",
            "The container runs but fails its readiness probe, so the Service sends it no traffic.",
            [f"{pod.name}: {line}" for line in readiness[-2:]],
        )
        return cause, "Make the readiness endpoint answer (check the app's dependencies and the probe's path/port)."
    node = pod_warnings(snapshot, pod, {"NodeNotReady"})
    if node:
        cause = _cause(
            CrashCategory.UNKNOWN,
            "NodeNotReady",
            f"The pod's node {pod.node or '?'} is not ready (its kubelet stopped reporting), so the pod is marked "
            "not ready: the node, not the app, is the cause.",
            [event_line(e) for e in node[-2:]],
        )
        return (
            cause,
            f"Look at node {pod.node or '?'} (kubectl describe node); its pods are rescheduled once it is "
            "gone for good, or come back when its kubelet reports again.",
        )
    ready = pod.condition("Ready")
    detail = (ready.message or ready.reason or "") if ready is not None else ""
    cause = _cause(
        CrashCategory.UNKNOWN,
        f"pod-{pod.phase.lower()}",
        f"The pod is {pod.phase} and not ready.",
        [f"{pod.name}: {pod.phase}, {pod.ready_containers}/{pod.total_containers} containers ready {detail}".strip()],
    )
    return cause, "Read the pod's events (kubectl describe pod) for why it is not ready."


_VOLUME_OR_SANDBOX = ("FailedCreatePodSandBox", "FailedMount", "FailedAttachVolume")
_STUCK = {
    "FailedCreatePodSandBox": "The node could not create the pod's sandbox (its network, through the CNI plugin, "
    "or the container runtime): no container of the pod can start.",
    "FailedMount": "A volume of the pod cannot be mounted (a ConfigMap, Secret or claim that is missing, or a "
    "volume that does not attach): the pod stays in ContainerCreating.",
    "FailedAttachVolume": "A volume of the pod cannot be attached to its node: the pod stays in ContainerCreating.",
}


def _sandbox_or_volume(snapshot: Snapshot, pod: PodState) -> tuple[CrashCause, str] | None:
    """A pod stuck in ContainerCreating: the kubelet's (or attach-detach controller's) Warning
    events say why: sandbox creation or a volume mount/attach failed."""
    events = pod_warnings(snapshot, pod, _VOLUME_OR_SANDBOX)
    if not events or pod.ready:
        return None
    last = events[-1]
    cause = _cause(
        CrashCategory.CONFIGURATION,
        last.reason,
        _STUCK[last.reason],
        [f"{pod.name}: {pod.waiting_reason or pod.phase}", *(event_line(e) for e in events[-3:])],
    ).model_copy(update={"decisive_line": f"{last.reason}: {last.message}"})
    missing = _MISSING_REF.search(last.message) or re.search(
        r"(persistentvolumeclaim|configmap|secret) \"([^\"]+)\" not found", last.message, re.IGNORECASE
    )
    advice = (
        f"Create what the event names ({missing.group(0)}) or correct the pod's volumes."
        if missing
        else "Fix what the event names (the node's network plugin, the volume or its claim), then the pod starts."
    )
    return cause, advice


def _init_cause(snapshot: Snapshot, pod: PodState) -> tuple[CrashCause, str] | None:
    """A pod held in ``Init:``: an init container that failed for good, or one that still runs
    (it waits for something: its log, else its command, says what)."""
    init = pod.blocking_init
    if init is None or init.is_crash_looping:
        return None  # none, or a crash loop (the crash-loop rule reads its log)
    index = pod.init_containers.index(init) + 1
    where = f"init container {init.name} ({index}/{len(pod.init_containers)})"
    if init.state == "terminated":
        cause = classify_crash(init.exit_code, pod.log_tail, ())
        return (
            cause.model_copy(
                update={
                    "explanation": f"{where} failed (exit code {init.exit_code}): {cause.explanation}",
                    "evidence": (f"{pod.name}: Init:Error, {where} exit code {init.exit_code}", *cause.evidence),
                }
            ),
            f"Fix what {where} reports; the app containers start only after it succeeds.",
        )
    failure = _waited_for(pod, init)
    running = f" for {init.uptime_seconds:.0f}s" if init.uptime_seconds is not None else ""
    target = f": it waits for {failure.target}" if failure is not None and failure.target else ""
    cause = _cause(
        CrashCategory.CONFIGURATION,
        "init-waiting",
        f"{where} has not completed (running{running}){target}; the app containers wait for it (PodInitializing).",
        [f"{pod.name}: {where} running{running}", *pod.log_tail[-2:]],
    ).model_copy(update={"dependency": failure, "decisive_line": failure.line if failure else None})
    return cause, f"Make what {where} waits for available, or correct the address it waits for."


def _waited_for(pod: PodState, init: KubeContainer) -> DependencyFailure | None:
    """What a running init container waits for: its log's own words, else the address its
    command names (``until nc -z orders-db 5432``)."""
    if pod.log_container == init.name and pod.log_tail:
        found = dependency_failure(list(reversed(pod.log_tail[-5:])))
        if found is not None:
            return found
    target = next(iter(init.targets), None)
    if target is None:
        return None
    line = f"init container {init.name} waits for {target.display} ({target.source})"
    return DependencyFailure(kind="wait", host=target.host, port=target.port, line=line)


def _kube_unready(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> _Unready:
    """Why the service has no ready pod, from the pods' own reasons (the worst one leads)."""
    name = placement.service
    spec = profile.services[name].kubernetes
    kind, wname = (spec.kind, spec.name) if spec else ("Deployment", name)
    ref = f"{kind.lower()}/{wname}"
    describe = commands.kubectl_for(snapshot, profile, "describe", ref)
    live = [w for w in placement.workloads if w.replicas > 0]
    unread = [
        f
        for f in (snapshot.kubernetes.forbidden if snapshot.kubernetes else ())
        if f.startswith(f"list {kind.lower()}s")
    ]
    if not placement.workloads and unread:
        # a list we may not read is not an empty one: "does not exist" would send the reader
        # to apply manifests that are there
        cause = _cause(
            CrashCategory.UNKNOWN,
            "workload-not-readable",
            f"{kind} {wname} could not be read (forbidden), so whether it exists and is ready is unknown.",
            unread,
        )
        return _Unready(
            Runtime.KUBERNETES,
            cause,
            Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail="not readable"),
            f"{kind} {wname} could not be read (forbidden)",
            "Grant get/list on it in the namespace (see the kube-forbidden finding) and rerun the audit.",
            (commands.kubectl_for(snapshot, profile, "auth", "can-i", "list", f"{kind.lower()}s"),),
        )
    if not placement.workloads:
        cause = _cause(
            CrashCategory.CONFIGURATION,
            "workload-missing",
            f"{kind} {wname} does not exist in the namespace.",
            [f"no {kind} {wname} in namespace {snapshot.kubernetes.namespace if snapshot.kubernetes else '?'}"],
        )
        return _Unready(
            Runtime.KUBERNETES,
            cause,
            Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail="missing"),
            f"{kind} {wname} does not exist",
            "Apply its manifests (stackwarden never creates workloads).",
            (commands.kubectl_for(snapshot, profile, "get", "deployments,statefulsets"),),
        )
    workload = live[0] if live else placement.workloads[0]
    where = f"{workload.kind} {workload.name} ({workload.ready_replicas}/{workload.replicas} ready)"
    if not live:
        replicas = spec.replicas if spec else 1
        scale = commands.kubectl_for(snapshot, profile, "scale", ref, f"--replicas={replicas}")
        cause = _cause(CrashCategory.CONFIGURATION, "scaled-to-zero", f"{kind} {wname} is scaled to 0.", [where])
        return _Unready(
            Runtime.KUBERNETES,
            cause,
            Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail="0 replicas"),
            f"{kind} {wname} is scaled to 0",
            f"Scale it up: `{scale}`.",
            (scale,),
        )
    if (
        not placement.pods
        and snapshot.kubernetes is not None
        and any(f.startswith("list pods") for f in snapshot.kubernetes.forbidden)
    ):
        cause = _cause(
            CrashCategory.UNKNOWN,
            "pods-not-readable",
            f"{kind} {wname} has no ready replica and its pods could not be read (forbidden), so why is unknown.",
            [where, *(f for f in snapshot.kubernetes.forbidden if f.startswith("list pods"))],
        )
        return _Unready(
            Runtime.KUBERNETES,
            cause,
            Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail=where),
            f"{where}; its pods could not be read",
            "Grant list on pods in the namespace (see the kube-forbidden finding) and rerun the audit.",
            (describe,),
        )
    if not placement.pods:
        events = [
            f"{e.kind} {e.name}: {e.reason}: {e.message}"
            for e in (snapshot.kubernetes.events if snapshot.kubernetes else ())
            if e.kind in {"ReplicaSet", "StatefulSet"} and e.name.startswith(wname) and e.type == "Warning"
        ]
        cause = _cause(
            CrashCategory.CONFIGURATION if events else CrashCategory.UNKNOWN,
            "no-pods",
            f"{kind} {wname} wants {workload.replicas} replica(s) but no pod exists.",
            [where, *events[-3:]],
        )
        return _Unready(
            Runtime.KUBERNETES,
            cause,
            Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail="no pods"),
            f"{where}: no pod exists",
            "Read the workload's events for why no pod is created (quota, admission, a missing service account).",
            (describe,),
        )
    causes = [(_pod_cause(snapshot, p), p) for p in placement.pods if not p.ready]
    rank = {CrashCategory.CONFIGURATION: 0, CrashCategory.RESOURCES: 1, CrashCategory.UNKNOWN: 2}
    (cause, advice), pod = min(causes, key=lambda item: rank.get(item[0][0].category, 3))
    same = sum(1 for (c, _), _ in causes if c.signature == cause.signature)
    quoted = [event_line(e) for e in service_warnings(snapshot, profile, name, placement.pods)]
    quoted += _evictions(snapshot, wname)
    extra = [
        line for line in dict.fromkeys(quoted) if not any(line.endswith(e) or e.endswith(line) for e in cause.evidence)
    ]
    if extra:
        cause = cause.model_copy(update={"evidence": (*cause.evidence, *extra[-4:])})
    gaps = [g for p in placement.pods for g in p.unobserved]
    if gaps:
        cause = cause.model_copy(update={"evidence": (*cause.evidence, *(f"not observed: {g}" for g in gaps))})
    pod_describe = commands.kubectl_for(snapshot, profile, "describe", "pod", pod.name)
    return _Unready(
        Runtime.KUBERNETES,
        cause,
        Location(runtime=Runtime.KUBERNETES, kind="workload", name=f"{kind} {wname}", detail=where),
        f"{where}: {same} of {len(placement.pods)} pod(s) {cause.signature}",
        advice,
        (pod_describe, describe),
    )


def _evictions(snapshot: Snapshot, workload: str) -> list[str]:
    """Evicted and NodeNotReady events of the workload's earlier pods (an evicted pod is Failed and
    no longer counts, but why it went is why the replicas are short)."""
    kube = snapshot.kubernetes
    if kube is None:
        return []
    return [
        event_line(e)
        for e in kube.events
        if e.type == "Warning" and e.kind == "Pod" and e.name.startswith(f"{workload}-") and e.reason in {"Evicted"}
    ][-2:]


def _host_unready(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> _Unready:
    name = placement.service
    matcher = profile.services[name].host
    names = ", ".join(matcher.executables) if matcher else "?"
    ports = profile.services[name].ports
    passed = [f"PID {p.pid} is not taken for {name}: {why}" for p, why in placement.passed_over]
    cause = _cause(
        CrashCategory.UNKNOWN,
        "no-process",
        f"No host process of {name} ({names}) "
        + (f"listens on {', '.join(map(str, ports))}." if ports else "runs.")
        + (f" {len(passed)} process(es) answer to the name but are not the service." if passed else ""),
        [f"no process named {names}", *passed],
    )
    start = " ".join(matcher.start_command) if matcher and matcher.start_command else ""
    unit = matcher.systemd_unit if matcher else None
    cmd = f"systemctl start {unit}" if unit else start
    return _Unready(
        Runtime.HOST,
        cause,
        Location(runtime=Runtime.HOST, kind="process", name=names, detail="not running"),
        f"no host process of {name} runs",
        f"Start it: `{cmd}`." if cmd else "Start it on the host.",
        (cmd,) if cmd else (),
    )


def _move_instead(
    snapshot: Snapshot, profile: Profile, placement: ServicePlacement, unready: _Unready, served: list[Runtime]
) -> _Unready:
    """The service runs elsewhere: starting it here too would fight over its ports or double
    it. When its instance here exists (a container to start, a workload to scale), the commands
    move it: stop it there first, then start it here. Otherwise nothing here is known to start
    reliably (a compose service without a container may not be in the compose file), so the
    advice is the switch, which verifies and rolls back, and no command that could leave the
    service without an owner."""
    runtime, name = unready.runtime, placement.service
    exists = (
        any(is_service_container(profile, name, c) for c in snapshot.containers)
        if runtime is Runtime.COMPOSE
        else bool(placement.workloads)
        if runtime is Runtime.KUBERNETES
        else False
    )
    where = ", ".join(served)
    if exists and start_command(snapshot, profile, placement, runtime):
        return replace(
            unready,
            recommendation=f"{unready.recommendation} It runs under {where} now: the commands stop it there "
            f"first so the two never hold it at once (or run stackwarden switch {profile.default_mode}).",
            commands=tuple(converge_commands(snapshot, profile, placement, runtime)),
        )
    return replace(
        unready,
        recommendation=f"It runs under {where} now. Move it with `stackwarden switch {profile.default_mode}` "
        "(it verifies the result and rolls back); starting a second copy here would fight over it.",
        commands=(),
    )


_EXPLAIN = {Runtime.COMPOSE: _compose_unready, Runtime.KUBERNETES: _kube_unready, Runtime.HOST: _host_unready}


def _severity(profile: Profile, service: str, served_elsewhere: bool) -> Severity:
    """Down everywhere: high (medium for a non-core group such as monitoring); still served by
    another runtime: medium. Never lower: "no conflicts" must not be printed over it."""
    if served_elsewhere:
        return Severity.MEDIUM
    return Severity.HIGH if profile.services[service].group == "core" else Severity.MEDIUM


@rule("service-unavailable")
def service_unavailable(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding per service and runtime that should run it but has no ready instance."""
    view = stack_view(snapshot, profile)
    for service, placement in view.placements.items():
        expected = _expected(snapshot, profile, placement)
        ready = [r for r in expected if ready_in(placement, r)]
        for runtime in expected:
            if runtime in ready or _reported_elsewhere(view, placement, runtime):
                continue
            unready = _EXPLAIN[runtime](snapshot, profile, placement)
            served = [r for r in (Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST) if ready_in(placement, r)]
            elsewhere = f" It is served by {', '.join(served)} meanwhile." if served else ""
            if served and runtime is home_runtime(profile, service):
                unready = _move_instead(snapshot, profile, placement, unready, served)
            if not served:
                unready = _unseen_elsewhere(snapshot, profile, service, unready)
            # unread is not down: say that readiness is unknown rather than claim it is absent
            blind = unready.cause.signature == "workload-not-readable"
            yield Finding(
                id=f"service-unavailable:{service}:{runtime}",
                rule="service-unavailable",
                title=f"{service.capitalize()} {'not verified' if blind else 'not ready'} in {runtime}",
                severity=_severity(profile, service, bool(served)),
                services=(service,),
                runtimes=(runtime,),
                summary=f"{service} {'could not be verified' if blind else 'has no ready instance'} in {runtime}: "
                f"{unready.summary}. "
                f"Cause: {unready.cause.explanation}{elsewhere}",
                evidence=unready.cause.evidence,
                locations=(unready.location,),
                recommendation=unready.recommendation,
                action=f"Make {service} ready in {runtime}",
                commands=unready.commands,
                cause=unready.cause,
                condition=_condition(unready, service),
                gaps=_gaps(placement, runtime),
            )


def _gaps(placement: ServicePlacement, runtime: Runtime) -> tuple[str, ...]:
    """What of the service's objects in ``runtime`` could not be read (a log read that failed)."""
    if runtime is Runtime.KUBERNETES:
        return tuple(g for p in placement.pods for g in p.unobserved)
    if runtime is Runtime.COMPOSE:
        return tuple(g for c in placement.containers for g in c.unobserved)
    return ()


_SEEN_KINDS = frozenset({"*", "containers", "pods", "deployments", "statefulsets"})


def _unseen_elsewhere(snapshot: Snapshot, profile: Profile, service: str, unready: _Unready) -> _Unready:
    """Where the service also has a home that could not be observed (a cluster that did not
    answer), it may be running there: the finding says so and gives no command that would start a
    second copy here. Not seen is never absent."""
    unseen = [
        gap
        for runtime in (Runtime.COMPOSE, Runtime.KUBERNETES)
        if runtime is not unready.runtime and profile.has_home(service, runtime)
        for gap in snapshot.gaps(runtime, _SEEN_KINDS)
    ]
    if not unseen:
        return unready
    where = "; ".join(f"{g.runtime} {g.kind} {g.state} ({g.reason})" for g in unseen)
    keep = tuple(c for c in unready.commands if " logs " in f" {c} " or " describe " in f" {c} ")
    return replace(
        unready,
        recommendation=f"{unready.recommendation} But {service} may run where it was not seen ({where}): make that "
        "runtime observable and audit again before starting a copy here.",
        commands=keep,
    )


_CONDITIONS = {
    "scaled-to-zero": "is scaled to 0",
    "workload-missing": "has no workload in the namespace",
    "workload-not-readable": "could not be read",
    "pods-not-readable": "has no ready pod (its pods could not be read)",
    "no-pods": "has no pods",
    "Unschedulable": "cannot be scheduled",
    "ImagePullBackOff": "cannot pull its image",
    "ErrImagePull": "cannot pull its image",
    "InvalidImageName": "has an invalid image name",
    "CreateContainerConfigError": "cannot create its container (a missing ConfigMap or Secret key)",
    "OOMKilled": "is OOM-killed",
    "readiness-probe-failed": "fails its readiness probe",
    "FailedMount": "cannot mount a volume",
    "FailedAttachVolume": "cannot attach a volume",
    "FailedCreatePodSandBox": "cannot get a pod sandbox",
    "NodeNotReady": "runs on a node that is not ready",
    "init-waiting": "is stuck in an init container",
    "unhealthy": "is unhealthy",
    "no-process": "is not running on the host",
    "engine-error": "could not be started by the engine",
}


def _condition(unready: _Unready, service: str) -> str:
    """The service's state in a few words, as a chain quotes it ("orders-db is scaled to 0")."""
    signature = unready.cause.signature
    if signature == "no-container":
        return unready.summary.removeprefix(f"{service} ")
    if signature in _CONDITIONS:
        return _CONDITIONS[signature]
    if unready.runtime is Runtime.COMPOSE and unready.location.kind == "container":
        died = unready.cause.explanation.startswith("The container died")
        return f"died ({unready.location.detail})" if died else f"is stopped ({unready.location.detail})"
    return f"has no ready instance in {unready.runtime} ({signature})"


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service_state(snapshot: Snapshot, name: str) -> KubeServiceState | None:
    kube = snapshot.kubernetes
    return next((s for s in kube.services if s.name == name), None) if kube else None


@rule("service-selector-unmatched")
def service_selector_unmatched(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High: the profile's Service selects no pod while the workload has pods, so its
    Endpoints are empty and every client of the Service is refused."""
    if not snapshot.reachable(Runtime.KUBERNETES) or snapshot.kubernetes is None:
        return
    kube = snapshot.kubernetes
    view = stack_view(snapshot, profile)
    for service, spec in profile.services.items():
        if spec.kubernetes is None or spec.kubernetes.service is None:
            continue
        svc = _service_state(snapshot, spec.kubernetes.service)
        placement = view.placements[service]
        if svc is None or not svc.selector or not placement.pods:
            continue
        live = [p for p in kube.pods if p.phase not in {"Succeeded", "Failed"}]
        if any(_selects(svc.selector, p.labels) for p in live):
            continue
        endpoints = next((e for e in kube.endpoints if e.name == svc.name), None)
        workload = placement.workloads[0]
        wanted = workload.selector
        selector_text = ",".join(f"{k}={v}" for k, v in sorted(svc.selector.items()))
        pod_labels = ",".join(f"{k}={v}" for k, v in sorted(placement.pods[0].labels.items()))
        patch = json.dumps({"spec": {"selector": wanted}}, separators=(",", ":"), sort_keys=True)
        fix = commands.kubectl_for(snapshot, profile, "patch", "service", svc.name, "--type=merge", "-p", patch)
        yield Finding(
            id=f"service-selector-unmatched:{svc.name}",
            rule="service-selector-unmatched",
            title=f"Service {svc.name} selects no pod",
            severity=Severity.HIGH,
            services=(service,),
            runtimes=(Runtime.KUBERNETES,),
            summary=(
                f"Service {svc.namespace}/{svc.name} selects {selector_text}, but no pod has those labels; "
                f"the pods of {workload.kind} {workload.name} are labelled {pod_labels}. Its Endpoints are "
                "empty, so every connection to the Service is refused."
            ),
            evidence=(
                f"Service {svc.name} selector: {selector_text}",
                f"pod {placement.pods[0].name} labels: {pod_labels}",
                f"Endpoints {svc.name}: "
                + (f"{endpoints.ready} ready, {endpoints.not_ready} not ready" if endpoints else "none"),
            ),
            locations=(
                Location(runtime=Runtime.KUBERNETES, kind="service", name=f"{svc.namespace}/{svc.name}", detail=""),
            ),
            recommendation=(
                f"Point the Service at the workload's pods (selector {json.dumps(wanted, sort_keys=True)}), "
                "or fix the pod template's labels."
            ),
            action="Fix the Service selector",
            commands=(commands.kubectl_for(snapshot, profile, "get", "endpoints", svc.name), fix),
            cause=_cause(
                CrashCategory.CONFIGURATION,
                "selector-matches-no-pod",
                "The Service's selector matches no pod, so it has no endpoints.",
                [f"Service {svc.name} selector {selector_text}; pods labelled {pod_labels}"],
            ),
            condition="has a Service that selects no pod",
        )
