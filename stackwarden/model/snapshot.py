"""What was observed, inert and serialisable.

Adapters convert wire payloads (docker inspect, psutil, Kubernetes objects) into these models at
the boundary; nothing past the adapters sees a raw payload. A runtime that could not be observed
is recorded in ``runtimes`` with the reason, never raised.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

from pydantic import Field

from stackwarden.model.base import Frozen, Runtime

_CLEAN_EXITS = frozenset({0, 130, 143})
"""Exit codes of a container that finished or was stopped by hand (SIGINT, SIGTERM)."""

RECENT_START_SECONDS = 30.0
"""A container up for less than this is not yet known to be healthy."""


CoverageState = Literal["complete", "partial", "unobserved"]
INSPECT_GAP = "inspect of container"
"""How a container's gap line starts when its inspect failed: what only the inspect says (restart
count and policy, stop signal, exit code, declared ports) is missing, so nothing acts on it."""
CoverageReason = Literal["forbidden", "timeout", "error"]


def failure_reason(error: str) -> CoverageReason:
    """Sort an observation failure by what it means for the reader: the identity may not look
    (forbidden), the endpoint did not answer in time (timeout), or anything else (error)."""
    text = error.lower()
    if "forbidden" in text or "403" in text or "permission denied" in text or "accessdenied" in text:
        return "forbidden"
    if "timed out" in text or "timeout" in text:
        return "timeout"
    return "error"


class RuntimeStatus(Frozen):
    """Whether a runtime could be observed, and if not, why."""

    runtime: Runtime
    reachable: bool
    endpoint: str | None = None
    version: str | None = None
    error: str | None = None


class Coverage(Frozen):
    """How much of one kind of object in one runtime was seen. Anything but ``complete`` means
    "not seen", which is never "absent": the planner refuses and verify fails on it."""

    runtime: Runtime
    kind: str = Field(description="What was listed: deployments, pods, services, pods/log, containers, '*' (all).")
    state: CoverageState
    reason: CoverageReason | None = None
    detail: str = ""


class DependencyRef(Frozen):
    """An address a service is configured to reach: a host (and port, when given) from an
    environment variable, a command-line flag, a compose ``depends_on`` or link, or what an init
    container waits for. Only the host and port are kept: a ``DATABASE_URL``'s user and password
    never leave the adapter that read it."""

    host: str
    port: int | None = None
    source: str = Field(description="Where it was declared: 'env DATABASE_URL', '--db-host', 'depends_on', ...")

    @property
    def display(self) -> str:
        """``host:port`` (IPv6 bracketed), or the host alone."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host


class PublishedPort(Frozen):
    """A container port published on the host (``host_ip`` 0.0.0.0 and :: are wildcards)."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"


class ContainerDeath(Frozen):
    """A container's last recorded exit, from Docker's ``die`` events: it survives the restart
    that resets State.ExitCode, so a crash loop caught between two crashes keeps its cause."""

    exit_code: int
    at: datetime


class Container(Frozen):
    """One Docker container. Healthy containers come from the single list call; only the
    unhealthy ones, and those of the profile's stateful services (whose stop signal and restart
    policy decide how they are stopped), are inspected (restart count, exit code, state error,
    declared ports, logs)."""

    id: str
    name: str
    image: str
    state: str
    status: str = ""
    compose_project: str | None = None
    compose_service: str | None = None
    compose_config_files: tuple[str, ...] = ()
    compose_working_dir: str | None = None
    restart_count: int | None = None
    exit_code: int | None = None
    error: str | None = None
    oom_killed: bool = False
    restart_policy: str | None = None
    restart_max_retries: int = Field(default=0, description="MaximumRetryCount of an on-failure policy (inspected).")
    stop_signal: str | None = Field(
        default=None, description="The container's configured stop signal (Config.StopSignal; inspected), if any."
    )
    published: tuple[PublishedPort, ...] = ()
    declared: tuple[PublishedPort, ...] = ()
    networks: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    log_tail: tuple[str, ...] = ()
    inspected: bool = False
    uptime_seconds: float | None = Field(
        default=None, description="Seconds since the container last started (inspected containers)."
    )
    last_death: ContainerDeath | None = None
    health_output: str | None = Field(
        default=None, description="What the last health check printed, with its exit code (inspected containers)."
    )
    depends_on: tuple[str, ...] = Field(
        default=(), description="Compose services it depends on (its com.docker.compose.depends_on label)."
    )
    targets: tuple[DependencyRef, ...] = Field(
        default=(),
        description="Addresses its environment, command line and links name (inspected containers; hosts and "
        "ports only, never the values).",
    )
    unobserved: tuple[str, ...] = Field(
        default=(), description="What of this container could not be read and why (its logs timed out)."
    )
    cluster_node: str | None = Field(
        default=None,
        description="Set when the container is a node of a local Kubernetes cluster (kind, k3d, minikube): "
        "what it publishes belongs to the cluster.",
    )

    @property
    def host_networked(self) -> bool:
        """``network_mode: host``: its 127.0.0.1 is the host's, not its own."""
        return "host" in self.networks

    @property
    def recorded_exit_code(self) -> int | None:
        """The exit code of the last crash: the engine's own when it has one (stopped or
        restarting), else the last ``die`` event's (running again between two crashes)."""
        if self.exit_code is not None:
            return self.exit_code
        return self.last_death.exit_code if self.last_death is not None else None

    @property
    def short_id(self) -> str:
        """The 12-character id the docker CLI prints."""
        return self.id[:12]

    @property
    def is_crash_looping(self) -> bool:
        """Restarting, stopped on a failure after restarts, or up again for only a moment after
        restarts: the seed's "restarting" backend, whichever phase of the loop we catch."""
        restarts = self.restart_count or 0
        if self.state == "restarting":
            return True
        if self.state in {"exited", "dead"}:
            # under "always"/"unless-stopped" Docker restarts every exit; an exited one was stopped by hand
            stopped_by_hand = self.restart_policy in {"always", "unless-stopped"}
            return (self.exit_code or 0) != 0 and restarts > 0 and not stopped_by_hand
        # restarted after a failure: counted by the inspect, or (inspect failed) a failed exit
        # in the engine's recent die events while it is up again
        restarted = restarts > 0 or (
            self.restart_count is None and self.last_death is not None and self.last_death.exit_code not in _CLEAN_EXITS
        )
        return (
            self.state == "running"
            and restarted
            and self.uptime_seconds is not None
            and self.uptime_seconds < RECENT_START_SECONDS
        )

    @property
    def died_failing(self) -> bool:
        """Stopped for good on a failure: exited non-zero (or OOM-killed) without the engine's
        own error. Its logs hold the cause as much as a crash loop's do; a stop by hand
        (SIGTERM 143, SIGINT 130) is not a failure."""
        if self.state not in {"exited", "dead"} or self.failed_to_start:
            return False
        return self.oom_killed or (self.exit_code or 0) not in _CLEAN_EXITS

    @property
    def failed_to_start(self) -> bool:
        """Created or exited with an engine error, e.g. a port publish that could not bind."""
        return bool(self.error) and self.state in {"created", "exited", "dead"}

    @property
    def is_active(self) -> bool:
        """Running or trying to run: it counts as a deployment of its service."""
        return self.state in {"running", "restarting", "paused"} or self.failed_to_start or self.is_crash_looping


class DockerNetwork(Frozen):
    """A Docker network; the compose project label says which project owns it."""

    id: str
    name: str
    driver: str
    compose_project: str | None = None
    internal: bool = False


class ProcessInfo(Frozen):
    """A host process. ``pid`` + ``create_time`` + ``exe`` is its identity (PIDs are reused);
    ``exe``, ``uids`` and ``mount_namespace`` decide which service it is (stackwarden.identity)."""

    pid: int
    create_time: float
    name: str
    exe: str | None = None
    cmdline: tuple[str, ...] = ()
    user: str | None = None
    uid: int | None = Field(default=None, description="Real user id (a rollback restarts it as this user).")
    gid: int | None = Field(default=None, description="Real group id.")
    uids: tuple[int, ...] = Field(
        default=(), description="Real, effective and saved user ids; empty when they could not be read."
    )
    mount_namespace: str | None = Field(
        default=None,
        description="``mnt:[N]`` of /proc/PID/ns/mnt: a container's process has its own, where its exe path "
        "names another file. None when it could not be read.",
    )
    systemd_unit: str | None = None
    ppid: int | None = None

    @property
    def exe_basename(self) -> str:
        """The resolved executable's base name (``/proc/PID/exe``; symlinks are followed)."""
        return self.exe.rsplit("/", 1)[-1] if self.exe else self.name

    @property
    def names(self) -> frozenset[str]:
        """Every name the process answers to: comm, argv[0] and the resolved executable's.

        These are claims, not identity: comm and argv[0] are whatever its starter chose
        (``exec -a postgres sleep``). They say which service a process pretends to be, so that a
        report can say why it was not taken for it; the executable file and owner decide.
        """
        argv0 = self.cmdline[0].split(" ", 1)[0].rsplit("/", 1)[-1] if self.cmdline else ""
        return frozenset(n for n in (self.name, argv0, self.exe_basename) if n)

    @property
    def owner(self) -> str:
        """Who it runs as, for messages: ``nobody``, else ``uid 1234``, else ``an unknown user``."""
        if self.user and not self.user.isdigit():
            return self.user
        uid = self.uid if self.uid is not None else (self.uids[0] if self.uids else None)
        return f"uid {uid}" if uid is not None else "an unknown user"


class HostContext(Frozen):
    """Who observed the host and where the profile's executables are installed on it: what a
    process's identity is judged against (stackwarden.identity)."""

    uid: int = Field(description="The effective uid stackwarden observed (and acts) as.")
    user: str | None = None
    mount_namespace: str | None = Field(default=None, description="stackwarden's own mount namespace.")
    executables: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Each executable name and path the profile gives -> the files it resolves to here (a name "
        "through the system's bin directories, a path through its symlinks); empty when not installed.",
    )

    @property
    def runner(self) -> str:
        """stackwarden's own user, for messages."""
        return self.user or f"uid {self.uid}"


class Listener(Frozen):
    """A listening TCP socket on this host. 0.0.0.0, 127.0.0.1, :: and ::1 are distinct
    listeners: IPv4 and IPv6 sockets on one port can belong to different owners."""

    address: str
    port: int
    pid: int | None = None
    container_id: str | None = Field(
        default=None, description="Set when the socket is a docker-proxy forwarding to a container."
    )
    no_reply: str | None = Field(
        default=None,
        description="For a docker-proxy: how a connection through it failed (accepted, then closed at "
        "once: nothing listens behind it in the container). None when it stayed open or was not probed.",
    )

    @property
    def family(self) -> Literal["ipv4", "ipv6"]:
        """The address family, which decides which clients reach this listener."""
        return "ipv6" if ipaddress.ip_address(self.address).version == 6 else "ipv4"

    @property
    def is_wildcard(self) -> bool:
        """0.0.0.0 or ::, reachable on every address of its family."""
        return ipaddress.ip_address(self.address).is_unspecified

    @property
    def display(self) -> str:
        """``addr:port`` with IPv6 bracketed, as ss and lsof print it."""
        return f"[{self.address}]:{self.port}" if self.family == "ipv6" else f"{self.address}:{self.port}"


class KubeContext(Frozen):
    """A kubeconfig context, and whether the profile allows remediation in it."""

    name: str
    cluster: str | None = None
    server: str | None = None
    namespace: str | None = None
    flavour: Literal["minikube", "kind", "docker-desktop", "other"] = "other"
    current: bool = False
    allowed: bool = False


class KubeWorkloadState(Frozen):
    """A Deployment or StatefulSet: desired versus ready replicas and its identity."""

    kind: Literal["Deployment", "StatefulSet"]
    name: str
    namespace: str
    uid: str
    resource_version: str
    generation: int = Field(default=0, description="The spec's version; unlike resourceVersion, status writes keep it.")
    replicas: int
    ready_replicas: int = 0
    selector: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodCondition(Frozen):
    """A pod condition as the kubelet or scheduler wrote it (``PodScheduled=False`` with
    reason ``Unschedulable`` and the scheduler's message, ``Ready=False`` ...)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class KubeContainerPort(Frozen):
    """A port a pod's container declares (``containerPort``, with its name if it has one): what a
    Service's ``targetPort`` must name or number."""

    port: int
    name: str | None = None
    protocol: str = "TCP"


class KubeContainer(Frozen):
    """One container of a pod, app or init, as its status and spec say: state, restarts, the last
    termination, the ports it declares and the addresses its env and args name. Init containers
    run one after the other before the app containers: one that fails or never ends holds the pod
    in ``Init:`` (its app containers only say ``PodInitializing``)."""

    name: str
    init: bool = False
    image: str = ""
    ready: bool = False
    restart_count: int = 0
    state: Literal["waiting", "running", "terminated", "unknown"] = "unknown"
    reason: str | None = Field(default=None, description="The waiting or terminated reason of its current state.")
    message: str | None = None
    exit_code: int | None = Field(default=None, description="The exit code of its current, terminated state.")
    last_exit_code: int | None = None
    last_reason: str | None = None
    last_message: str | None = None
    uptime_seconds: float | None = Field(default=None, description="Seconds since it last started, if it runs.")
    ports: tuple[KubeContainerPort, ...] = ()
    targets: tuple[DependencyRef, ...] = ()

    @property
    def completed(self) -> bool:
        """Terminated with exit code 0: for an init container, done."""
        return self.state == "terminated" and self.exit_code == 0

    @property
    def is_crash_looping(self) -> bool:
        """Waiting in CrashLoopBackOff, or restarted after a failure and not ready (an init
        container is never ready until it completes)."""
        if self.reason == "CrashLoopBackOff":
            return True
        failed_before = self.restart_count > 0 and (self.last_exit_code or 0) != 0
        just_restarted = self.uptime_seconds is not None and self.uptime_seconds < RECENT_START_SECONDS
        return failed_before and (not self.ready or just_restarted) and not self.completed

    @property
    def recorded_exit_code(self) -> int | None:
        """The exit code of its last failure: the last termination's, else the current one's."""
        return self.last_exit_code if self.last_exit_code is not None else self.exit_code


class PodState(Frozen):
    """One pod: phase, the waiting reason of its worst container, restarts, last exit code,
    and the runtime's own words for why it is not ready (waiting message, conditions).

    ``containers`` and ``init_containers`` hold every container's own status; the flat fields
    above them describe the app containers as a whole (the worst one), as ``kubectl get pods``
    does."""

    name: str
    namespace: str
    uid: str
    phase: str
    labels: dict[str, str] = Field(default_factory=dict)
    node: str | None = None
    ready: bool = False
    waiting_reason: str | None = None
    restart_count: int = 0
    last_exit_code: int | None = None
    last_reason: str | None = None
    owner: str | None = None
    host_ports: tuple[int, ...] = ()
    log_tail: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    waiting_message: str | None = None
    waiting_container: str | None = None
    last_message: str | None = Field(default=None, description="lastState.terminated.message, if any.")
    conditions: tuple[PodCondition, ...] = ()
    ready_containers: int = 0
    total_containers: int = 0
    uptime_seconds: float | None = Field(
        default=None, description="Seconds since the most restarted container last started, if it runs."
    )
    containers: tuple[KubeContainer, ...] = ()
    init_containers: tuple[KubeContainer, ...] = ()
    claims: tuple[str, ...] = Field(default=(), description="PersistentVolumeClaims its volumes name.")
    reason: str | None = Field(default=None, description="status.reason, e.g. Evicted.")
    message: str | None = Field(default=None, description="status.message, e.g. why it was evicted.")
    pod_ip: str | None = None
    log_container: str | None = Field(default=None, description="The container whose lines log_tail holds.")
    unobserved: tuple[str, ...] = Field(
        default=(),
        description="What of this pod could not be read and why (its logs timed out): its diagnosis is partial.",
    )

    def condition(self, type_: str) -> PodCondition | None:
        """The condition of that type, if the pod has it."""
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def unschedulable(self) -> PodCondition | None:
        """``PodScheduled=False``: the scheduler found no node (its message says why)."""
        scheduled = self.condition("PodScheduled")
        return scheduled if scheduled is not None and scheduled.status == "False" else None

    @property
    def is_crash_looping(self) -> bool:
        """CrashLoopBackOff, restarting on failures, or up again for only a moment after a
        failure: between two crashes of a loop a container without a readiness probe is
        Running and ready (the same window as a container's, RECENT_START_SECONDS). An init
        container that crash-loops holds the whole pod in the loop."""
        failed_before = self.restart_count > 0 and (self.last_exit_code or 0) != 0
        just_restarted = self.uptime_seconds is not None and self.uptime_seconds < RECENT_START_SECONDS
        return (
            self.waiting_reason == "CrashLoopBackOff"
            or (failed_before and (not self.ready or just_restarted))
            or self.crashing_init is not None
        )

    @property
    def blocking_init(self) -> KubeContainer | None:
        """The init container the pod waits on (the first not completed), while it initialises."""
        if self.ready:
            return None
        return next((c for c in self.init_containers if not c.completed), None)

    @property
    def crashing_init(self) -> KubeContainer | None:
        """The init container that crash-loops, holding the pod in ``Init:CrashLoopBackOff``."""
        blocking = self.blocking_init
        return blocking if blocking is not None and blocking.is_crash_looping else None

    @property
    def crashing_container(self) -> KubeContainer | None:
        """The container whose crashes the pod shows: a crash-looping init container first (the
        app containers have not started), else the most restarted crash-looping app container."""
        if self.crashing_init is not None:
            return self.crashing_init
        looping = [c for c in self.containers if c.is_crash_looping]
        return max(looping, key=lambda c: c.restart_count) if looping else None

    @property
    def declared_ports(self) -> tuple[KubeContainerPort, ...]:
        """Every port its app containers declare."""
        return tuple(p for c in self.containers for p in c.ports)


class KubeServicePort(Frozen):
    """A port of a Kubernetes Service; ``node_port`` is set for NodePort/LoadBalancer."""

    port: int
    target_port: str | None = None
    node_port: int | None = None
    protocol: str = "TCP"


class KubeServiceState(Frozen):
    """A Kubernetes Service. ClusterIP services are internal and hold no host port."""

    name: str
    namespace: str
    type: str
    cluster_ip: str | None = None
    ports: tuple[KubeServicePort, ...] = ()
    selector: dict[str, str] = Field(default_factory=dict)


class KubeEvent(Frozen):
    """A namespace Event (core/v1), e.g. the kubelet's ``Unhealthy`` "Readiness probe failed:
    ..." or the scheduler's ``FailedScheduling`` "0/1 nodes are available: ..."."""

    kind: str
    name: str
    reason: str = ""
    message: str = ""
    type: str = "Normal"
    count: int = 1
    source: str = ""
    last_seen: datetime | None = None
    field_path: str = Field(default="", description="The part of the object it is about: spec.initContainers{wait}.")


class KubeEndpoints(Frozen):
    """The Endpoints of a Service: how many pod addresses are ready behind it."""

    name: str
    ready: int = 0
    not_ready: int = 0
    ports: tuple[int, ...] = Field(default=(), description="The target ports the endpoints controller resolved.")


class KubeObservation(Frozen):
    """The cluster side of a snapshot, for the profile's namespace."""

    context: KubeContext | None = None
    contexts: tuple[KubeContext, ...] = ()
    namespace: str | None = None
    workloads: tuple[KubeWorkloadState, ...] = ()
    pods: tuple[PodState, ...] = ()
    services: tuple[KubeServiceState, ...] = ()
    events: tuple[KubeEvent, ...] = ()
    endpoints: tuple[KubeEndpoints, ...] = ()
    forbidden: tuple[str, ...] = Field(default=(), description="Resources the identity may not read, e.g. 'list pods'.")
    coverage: tuple[Coverage, ...] = Field(default=(), description="Per kind: complete, partial or unobserved.")


class HealthResult(Frozen):
    """One profile health check as the audit ran it: ``error`` None when it passed."""

    service: str
    target: str
    error: str | None = None


class InterruptedRun(Frozen):
    """A switch of the profile that died before its end (SIGKILL, a host crash), as its journal
    tells: what it had done, and the commands that put back what it left half done."""

    run_id: str
    mode: str
    started: str
    pid: int | None = None
    journal: str = Field(description="The journal file, under the lock directory.")
    summary: str
    steps_recorded: int = 0
    repair_commands: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Snapshot(Frozen):
    """Everything one observation pass saw, for every runtime the profile involves."""

    taken_at: datetime
    hostname: str
    profile: str
    runtimes: tuple[RuntimeStatus, ...]
    containers: tuple[Container, ...] = ()
    networks: tuple[DockerNetwork, ...] = ()
    listeners: tuple[Listener, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()
    kubernetes: KubeObservation | None = None
    health: tuple[HealthResult, ...] = Field(
        default=(), description="The profile's TCP/HTTP health checks, run by the host observation."
    )
    host_context: HostContext | None = Field(
        default=None, description="Who observed the host, and where the profile's executables are installed."
    )
    coverage: tuple[Coverage, ...] = Field(
        default=(), description="Per runtime and kind, what could not be fully observed and why."
    )
    interrupted: tuple[InterruptedRun, ...] = Field(
        default=(), description="Switches of this profile that died before their end (their journals)."
    )

    def gaps(self, runtime: Runtime, kinds: frozenset[str] | None = None) -> tuple[Coverage, ...]:
        """What of ``runtime`` was not fully seen (``kinds`` None: any kind; '*' always counts)."""
        return tuple(
            c
            for c in self.coverage
            if c.runtime is runtime and c.state != "complete" and (kinds is None or c.kind == "*" or c.kind in kinds)
        )

    def runtime_status(self, runtime: Runtime) -> RuntimeStatus | None:
        """The reachability record of ``runtime``, if it was observed at all."""
        return next((r for r in self.runtimes if r.runtime is runtime), None)

    def reachable(self, runtime: Runtime) -> bool:
        """True when ``runtime`` was observed successfully."""
        status = self.runtime_status(runtime)
        return status is not None and status.reachable

    def process(self, pid: int | None) -> ProcessInfo | None:
        """The process with ``pid``, if it was observed."""
        return next((p for p in self.processes if p.pid == pid), None) if pid else None

    def events_for(self, kind: str, name: str) -> tuple[KubeEvent, ...]:
        """Cluster events about one object, newest last."""
        kube = self.kubernetes
        if kube is None:
            return ()
        return tuple(e for e in kube.events if e.kind == kind and e.name == name)

    def container(self, container_id: str | None) -> Container | None:
        """The container with that id (full or short), if observed."""
        if not container_id:
            return None
        return next((c for c in self.containers if c.id.startswith(container_id)), None)
