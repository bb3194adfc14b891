"""The live view's state: each runtime's part of a snapshot, changed by what its watch reports.

A watch reports *changes* (``ContainerSeen``, ``KubeObjectSeen``, ``HostSeen`` ...): each
carries what the audit's own converters made of the object, so the snapshot assembled here is
the one a whole observation would give. A runtime whose watch is lost is in a ``Gap``: its part
is reported as not observed (the audit's ``runtime-unreachable``), never as empty, until a
complete relist ends the gap.

Times matter twice: a container or pod up for less than ``RECENT_START_SECONDS`` may be between
two crashes, so its uptime is advanced to the snapshot's time, and ``next_deadline`` tells the
loop when such an object crosses the line without any event saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

from stackwarden.model.base import Runtime
from stackwarden.model.snapshot import (
    RECENT_START_SECONDS,
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
)
from stackwarden.observe import assemble_snapshot, kube_observation, sorted_containers, unreachable

KubeKind = Literal["deployments", "statefulsets", "pods", "services", "events", "endpoints"]
KUBE_KINDS: tuple[KubeKind, ...] = ("deployments", "statefulsets", "pods", "services", "events", "endpoints")
KubeObject = KubeWorkloadState | PodState | KubeServiceState | KubeEvent | KubeEndpoints
Timed = TypeVar("Timed", Container, PodState)


@dataclass(frozen=True)
class Gap:
    """A runtime the live view cannot vouch for since ``since``: its watch was lost."""

    since: datetime
    reason: str


# ---------------------------------------------------------------- changes a watch reports


@dataclass(frozen=True)
class DockerSeen:
    """The whole engine, listed again (start, or reconnect after a lost stream): ends a gap."""

    status: RuntimeStatus
    containers: tuple[Container, ...]
    networks: tuple[DockerNetwork, ...]
    at: datetime


@dataclass(frozen=True)
class ContainerSeen:
    """One container described again after an event named it."""

    container: Container
    at: datetime


@dataclass(frozen=True)
class ContainerGone:
    """A container the engine destroyed (or no longer lists)."""

    container_id: str
    at: datetime


@dataclass(frozen=True)
class NetworksSeen:
    """The engine's networks, listed again after a network event."""

    networks: tuple[DockerNetwork, ...]
    at: datetime


@dataclass(frozen=True)
class HostSeen:
    """The host's sockets on the profile ports and the processes behind them, re-read."""

    status: RuntimeStatus
    listeners: tuple[Listener, ...]
    processes: tuple[ProcessInfo, ...]
    health: tuple[HealthResult, ...]
    at: datetime
    context: HostContext | None = None


@dataclass(frozen=True)
class KubeList:
    """One kind, listed whole: its objects by name, its coverage, what was forbidden, and (pods)
    the log reads that failed, per pod."""

    objects: Mapping[str, KubeObject]
    coverage: Coverage
    forbidden: str | None = None
    log_gaps: Mapping[str, tuple[Coverage, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeSeen:
    """The cluster side listed again, every kind (start, or reconnect): ends a gap."""

    status: RuntimeStatus
    context: KubeContext | None
    contexts: tuple[KubeContext, ...]
    namespace: str
    lists: Mapping[KubeKind, KubeList]
    logs_forbidden: str | None
    at: datetime


@dataclass(frozen=True)
class KubeListed:
    """One kind listed again (its watch's resourceVersion was too old: 410 Gone)."""

    kind: KubeKind
    listing: KubeList
    at: datetime


@dataclass(frozen=True)
class KubeObjectSeen:
    """One object added or modified, from a watch event (a pod: with its log reads that failed)."""

    kind: KubeKind
    name: str
    obj: KubeObject
    at: datetime
    log_gaps: tuple[Coverage, ...] = ()


@dataclass(frozen=True)
class KubeObjectGone:
    """One object deleted, from a watch event."""

    kind: KubeKind
    name: str
    at: datetime


@dataclass(frozen=True)
class LogsForbidden:
    """Whether reading pods' previous logs is forbidden (``get pods/log in NS``) or allowed again."""

    forbidden: str | None
    at: datetime


@dataclass(frozen=True)
class Heard:
    """The runtime's stream is alive (a bookmark, a ping): the view is current as of ``at``."""

    runtime: Runtime
    at: datetime


@dataclass(frozen=True)
class Lost:
    """The runtime's watch is lost: a gap begins (kept from the first loss until a relist)."""

    runtime: Runtime
    reason: str
    at: datetime
    endpoint: str | None = None


Change = (
    DockerSeen
    | ContainerSeen
    | ContainerGone
    | NetworksSeen
    | HostSeen
    | KubeSeen
    | KubeListed
    | KubeObjectSeen
    | KubeObjectGone
    | LogsForbidden
    | Heard
    | Lost
)


# ---------------------------------------------------------------- per-runtime parts


@dataclass
class Side:
    """What every runtime's part has: its status once seen, a gap, when it was last heard from."""

    status: RuntimeStatus | None = None
    gap: Gap | None = None
    heard_at: datetime | None = None
    endpoint: str | None = None

    @property
    def seen(self) -> bool:
        """Observed at least once, or known to be lost (either way the snapshot can say it)."""
        return self.status is not None or self.gap is not None

    def lose(self, change: Lost) -> None:
        if self.gap is None:
            self.gap = Gap(since=change.at, reason=change.reason)
        self.endpoint = change.endpoint or self.endpoint or (self.status.endpoint if self.status else None)


@dataclass
class DockerSide(Side):
    containers: dict[str, Container] = field(default_factory=dict)
    seen_at: dict[str, datetime] = field(default_factory=dict)
    networks: tuple[DockerNetwork, ...] = ()


@dataclass
class HostSide(Side):
    listeners: tuple[Listener, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()
    health: tuple[HealthResult, ...] = ()
    context: HostContext | None = None


@dataclass
class KubeSide(Side):
    context: KubeContext | None = None
    contexts: tuple[KubeContext, ...] = ()
    namespace: str = ""
    objects: dict[KubeKind, dict[str, KubeObject]] = field(default_factory=dict)
    coverage: dict[KubeKind, Coverage] = field(default_factory=dict)
    forbidden: dict[KubeKind, str] = field(default_factory=dict)
    logs_forbidden: str | None = None
    seen_at: dict[str, datetime] = field(default_factory=dict)
    log_gaps: dict[str, tuple[Coverage, ...]] = field(default_factory=dict)

    def put(self, kind: KubeKind, listing: KubeList, at: datetime) -> None:
        self.objects[kind] = dict(listing.objects)
        self.coverage[kind] = listing.coverage
        if listing.forbidden:
            self.forbidden[kind] = listing.forbidden
        else:
            self.forbidden.pop(kind, None)
        if kind == "pods":
            self.seen_at = dict.fromkeys(listing.objects, at)
            self.log_gaps = {name: gaps for name, gaps in listing.log_gaps.items() if gaps}


@dataclass(frozen=True)
class Concern:
    """What of the engine can concern a profile: its compose projects and its ports. A container
    of another project that publishes (or asked to publish) none of the ports and shares no
    network with the profile's containers changes no finding: the rules read such a container
    only as a port's owner, a failed publisher of a port, or a neighbour on a network. Empty:
    everything concerns it."""

    projects: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()


class LiveState:
    """Every runtime's part for one profile; ``apply`` a change, take a ``snapshot``."""

    def __init__(self, profile: str, hostname: str, *, kubernetes: bool, concern: Concern | None = None) -> None:
        self.profile = profile
        self.hostname = hostname
        self.concern = concern or Concern()
        self.docker = DockerSide()
        self.host = HostSide()
        self.kube: KubeSide | None = KubeSide() if kubernetes else None

    def side(self, runtime: Runtime) -> Side | None:
        """The part of ``runtime`` (None: the profile has no cluster side)."""
        return {Runtime.COMPOSE: self.docker, Runtime.HOST: self.host, Runtime.KUBERNETES: self.kube}[runtime]

    @property
    def complete(self) -> bool:
        """Every runtime has been observed (or is known lost): a snapshot now says everything."""
        return all(s.seen for s in (self.docker, self.host, self.kube) if s is not None)

    def gaps(self) -> dict[Runtime, Gap]:
        """The runtimes the view cannot vouch for now, and since when."""
        sides = ((Runtime.COMPOSE, self.docker), (Runtime.HOST, self.host), (Runtime.KUBERNETES, self.kube))
        return {runtime: s.gap for runtime, s in sides if s is not None and s.gap is not None}

    def concerns(self, container: Container | None) -> bool:
        """Whether ``container`` (None: unknown) can change what the profile's diagnosis says."""
        if container is None or not (self.concern.projects or self.concern.ports):
            return True
        if container.compose_project in self.concern.projects:
            return True
        if any(p.host_port in self.concern.ports for p in (*container.published, *container.declared)):
            return True
        ours = {
            n for c in self.docker.containers.values() if c.compose_project in self.concern.projects for n in c.networks
        }
        return bool(ours & set(container.networks))

    def matters(self, change: Change) -> bool:
        """Whether ``change``, before it is applied, can change the profile's diagnosis: a
        container that concerns it (before or after the change), a different set of networks,
        anything of the host and the cluster, a loss or a relist. A ``Heard`` never does, nor
        does the engine's business with containers that do not concern the profile (on a shared
        engine, other projects' containers come and go all day: the snapshot keeps them current,
        but they are not worth a diagnosis)."""
        match change:
            case Heard():
                return False
            case ContainerSeen():
                before = self.docker.containers.get(change.container.id)
                return self.concerns(change.container) or (before is not None and self.concerns(before))
            case ContainerGone():
                return self.concerns(self.docker.containers.get(change.container_id))
            case NetworksSeen():
                return self._networks_of_interest(change.networks) != self._networks_of_interest(self.docker.networks)
        return True

    def _networks_of_interest(self, networks: tuple[DockerNetwork, ...]) -> set[tuple[str, str | None]]:
        """The profile's own networks and those no compose project owns (a local cluster's, made
        by kind or minikube): another project's networks come and go with that project."""
        mine = self.concern.projects
        return {
            (n.name, n.compose_project)
            for n in networks
            if not mine or n.compose_project in mine or not n.compose_project
        }

    def apply(self, change: Change) -> None:
        """Fold one change into the state."""
        match change:
            case DockerSeen() | ContainerSeen() | ContainerGone() | NetworksSeen():
                self._docker(change)
            case KubeSeen() | KubeListed() | KubeObjectSeen() | KubeObjectGone() | LogsForbidden():
                if self.kube is not None:
                    self._kube(self.kube, change)
            case HostSeen():
                h = self.host
                h.status, h.gap, h.heard_at = change.status, None, change.at
                h.listeners, h.processes, h.health = change.listeners, change.processes, change.health
                h.context = change.context
            case Heard():
                side = self.side(change.runtime)
                if side is not None and side.gap is None:
                    side.heard_at = change.at
            case Lost():
                side = self.side(change.runtime)
                if side is not None:
                    side.lose(change)

    def _docker(self, change: DockerSeen | ContainerSeen | ContainerGone | NetworksSeen) -> None:
        d = self.docker
        d.heard_at = change.at
        match change:
            case DockerSeen():
                d.status, d.gap = change.status, None
                d.containers = {c.id: c for c in change.containers}
                d.seen_at = dict.fromkeys(d.containers, change.at)
                d.networks = change.networks
            case ContainerSeen():
                d.containers[change.container.id] = change.container
                d.seen_at[change.container.id] = change.at
            case ContainerGone():
                d.containers.pop(change.container_id, None)
                d.seen_at.pop(change.container_id, None)
            case NetworksSeen():
                d.networks = change.networks

    def _kube(
        self, k: KubeSide, change: KubeSeen | KubeListed | KubeObjectSeen | KubeObjectGone | LogsForbidden
    ) -> None:
        match change:
            case KubeSeen():
                self._kube_seen(k, change)
            case KubeListed():
                k.put(change.kind, change.listing, change.at)
            case KubeObjectSeen():
                k.objects.setdefault(change.kind, {})[change.name] = change.obj
                if change.kind == "pods":
                    k.seen_at[change.name] = change.at
                    if change.log_gaps:
                        k.log_gaps[change.name] = change.log_gaps
                    else:
                        k.log_gaps.pop(change.name, None)
            case KubeObjectGone():
                k.objects.setdefault(change.kind, {}).pop(change.name, None)
                if change.kind == "pods":
                    k.seen_at.pop(change.name, None)
                    k.log_gaps.pop(change.name, None)
            case LogsForbidden():
                k.logs_forbidden = change.forbidden
        k.heard_at = change.at

    @staticmethod
    def _kube_seen(k: KubeSide, change: KubeSeen) -> None:
        k.status, k.gap, k.heard_at = change.status, None, change.at
        k.context, k.contexts, k.namespace = change.context, change.contexts, change.namespace
        k.objects, k.coverage, k.forbidden = {}, {}, {}
        for kind, listing in change.lists.items():
            k.put(kind, listing, change.at)
        k.logs_forbidden = change.logs_forbidden

    # ---------------------------------------------------------------- the snapshot

    def snapshot(self, now: datetime) -> Snapshot:
        """The snapshot a whole observation at ``now`` would give, from the parts: a runtime in
        a gap (or never seen) is unreachable with the reason, the rest as last seen."""
        runtimes: list[RuntimeStatus] = []
        kwargs: dict[str, object] = {}
        if self.kube is not None:
            runtimes.append(self._status(Runtime.KUBERNETES, self.kube))
            if runtimes[-1].reachable:
                kwargs["kubernetes"] = self._kube_observation(self.kube, now)
        runtimes.append(self._status(Runtime.COMPOSE, self.docker))
        if runtimes[-1].reachable:
            containers = (_advanced(c, self.docker.seen_at.get(c.id), now) for c in self.docker.containers.values())
            kwargs.update(containers=sorted_containers(containers), networks=self.docker.networks)
        runtimes.append(self._status(Runtime.HOST, self.host))
        if runtimes[-1].reachable:
            kwargs.update(
                listeners=self.host.listeners,
                processes=self.host.processes,
                health=self.host.health,
                host_context=self.host.context,
            )
        return assemble_snapshot(
            taken_at=now,
            hostname=self.hostname,
            profile=self.profile,
            runtimes=runtimes,
            **kwargs,  # type: ignore[arg-type]
        )

    @staticmethod
    def _status(runtime: Runtime, side: Side) -> RuntimeStatus:
        if side.gap is not None:
            since = side.gap.since.strftime("%H:%M:%S")
            reason = f"live view: watch lost since {since} ({side.gap.reason}); resuming"
            return unreachable(runtime, reason, side.endpoint)
        if side.status is None:
            return unreachable(runtime, "live view: not observed yet", side.endpoint)
        return side.status

    @staticmethod
    def _kube_observation(k: KubeSide, now: datetime) -> KubeObservation:
        objects = {kind: k.objects.get(kind, {}) for kind in KUBE_KINDS}
        pods = [_advanced(p, k.seen_at.get(p.name), now) for p in _of(objects["pods"], PodState)]
        forbidden = [k.forbidden[kind] for kind in KUBE_KINDS if kind in k.forbidden]
        return kube_observation(
            context=k.context,
            contexts=k.contexts,
            namespace=k.namespace,
            workloads=[
                *_of(objects["deployments"], KubeWorkloadState),
                *_of(objects["statefulsets"], KubeWorkloadState),
            ],
            pods=pods,
            services=_of(objects["services"], KubeServiceState),
            events=_of(objects["events"], KubeEvent),
            endpoints=_of(objects["endpoints"], KubeEndpoints),
            forbidden=[*forbidden, *([k.logs_forbidden] if k.logs_forbidden else [])],
            coverage=[k.coverage[kind] for kind in KUBE_KINDS if kind in k.coverage],
            log_gaps=[gap for name in sorted(k.log_gaps) for gap in k.log_gaps[name]],
        )

    def next_deadline(self, now: datetime) -> datetime | None:
        """When the next object that is up for under ``RECENT_START_SECONDS`` crosses that line
        after ``now`` (a crash loop seen between two crashes stops counting as one without any
        event); lines already crossed are in every snapshot taken since."""
        after = now.timestamp()
        due = [
            crossing
            for objects, seen in self._timed()
            for key, obj in objects.items()
            if obj.uptime_seconds is not None
            and obj.uptime_seconds < RECENT_START_SECONDS
            and (at := seen.get(key)) is not None
            and (crossing := at.timestamp() + RECENT_START_SECONDS - obj.uptime_seconds) > after
        ]
        return datetime.fromtimestamp(min(due), tz=UTC) if due else None

    def _timed(self) -> list[tuple[Mapping[str, Container | PodState], Mapping[str, datetime]]]:
        out: list[tuple[Mapping[str, Container | PodState], Mapping[str, datetime]]] = [
            (self.docker.containers, self.docker.seen_at)
        ]
        if self.kube is not None:
            pods = {n: p for n, p in self.kube.objects.get("pods", {}).items() if isinstance(p, PodState)}
            out.append((pods, self.kube.seen_at))
        return out


K = TypeVar("K", KubeWorkloadState, PodState, KubeServiceState, KubeEvent, KubeEndpoints)


def _of(objects: Mapping[str, KubeObject], kind: type[K]) -> list[K]:
    """The objects of one model type (each kind's map holds only its own)."""
    return [o for o in objects.values() if isinstance(o, kind)]


def _advanced(obj: Timed, seen_at: datetime | None, now: datetime) -> Timed:
    """A container or pod whose recent uptime is advanced from when it was seen to ``now``; one
    up for longer keeps its figure (past the line, the number changes nothing the rules read)."""
    if obj.uptime_seconds is None or obj.uptime_seconds >= RECENT_START_SECONDS or seen_at is None:
        return obj
    elapsed = max(0.0, (now - seen_at).total_seconds())
    return obj.model_copy(update={"uptime_seconds": obj.uptime_seconds + elapsed})
