"""Port conflicts on the host: two owners of one port, IPv4/IPv6 shadowing, a publisher that
failed to bind, and a profile port held by an owner the profile does not name."""

from __future__ import annotations

import re
from collections.abc import Iterator

from stackwarden import commands
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Container, Snapshot
from stackwarden.placement import (
    PortOwner,
    StackView,
    container_ready,
    keep_runtime,
    ready_in,
    stack_view,
    start_command,
)
from stackwarden.rules.registry import rule

_BIND_FAILURE = re.compile(r"address already in use|port is already allocated", re.IGNORECASE)


def _failed_publishers(snapshot: Snapshot, port: int) -> tuple[Container, ...]:
    """Containers that declare ``port`` but could not bind it (the engine's state error)."""
    return tuple(
        c
        for c in snapshot.containers
        if c.failed_to_start and _BIND_FAILURE.search(c.error or "") and any(d.host_port == port for d in c.declared)
    )


def _owner_location(owner: PortOwner) -> Location:
    runtime = owner.runtime or Runtime.HOST
    if owner.kube_object is not None:
        return Location(runtime=runtime, kind="exposure", name=owner.kube_object, detail=owner.addresses)
    kind = "container" if owner.container else "process"
    name = owner.container.name if owner.container else (owner.process.name if owner.process else "unknown")
    return Location(runtime=runtime, kind=kind, name=name, detail=f"listens on {owner.addresses}")


def _unnamed_advice(owner: PortOwner, service: str) -> str:
    """What to do about an owner the profile does not name, by what it is: a process is matched
    by executable, a container by compose project and service, and a docker-proxy the engine
    could not attribute is a container nobody could name yet (never a process to look up)."""
    if owner.cluster is not None:
        return (
            f"{owner.label} is the kubernetes runtime's ({owner.cluster}), but it leads to nothing of {service} in the "
            f"profile's namespace: stackwarden will not touch it. Stop or re-point it yourself, or give {service} a "
            "kubernetes section if it is this service."
        )
    if owner.proxied_to is not None:
        return (
            f"{owner.label} is a container the Docker engine did not name (the engine was not observed or "
            f"no container has that address): find it with `docker ps --filter publish={owner.port}` once "
            "the engine answers, then rerun the audit."
        )
    if owner.container is not None:
        project = owner.container.compose_project
        where = f"compose project {project}" if project else "no compose project"
        return (
            f"{owner.label} belongs to {where}, not to the profile's: stackwarden will not stop it. Stop it "
            f"yourself, or, if it is {service}, name its project and compose service in the profile "
            f"(services.{service}.compose_project / compose_service)."
        )
    if owner.kube_object is not None:
        return f"{owner.label} is not the profile's: stackwarden will not touch it. Change or remove it yourself."
    if owner.passed_over is not None:
        return (
            f"stackwarden will not touch {owner.label}: it is not taken for {service} ({owner.passed_over}). Stop "
            f"it yourself, or, if it really is {service}, name its executable file and user in "
            f"services.{service}.host.exe / services.{service}.host.user."
        )
    return (
        f"stackwarden will not touch {owner.label}. Stop it yourself, or add its executable "
        f"to services.{service}.host.executables if it is this service."
    )


def _owner_evidence(owner: PortOwner) -> str:
    if owner.in_profile:
        scope = "in the profile"
    elif owner.passed_over is not None:
        scope = f"NOT the profile's service: {owner.passed_over}"
    else:
        scope = "NOT named by the profile"
    line = f"{owner.label} listens on {owner.addresses} ({scope})"
    if owner.process is not None and owner.process.cmdline:
        flat = " ".join(" ".join(owner.process.cmdline).split())  # one line, even for `python -c "..."`
        line += f"; cmdline: {flat[:160]}"
    return line


def _stop_commands(snapshot: Snapshot, profile: Profile, owners: tuple[PortOwner, ...]) -> list[str]:
    """How to leave the port with one owner: the service keeps the runtime it should run in
    (its home, or where it is ready); its owners elsewhere are stopped, then it is started
    there if it holds no socket yet. Unknown owners get a look-up command only: never a stop.
    Pasted in order, the commands never leave the service without an owner."""
    port = owners[0].port if owners else 0
    service = profile.service_for_port(port)
    placement = stack_view(snapshot, profile).placements.get(service) if service else None
    keep = keep_runtime(snapshot, profile, placement) if placement is not None else None
    out = []
    for owner in owners:
        if owner.in_profile and owner.runtime is keep and keep is not None:
            continue  # the owner the service keeps
        if owner.cluster is not None and owner.lookup:
            out.append(owner.lookup)  # a local cluster's: who it is, never a stop of the cluster
        elif owner.container is not None and owner.in_profile:
            out.append(
                commands.compose(
                    profile, "stop", owner.container.compose_service or "", project=owner.container.compose_project
                )
            )
        elif owner.container is not None:
            # another project's container: who it is, never a stop that would leave that
            # project's service without its owner
            out.append(commands.container_lookup(owner.container))
        elif owner.proxied_to is not None:
            out.append(commands.docker_publishers(port))  # which container: the engine did not say
        elif owner.process is not None and not owner.in_profile:
            out.append(commands.process_lookup(owner.process))  # not named by the profile: never a stop command
        elif owner.process is not None:
            matcher = profile.services[service].host if service else None
            out.append(
                commands.stop_process(owner.process, matcher.stop_signal, matcher.grace_period_seconds)
                if matcher
                else commands.stop_process(owner.process)
            )
        elif owner.kube_object is not None and profile.kubernetes is not None:
            kind, _, rest = owner.kube_object.partition(" ")
            name = rest.split(" ", 1)[0].split("/", 1)[-1]
            out.append(commands.kubectl_for(snapshot, profile, "get", f"{kind.lower()}/{name}", "-o", "wide"))
    kept_owner = any(o.in_profile and o.runtime is keep for o in owners)
    # an owner stackwarden will not stop still holds the port: a start here would only fail on it
    blocked = any(not o.in_profile and (o.process or o.container or o.proxied_to or o.cluster) for o in owners)
    if placement is not None and keep is not None and not kept_owner and not blocked and not ready_in(placement, keep):
        start = start_command(snapshot, profile, placement, keep)
        if start:
            out.append(start)
    out.append(commands.port_listeners(port))
    return out


def _shadowing_note(owners: tuple[PortOwner, ...], port: int) -> str | None:
    """IPv4/IPv6 shadowing: different owners per family mean 'localhost' picks one by resolver."""
    by_family: dict[str, list[str]] = {}
    for owner in owners:
        for family in owner.families:
            by_family.setdefault(family, []).append(owner.label)
    if len(by_family) > 1 and all(len(v) == 1 for v in by_family.values()) and len(owners) > 1:
        v4, v6 = by_family.get("ipv4", ["?"])[0], by_family.get("ipv6", ["?"])[0]
        return (
            f"IPv4/IPv6 shadowing: localhost:{port} reaches {v6} over IPv6 (::1) and {v4} over "
            "IPv4 (127.0.0.1); which one a client gets depends on how it resolves localhost."
        )
    return None


def _action(owners: tuple[PortOwner, ...]) -> str:
    """The seed's "Stop local postgres": host processes are the usual odd one out."""
    local = [o.label for o in owners if o.runtime is Runtime.HOST]
    return "Stop " + " and ".join(local) if local else "Keep one owner of the port"


@rule("port-conflicts")
def port_conflicts(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding per profile port that has more than one owner or a failed publisher."""
    view = stack_view(snapshot, profile)
    for port, owners in view.port_owners.items():
        service = profile.service_for_port(port) or "?"
        failed = _failed_publishers(snapshot, port)
        if len(owners) < 2 and not (failed and owners):
            continue
        evidence = [_owner_evidence(o) for o in owners]
        summary_parts = []
        if len(owners) > 1:
            summary_parts.append(
                f"port {port} ({service}) has {len(owners)} owners: " + " and ".join(o.label for o in owners)
            )
        for container in failed:
            holder = ", ".join(o.label for o in owners)
            summary_parts.append(
                f"container {container.name} declares port {port} but failed to bind it; held by {holder}"
            )
            evidence.append(
                f"container {container.name} ({container.short_id}) state {container.state}: {container.error}"
            )
        if note := _shadowing_note(owners, port):
            evidence.append(note)
        locations = [_owner_location(o) for o in owners]
        locations += [
            Location(
                runtime=Runtime.COMPOSE,
                kind="container",
                name=c.name,
                detail=f"failed to bind :{port}",
            )
            for c in failed
        ]
        unknown = [o for o in owners if not o.in_profile]
        recommendation = f"Keep exactly one owner of port {port}: stop the ones outside the chosen mode."
        if unknown:
            recommendation += " " + " ".join(_unnamed_advice(o, service) for o in unknown)
        yield Finding(
            id=f"port-conflict:{port}",
            rule="port-conflicts",
            title=f"Port conflict {port} ({service})",
            severity=Severity.CRITICAL,
            services=(service,),
            runtimes=tuple(sorted({loc.runtime for loc in locations})),
            summary="; ".join(summary_parts) + ".",
            evidence=tuple(evidence),
            locations=tuple(locations),
            recommendation=recommendation,
            action=_action(owners),
            commands=tuple(_stop_commands(snapshot, profile, owners)),
        )


@rule("port-foreign-owner")
def port_foreign_owner(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """A profile port whose only owner is not this service in any profile runtime.

    Not a conflict between deployments, but it blocks the service everywhere and stackwarden
    must never stop it (nothing outside the profile is touched), so the user needs to know.
    """
    view = stack_view(snapshot, profile)
    for port, owners in view.port_owners.items():
        if len(owners) != 1 or owners[0].in_profile or owners[0].cluster is not None:
            continue  # a local cluster's owner is the kubernetes runtime's: port-held-by-cluster
        if _failed_publishers(snapshot, port):
            continue  # the port conflict names this owner already, with the container it blocks
        owner = owners[0]
        service = profile.service_for_port(port) or "?"
        # a docker-proxy while the engine is unreachable is most likely the service's own
        # container: not knowing which is the unreachable engine's finding, not a foreign owner
        blind = owner.proxied_to is not None and not snapshot.reachable(Runtime.COMPOSE)
        lookup = (commands.docker_publishers(port),) if owner.proxied_to is not None else ()
        yield Finding(
            id=f"port-foreign-owner:{port}",
            rule="port-foreign-owner",
            title=f"Port {port} ({service}) held by an unknown owner",
            severity=Severity.MEDIUM if blind else Severity.HIGH,
            services=(service,),
            runtimes=(owner.runtime or Runtime.HOST,),
            summary=f"port {port} of {service} is held by {owner.label}, {owner.not_ours}.",
            evidence=(_owner_evidence(owner),),
            locations=(_owner_location(owner),),
            recommendation=_unnamed_advice(owner, service),
            action="Identify the container" if owner.proxied_to is not None else f"Free port {port} yourself",
            commands=(*lookup, commands.port_listeners(port)),
        )


@rule("port-held-by-cluster")
def port_held_by_cluster(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High: a local Kubernetes cluster holds a profile port (a kubectl port-forward, a kind, k3d
    or minikube node container, minikube tunnel, k3s) for something that is not this service in
    the profile's namespace. It is the kubernetes runtime's, not an unknown owner, and the
    service cannot bind the port anywhere else while it holds it."""
    view = stack_view(snapshot, profile)
    for port, owners in view.port_owners.items():
        if len(owners) != 1 or owners[0].cluster is None or owners[0].in_profile:
            continue  # two owners are a port conflict; the service's own forward is fine
        owner = owners[0]
        service = profile.service_for_port(port) or "?"
        yield Finding(
            id=f"port-held-by-cluster:{port}",
            rule="port-held-by-cluster",
            title=f"Port {port} ({service}) held by a local cluster",
            severity=Severity.HIGH,
            services=(service,),
            runtimes=(Runtime.KUBERNETES,),
            summary=(
                f"port {port} of {service} is held by the kubernetes runtime: {owner.label}; it does not lead to "
                f"{service} in the profile's namespace, so {service} cannot bind the port anywhere else."
            ),
            evidence=(_owner_evidence(owner),),
            locations=(_owner_location(owner),),
            recommendation=_unnamed_advice(owner, service),
            action=f"Free port {port} in the cluster",
            commands=(*((owner.lookup,) if owner.lookup else ()), commands.port_listeners(port)),
        )


@rule("port-no-reply")
def port_no_reply(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High: a container publishes the profile port and looks up, but a connection through its
    docker-proxy is closed at once, so nothing listens behind the publish inside the container
    (the app bound to the container's 127.0.0.1, or to another port). A bare TCP check passes
    there, so nothing else would say so."""
    view = stack_view(snapshot, profile)
    for port, owners in view.port_owners.items():
        for owner in owners:
            dead = [item for item in owner.listeners if item.no_reply]
            if (owner.container is None and owner.proxied_to is None) or not dead:
                continue
            if len(dead) < len(owner.listeners):
                continue  # one family answers: not dead behind the proxy
            service = profile.service_for_port(port) or "?"
            c = owner.container
            inner = next((d.container_port for d in c.published if d.host_port == port), port) if c else port
            where = (
                f"services.{c.compose_service} in {', '.join(c.compose_config_files) or 'its compose file'}"
                if c
                else "its container"
            )
            yield Finding(
                id=f"port-no-reply:{port}",
                rule="port-no-reply",
                title=f"Port {port} ({service}) published but nothing answers",
                severity=Severity.HIGH,
                services=(service,),
                runtimes=(Runtime.COMPOSE,),
                summary=(
                    f"port {port} of {service} is published by {owner.label}, but a connection is closed at once "
                    f"with no reply: nothing listens on container port {inner} on the container's own address "
                    "(the app binds 127.0.0.1 inside the container, or another port). Clients get an empty reply."
                ),
                evidence=tuple(f"{item.display}: {item.no_reply}" for item in dead),
                locations=(_owner_location(owner),),
                recommendation=(
                    f"Make the app listen on 0.0.0.0:{inner} inside the container (its bind address or port "
                    f"setting in {where}), then recreate it; its logs say what it listens on."
                ),
                action="Bind the app to the container's address",
                commands=(
                    *((commands.docker_logs(c),) if c else (commands.docker_publishers(port),)),
                    commands.port_listeners(port),
                ),
            )


def unserved_ports(view: StackView, profile: Profile, service: str) -> list[tuple[int, str]]:
    """(port, what runs instead) for each port of ``service`` that nothing on this host serves
    although the service runs here: a ready container of it that does not publish the port (the
    compose file and the profile disagree), or a host process of it with no socket on the port.

    A port some owner holds is left to the other port rules; a port a container of the service
    publishes counts as served even without a listener (Docker without its userland proxy
    forwards with iptables only)."""
    placement = view.placements.get(service)
    if placement is None:
        return []
    running = [c for c in placement.containers if container_ready(c)]
    if not running and not placement.processes:
        return []  # not running here: service-unavailable says so where it should run
    published = {p.host_port for c in running for p in (*c.published, *c.declared)}
    containers = [
        f"container {c.name} publishes "
        + (", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}" for p in c.published) or "no port")
        for c in running
    ]
    out = []
    for port in profile.services[service].ports:
        if view.port_owners.get(port) or port in published:
            continue
        processes = [f"host process {p.name} PID {p.pid} has no socket on it" for p in placement.processes]
        out.append((port, "; ".join(containers + processes)))
    return out


@rule("port-unserved")
def port_unserved(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High (medium outside the core group): the service runs on this host, but nothing at all
    listens on one of its ports. Every other check passes there (the container is up, no port
    conflicts), so without this a client refused on the port would meet an all-clear."""
    view = stack_view(snapshot, profile)
    for service, spec in profile.services.items():
        for port, instead in unserved_ports(view, profile, service):
            yield Finding(
                id=f"port-unserved:{port}",
                rule="port-unserved",
                title=f"Port {port} ({service}) served by nothing",
                severity=Severity.HIGH if spec.group == "core" else Severity.MEDIUM,
                services=(service,),
                runtimes=(Runtime.HOST,),
                summary=(
                    f"{service} runs on this host, but nothing listens on its port {port}: {instead}. "
                    "Clients of the port are refused."
                ),
                evidence=(f"no listening socket on port {port}", instead),
                locations=(Location(runtime=Runtime.HOST, kind="port", name=str(port), detail="no listener"),),
                recommendation=(
                    f"Make the compose file (or the service's own configuration) and the profile agree on port "
                    f"{port}: publish it, or correct services.{service}.ports in the profile."
                ),
                action=f"Serve {service} on port {port}",
                commands=(commands.port_listeners(port),),
            )
