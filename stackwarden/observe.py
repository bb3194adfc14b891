"""Pure helpers that turn per-runtime observations into one Snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from stackwarden.identity import is_docker_proxy
from stackwarden.model.base import Runtime
from stackwarden.model.snapshot import (
    Container,
    Coverage,
    DockerNetwork,
    HealthResult,
    HostContext,
    KubeContext,
    KubeEndpoints,
    KubeEvent,
    KubeObservation,
    KubeServiceState,
    KubeWorkloadState,
    Listener,
    PodState,
    ProcessInfo,
    RuntimeStatus,
    Snapshot,
    failure_reason,
)

_WILDCARDS = {"0.0.0.0", "::", ""}


def systemd_unit_from_cgroup(text: str) -> str | None:
    """The systemd unit in /proc/PID/cgroup (v1 ``name=systemd`` or v2 ``0::``), if any.

    A service under a unit must be stopped with systemctl, or systemd restarts it at once. Only
    a *system* unit is returned: anything under a user manager (``user@1000.service/...``) is
    the user's own systemd, which ``systemctl stop`` (the system manager) does not run, and a
    directory there can be named like any system service by whoever owns it.
    """
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[1] not in {"", "name=systemd"}:
            continue
        segments = parts[2].split("/")
        if any(seg.startswith("user@") and seg.endswith(".service") for seg in segments):
            return None
        for segment in reversed(segments):
            if segment.endswith(".service"):
                return segment
    return None


def _proxy_target(cmdline: Sequence[str]) -> tuple[str, int, str, int] | None:
    """(host_ip, host_port, container_ip, container_port) from a docker-proxy command line."""
    if not cmdline or not cmdline[0].endswith("docker-proxy"):
        return None
    args = dict(zip(cmdline[1::2], cmdline[2::2], strict=False))
    try:
        return (
            args.get("-host-ip", ""),
            int(args["-host-port"]),
            args.get("-container-ip", ""),
            int(args.get("-container-port", "0")),
        )
    except (KeyError, ValueError):
        return None


def _publisher(listener: Listener, containers: Iterable[Container]) -> Container | None:
    """The container publishing the listener's port on its address, if exactly one does."""
    matches = [
        c
        for c in containers
        for p in c.published
        if p.host_port == listener.port
        and (p.host_ip == listener.address or {p.host_ip, listener.address} <= _WILDCARDS)
    ]
    return matches[0] if len(matches) == 1 else None


def attribute_docker_proxies(
    listeners: Sequence[Listener],
    processes: Sequence[ProcessInfo],
    containers: Sequence[Container],
    context: HostContext | None = None,
) -> tuple[Listener, ...]:
    """Mark docker-proxy listeners with the container they forward to.

    The proxy's command line names the container IP; failing that, the container that publishes
    that address and port. A docker-proxy socket is the container's, not a host process's; only
    a real one (``is_docker_proxy``: root's, or a rootless engine's) speaks for a container.
    """
    by_pid = {p.pid: p for p in processes}
    out = []
    for listener in listeners:
        proc = by_pid.get(listener.pid or -1)
        container: Container | None = None
        if proc is not None and is_docker_proxy(proc, context):
            target = _proxy_target(proc.cmdline)
            if target is not None:
                # only a running container owns its IP: a created or exited one may still list
                # an address that Docker has since given to another container
                container = next((c for c in containers if c.state == "running" and target[2] in c.ip_addresses), None)
            container = container or _publisher(listener, containers)
        out.append(listener.model_copy(update={"container_id": container.id}) if container else listener)
    return tuple(out)


def sorted_containers(containers: Iterable[Container]) -> tuple[Container, ...]:
    """Containers in the order every observation lists them (by name), so two observations of
    the same engine, whole or assembled from events, are equal."""
    return tuple(sorted(containers, key=lambda c: c.name))


def kube_observation(
    *,
    context: KubeContext | None,
    contexts: Iterable[KubeContext],
    namespace: str | None,
    workloads: Iterable[KubeWorkloadState],
    pods: Iterable[PodState],
    services: Iterable[KubeServiceState],
    events: Iterable[KubeEvent],
    endpoints: Iterable[KubeEndpoints],
    forbidden: Iterable[str],
    coverage: Iterable[Coverage],
    log_gaps: Iterable[Coverage] = (),
) -> KubeObservation:
    """The cluster side of a snapshot, each kind in the order every observation lists it, so
    two observations of the same namespace (whole, or kept up to date by watches) are equal. A
    forbidden pods/log read makes the pods' logs partial; ``log_gaps`` are the log reads that
    failed (a hung kubelet), one per pod."""
    denied = tuple(dict.fromkeys(forbidden))
    return KubeObservation(
        context=context,
        contexts=tuple(contexts),
        namespace=namespace,
        workloads=tuple(sorted(workloads, key=lambda w: (w.kind, w.name))),
        pods=tuple(sorted(pods, key=lambda p: p.name)),
        services=tuple(sorted(services, key=lambda s: s.name)),
        events=tuple(sorted(events, key=lambda e: (e.last_seen.timestamp() if e.last_seen else 0.0, e.kind, e.name))),
        endpoints=tuple(sorted(endpoints, key=lambda e: e.name)),
        forbidden=denied,
        coverage=tuple(coverage)
        + tuple(
            Coverage(runtime=Runtime.KUBERNETES, kind="pods/log", state="partial", reason="forbidden", detail=f)
            for f in denied
            if f.startswith("get pods/log")
        )
        + tuple(log_gaps),
    )


def unreachable(runtime: Runtime, error: str, endpoint: str | None = None) -> RuntimeStatus:
    """The record of a runtime that could not be observed (never raised past the flow)."""
    return RuntimeStatus(runtime=runtime, reachable=False, endpoint=endpoint, error=error)


def coverage_of(runtimes: Sequence[RuntimeStatus], kubernetes: KubeObservation | None) -> tuple[Coverage, ...]:
    """The snapshot's coverage: every unreachable runtime is unobserved as a whole ('*'), with
    the reason its error shows; the cluster adds what it recorded per kind (forbidden lists)."""
    out = [
        Coverage(
            runtime=status.runtime,
            kind="*",
            state="unobserved",
            reason=failure_reason(status.error or ""),
            detail=status.error or "",
        )
        for status in runtimes
        if not status.reachable
    ]
    if kubernetes is not None and all(s.reachable for s in runtimes if s.runtime is Runtime.KUBERNETES):
        out += [c for c in kubernetes.coverage if c.state != "complete"]
    return tuple(out)


def assemble_snapshot(
    *,
    taken_at: datetime,
    hostname: str,
    profile: str,
    runtimes: Sequence[RuntimeStatus],
    containers: Sequence[Container] = (),
    networks: Sequence[DockerNetwork] = (),
    listeners: Sequence[Listener] = (),
    processes: Sequence[ProcessInfo] = (),
    kubernetes: KubeObservation | None = None,
    health: Sequence[HealthResult] = (),
    host_context: HostContext | None = None,
) -> Snapshot:
    """One Snapshot from the per-runtime parts, docker-proxy listeners attributed."""
    return Snapshot(
        taken_at=taken_at,
        hostname=hostname,
        profile=profile,
        runtimes=tuple(runtimes),
        containers=tuple(containers),
        networks=tuple(networks),
        listeners=attribute_docker_proxies(listeners, processes, containers, host_context),
        processes=tuple(processes),
        kubernetes=kubernetes,
        health=tuple(health),
        host_context=host_context,
        coverage=coverage_of(runtimes, kubernetes),
    )
