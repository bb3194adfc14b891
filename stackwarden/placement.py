"""Where each profile service runs, and who owns each profile port: the shared view that rules,
planner and verdict all read, derived once from a snapshot so they never disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from stackwarden import commands
from stackwarden.derivations import per_snapshot
from stackwarden.identity import NOT_CLAIMED, host_identity, is_docker_proxy
from stackwarden.localclusters import cluster_process
from stackwarden.model.base import Mode, Runtime
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import (
    Container,
    HostContext,
    KubeWorkloadState,
    Listener,
    PodState,
    ProcessInfo,
    Snapshot,
)


@dataclass(frozen=True)
class ServicePlacement:
    """Every place one service is deployed, per runtime."""

    service: str
    containers: tuple[Container, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()
    workloads: tuple[KubeWorkloadState, ...] = ()
    pods: tuple[PodState, ...] = ()
    passed_over: tuple[tuple[ProcessInfo, str], ...] = ()
    """Host processes that answer to the service's name (on its port: or run its file) but are
    not it, with why (stackwarden.identity): never planned for, reported so a person can tell an
    impostor from a profile that needs its ``user`` or ``exe``."""

    @property
    def runtimes(self) -> tuple[Runtime, ...]:
        """The runtimes where the service is deployed (running or trying to)."""
        found = []
        if self.containers:
            found.append(Runtime.COMPOSE)
        if any(w.replicas > 0 for w in self.workloads) or self.pods:
            found.append(Runtime.KUBERNETES)
        if self.processes:
            found.append(Runtime.HOST)
        return tuple(found)


@dataclass(frozen=True)
class PortOwner:
    """One owner of a host port: a container (through docker-proxy) or a host process.

    ``in_profile`` is true when the owner is this service in one of the profile's runtimes:
    the profile's compose container, or a process that is the service by its executable file and
    owner (stackwarden.identity). ``passed_over`` says why a process that answers to the
    service's name was not taken for it.
    """

    port: int
    listeners: tuple[Listener, ...]
    container: Container | None = None
    process: ProcessInfo | None = None
    in_profile: bool = False
    runtime: Runtime | None = None
    kube_object: str | None = None
    proxied_to: str | None = None
    """``IP:PORT`` of a container behind docker-proxy that the engine did not name (engine
    unreachable, or no observed container has that address): a container, not a process."""
    cluster: str | None = None
    """Set when a local cluster holds the port (a kubectl port-forward, a kind/k3d/minikube node
    container, minikube tunnel, k3s): the owner is the kubernetes runtime, never a foreign one;
    ``lookup`` says how to see it."""
    lookup: str | None = None
    passed_over: str | None = None
    """Why a process that answers to the service's name is not it (stackwarden.identity)."""

    @property
    def not_ours(self) -> str:
        """Why the profile does not own it, for messages: the identity check's reason when the
        process answers to the service's name, else that the profile does not name it."""
        if self.passed_over is not None:
            return f"which is not the profile's service ({self.passed_over})"
        return "which the profile does not name"

    @property
    def label(self) -> str:
        """A human name with the identity that commands need."""
        if self.kube_object is not None:
            return f"kubernetes {self.kube_object}"
        if self.container is not None:
            return f"container {self.container.name} ({self.container.short_id})"
        if self.proxied_to is not None:
            return f"an unidentified Docker container (docker-proxy to {self.proxied_to})"
        if self.process is not None:
            unit = f", unit {self.process.systemd_unit}" if self.process.systemd_unit else ""
            return f"process {self.process.name} (PID {self.process.pid}{unit})"
        pid = self.listeners[0].pid if self.listeners else None
        return f"unknown owner (PID {pid})" if pid else "unknown owner (socket without a visible process)"

    @property
    def addresses(self) -> str:
        """The listening addresses, e.g. ``127.0.0.1:6379, [::1]:6379``."""
        if self.kube_object is not None and not self.listeners:
            return f"node port {self.port} (every node address)"
        return ", ".join(sorted(listener.display for listener in self.listeners))

    @property
    def families(self) -> frozenset[str]:
        """The address families this owner listens on."""
        return frozenset(listener.family for listener in self.listeners)


@dataclass(frozen=True)
class StackView:
    """Placements of every service and owners of every profile port, for one snapshot. One
    view is shared by every reader of the snapshot (``derivations``), so its maps are read-only."""

    placements: Mapping[str, ServicePlacement] = field(default_factory=dict)
    port_owners: Mapping[int, tuple[PortOwner, ...]] = field(default_factory=dict)


def home_runtime(profile: Profile, service: str) -> Runtime | None:
    """The runtime the default mode runs ``service`` in, if the profile gives it a home there."""
    mode = profile.default_mode
    want = (
        Runtime.COMPOSE
        if mode is Mode.COMPOSE_ONLY
        else Runtime.KUBERNETES
        if mode is Mode.K8S_ONLY
        else profile.services[service].runtime
    )
    return want if want is not None and profile.has_home(service, want) else None


def profile_containers(snapshot: Snapshot, profile: Profile, service: str) -> tuple[Container, ...]:
    """Active containers of ``service`` in the compose project that runs it."""
    return tuple(c for c in snapshot.containers if is_service_container(profile, service, c) and c.is_active)


def is_service_container(profile: Profile, service: str, container: Container) -> bool:
    """The container belongs to ``service``: its project and compose service labels match (in
    any state; callers decide whether a stopped one counts)."""
    return container.compose_project == profile.compose_for(
        service
    ).project and container.compose_service == profile.compose_service_name(service)


def proxy_target(process: ProcessInfo | None, context: HostContext | None = None) -> str | None:
    """``container_ip:container_port`` a real docker-proxy process forwards to, else None."""
    if process is None or not is_docker_proxy(process, context):
        return None
    args = dict(zip(process.cmdline[1::2], process.cmdline[2::2], strict=False))
    ip, port = args.get("-container-ip"), args.get("-container-port")
    return f"{ip}:{port}" if ip and port else None


def _owner_key(snapshot: Snapshot, listener: Listener) -> str:
    """Who a listener belongs to: its container; else, for a docker-proxy the engine did not
    attribute, the container address it forwards to (one proxy per address family forwards to
    the same container: two PIDs, one owner); else its PID."""
    if listener.container_id:
        return f"c:{listener.container_id}"
    target = proxy_target(snapshot.process(listener.pid), snapshot.host_context)
    return f"d:{target}" if target else f"p:{listener.pid}"


def _owners_of_port(snapshot: Snapshot, profile: Profile, port: int) -> tuple[PortOwner, ...]:
    """Group the port's listeners by owner (container id, docker-proxy target, else PID)."""
    groups: dict[str, list[Listener]] = {}
    for listener in snapshot.listeners:
        if listener.port != port:
            continue
        groups.setdefault(_owner_key(snapshot, listener), []).append(listener)
    service = profile.service_for_port(port)
    owners = []
    for key, listeners in sorted(groups.items()):
        first = listeners[0]
        container = snapshot.container(first.container_id) if key.startswith("c:") else None
        proxied = key[2:] if key.startswith("d:") else None
        process = None if container or proxied else snapshot.process(first.pid)
        in_profile = False
        passed_over = None
        runtime: Runtime | None = None
        if container is not None or proxied is not None:
            runtime = Runtime.COMPOSE
            in_profile = (
                container is not None and service is not None and is_service_container(profile, service, container)
            )
        elif process is not None:
            runtime = Runtime.HOST
            identity = host_identity(profile, service, process, snapshot.host_context) if service else NOT_CLAIMED
            in_profile, passed_over = identity.is_service, identity.refusal
        owner = PortOwner(
            port=port,
            listeners=tuple(sorted(listeners, key=lambda item: item.address)),
            container=container,
            process=process,
            in_profile=in_profile,
            runtime=runtime,
            proxied_to=proxied,
            passed_over=passed_over,
        )
        owners.append(local_cluster_owner(snapshot, profile, owner) or owner)
    return tuple(owners) + _kube_exposures(snapshot, profile, port)


def _kube_exposures(snapshot: Snapshot, profile: Profile, port: int) -> tuple[PortOwner, ...]:
    """Kubernetes objects that expose ``port`` on the host: NodePort and LoadBalancer services
    and pods with a hostPort. ClusterIP services are internal and expose nothing here."""
    kube = snapshot.kubernetes
    if kube is None:
        return ()
    service = profile.service_for_port(port)
    spec = profile.services[service].kubernetes if service else None
    out = []
    for svc in kube.services:
        if svc.type not in {"NodePort", "LoadBalancer"}:
            continue
        for p in svc.ports:
            how = None
            if p.node_port == port:
                how = f"NodePort {port}"
            elif svc.type == "LoadBalancer" and p.port == port:
                how = f"LoadBalancer port {port}"
            if how:
                out.append(
                    PortOwner(
                        port=port,
                        listeners=(),
                        in_profile=spec is not None and svc.name == spec.service,
                        runtime=Runtime.KUBERNETES,
                        kube_object=f"Service {svc.namespace}/{svc.name} ({svc.type}, {how})",
                    )
                )
    own_pods = {p.uid for p in _kube_objects(snapshot, profile, service)[1]} if service else set()
    for pod in kube.pods:
        if port in pod.host_ports and pod.phase not in {"Succeeded", "Failed"}:
            out.append(
                PortOwner(
                    port=port,
                    listeners=(),
                    in_profile=pod.uid in own_pods,
                    runtime=Runtime.KUBERNETES,
                    kube_object=f"pod {pod.namespace}/{pod.name} (hostPort {port})",
                )
            )
    return tuple(out)


# ------------------------------------------------------------------ local clusters on the host
def _profile_kube_target(snapshot: Snapshot, profile: Profile, service: str | None) -> set[str]:
    """``service/NAME``, ``svc/NAME``, ``deployment/NAME``, ``pod/NAME`` ... that are this profile
    service in the cluster: what a port-forward to it names."""
    spec = profile.services[service].kubernetes if service else None
    if spec is None:
        return set()
    out = {f"{spec.kind.lower()}/{spec.name}", f"{spec.kind.lower()}s/{spec.name}"}
    if spec.kind == "Deployment":
        out.add(f"deploy/{spec.name}")
    else:
        out.add(f"sts/{spec.name}")
    if spec.service:
        out |= {f"service/{spec.service}", f"svc/{spec.service}", f"services/{spec.service}"}
    out |= {f"pod/{p.name}" for p in _kube_objects(snapshot, profile, service or "")[1]}
    return out


def _node_port_of(snapshot: Snapshot, profile: Profile, service: str | None, node_port: int) -> str | None:
    """The profile's Service (or pod hostPort) in the observed cluster that ``node_port`` reaches."""
    kube = snapshot.kubernetes
    spec = profile.services[service].kubernetes if service else None
    if kube is None or spec is None:
        return None
    for svc in kube.services:
        if svc.name == spec.service and any(p.node_port == node_port for p in svc.ports):
            return f"NodePort {node_port} of Service {svc.name}"
    own = _kube_objects(snapshot, profile, service or "")[1]
    if any(node_port in p.host_ports for p in own):
        return f"hostPort {node_port} of a pod of {spec.kind} {spec.name}"
    return None


def local_cluster_owner(snapshot: Snapshot, profile: Profile, owner: PortOwner) -> PortOwner | None:
    """The same owner seen as what it is when a local cluster holds the port: the kubernetes
    runtime. It is the profile's service when it leads to the service's workload, Service or pods
    in the profile's namespace (a port-forward to them; a node container publishing their
    NodePort), or, when it names no target, when the service has a Kubernetes side at all."""
    service = profile.service_for_port(owner.port)
    has_side = service is not None and profile.has_home(service, Runtime.KUBERNETES)
    ns = profile.kubernetes.namespace if profile.kubernetes else None
    if owner.container is not None and owner.container.cluster_node is not None:
        c = owner.container
        inner = next((p.container_port for p in c.published if p.host_port == owner.port), None)
        reached = _node_port_of(snapshot, profile, service, inner) if inner is not None else None
        into = f" to {reached}" if reached else (f" to node port {inner}" if inner is not None else "")
        return replace(
            owner,
            container=None,
            passed_over=None,
            runtime=Runtime.KUBERNETES,
            in_profile=reached is not None or (has_side and snapshot.kubernetes is None),
            cluster=c.cluster_node,
            kube_object=f"{c.cluster_node} (node container {c.name} publishes port {owner.port}{into})",
            lookup=commands.docker_port(c.name),
        )
    process = owner.process
    role = cluster_process(process) if process is not None else None
    if process is None or role is None:
        return None
    if role.target is not None:
        same_ns = role.namespace in {None, ns}
        in_profile = same_ns and role.target in _profile_kube_target(snapshot, profile, service)
        where = f" to {role.target}" + (f" in namespace {role.namespace}" if role.namespace else "")
    else:
        in_profile, where = has_side, ""
    return replace(
        owner,
        process=None,
        passed_over=None,
        runtime=Runtime.KUBERNETES,
        in_profile=in_profile,
        cluster=role.how,
        kube_object=f"{role.how} (PID {process.pid}){where}",
        lookup=commands.process_lookup(process),
    )


def _host_processes(
    snapshot: Snapshot, profile: Profile, service: str
) -> tuple[tuple[ProcessInfo, ...], tuple[tuple[ProcessInfo, str], ...]]:
    """(the service's host processes, the ones that claim to be it but are not, with why).

    Candidates are the processes listening on one of the service's ports; for a service without
    ports (a worker), every observed process. Which of them is the service is decided by
    stackwarden.identity: executable file, owner, namespace; never a name alone."""
    ports = profile.services[service].ports
    pids = {listener.pid for listener in snapshot.listeners if listener.port in ports and listener.container_id is None}
    found, passed = [], []
    for process in sorted(snapshot.processes, key=lambda p: p.pid):
        if ports and process.pid not in pids:
            continue
        identity = host_identity(profile, service, process, snapshot.host_context)
        if identity.is_service:
            found.append(process)
        elif identity.refusal is not None and (ports or identity.named):
            # a port-less service's file may be an interpreter every user runs: only a process
            # that looks like the service in ps is worth a word, not each Python of another user
            passed.append((process, identity.refusal))
    return tuple(found), tuple(passed)


def _kube_objects(
    snapshot: Snapshot, profile: Profile, service: str
) -> tuple[tuple[KubeWorkloadState, ...], tuple[PodState, ...]]:
    """The service's workload in the profile namespace and the pods it selects."""
    spec = profile.services[service].kubernetes
    kube = snapshot.kubernetes
    if spec is None or kube is None:
        return (), ()
    workloads = tuple(w for w in kube.workloads if w.kind == spec.kind and w.name == spec.name)
    pods = tuple(
        p
        for p in kube.pods
        for w in workloads
        if p.phase not in {"Succeeded", "Failed"}
        and w.selector
        and all(p.labels.get(k) == v for k, v in w.selector.items())
    )
    return workloads, pods


def container_ready(c: Container) -> bool:
    """Running, not between two crashes, and not reported unhealthy by its health check."""
    return c.state == "running" and not c.is_crash_looping and "unhealthy" not in c.status


def ready_in(placement: ServicePlacement, runtime: Runtime) -> bool:
    """The service has at least one ready instance in ``runtime``."""
    if runtime is Runtime.COMPOSE:
        return any(container_ready(c) for c in placement.containers)
    if runtime is Runtime.KUBERNETES:
        # a ready pod, or the controller's own count (when pods could not be read)
        return any(p.ready for p in placement.pods) or any(w.ready_replicas > 0 for w in placement.workloads)
    return bool(placement.processes)


def start_command(snapshot: Snapshot, profile: Profile, placement: ServicePlacement, runtime: Runtime) -> str | None:
    """The command that gives the service a running instance in ``runtime`` on this host, or
    None when stackwarden knows none (a host service without unit or start command)."""
    service = placement.service
    if runtime is Runtime.COMPOSE:
        exists = any(is_service_container(profile, service, c) for c in snapshot.containers)
        return commands.compose_service(profile, service, "start" if exists else "up", *(() if exists else ("-d",)))
    if runtime is Runtime.KUBERNETES:
        spec = profile.services[service].kubernetes
        if spec is None or not placement.workloads:
            return None
        w = placement.workloads[0]
        replicas = max(spec.replicas, 1)
        return commands.kubectl_for(snapshot, profile, "scale", f"{w.kind.lower()}/{w.name}", f"--replicas={replicas}")
    matcher = profile.services[service].host
    if matcher is not None and matcher.systemd_unit:
        return f"systemctl start {matcher.systemd_unit}"
    if matcher is not None and matcher.start_command:
        return " ".join(matcher.start_command)
    return None


def keep_runtime(snapshot: Snapshot, profile: Profile, placement: ServicePlacement) -> Runtime | None:
    """The runtime a fix keeps the service in, so that advice never leaves it without an owner:
    its home in the default mode when it is ready there or can be started there, else the
    runtime where it is ready now."""
    home = home_runtime(profile, placement.service)
    if home is not None and (ready_in(placement, home) or start_command(snapshot, profile, placement, home)):
        return home
    return next((r for r in placement.runtimes if ready_in(placement, r)), home)


def converge_commands(
    snapshot: Snapshot, profile: Profile, placement: ServicePlacement, keep: Runtime | None
) -> list[str]:
    """Stop the service everywhere but ``keep``, then start it there if it is not ready: pasted
    in order, the service ends with one owner, never none (stops first free its ports)."""
    out = []
    if keep is not Runtime.COMPOSE:
        for c in placement.containers:
            if c.state in {"running", "restarting", "paused"}:
                out.append(
                    commands.compose(profile, "stop", c.compose_service or placement.service, project=c.compose_project)
                )
    if keep is not Runtime.KUBERNETES:
        for w in placement.workloads:
            if w.replicas > 0:
                out.append(
                    commands.kubectl_for(snapshot, profile, "scale", f"{w.kind.lower()}/{w.name}", "--replicas=0")
                )
    matcher = profile.services[placement.service].host
    if keep is not Runtime.HOST:
        for p in placement.processes:
            out.append(
                commands.stop_process(p, matcher.stop_signal, matcher.grace_period_seconds)
                if matcher
                else commands.stop_process(p)
            )
    if keep is not None and not ready_in(placement, keep):
        start = start_command(snapshot, profile, placement, keep)
        if start:
            out.append(start)
    return out


@per_snapshot("stack-view")
def stack_view(snapshot: Snapshot, profile: Profile) -> StackView:
    """Placements and port owners for every profile service and port: derived once per
    snapshot (rules, planner, verdict, recommendation and renderers all ask for it)."""
    return _derive_stack_view(snapshot, profile)


def _derive_stack_view(snapshot: Snapshot, profile: Profile) -> StackView:
    """Derive placements and port owners for every profile service and port."""
    placements = {}
    for service in profile.services:
        workloads, pods = _kube_objects(snapshot, profile, service)
        processes, passed_over = _host_processes(snapshot, profile, service)
        placements[service] = ServicePlacement(
            service=service,
            containers=profile_containers(snapshot, profile, service),
            processes=processes,
            workloads=workloads,
            pods=pods,
            passed_over=passed_over,
        )
    owners = {port: _owners_of_port(snapshot, profile, port) for port in profile.all_ports()}
    return StackView(placements=MappingProxyType(placements), port_owners=MappingProxyType(owners))
