"""The stack's dependency graph: which profile service needs which, from what is declared and
observed, and what address a failing service was trying to reach.

Edges come from compose ``depends_on`` and links, host names and ports in environment variables
and command lines (``DATABASE_URL``, ``REDIS_HOST``, ``--db-host``), a pod's env and args, and
init containers that wait for a Service. The extraction functions (``refs_from_env``,
``refs_from_argv``) run at the adapter boundary, so an environment value never enters the
snapshot: only the host and port it names do.

An address is resolved to a profile service by how the one who connects can reach it: a compose
service name (or container name, link alias, container address) from a container on the
project's network; a Kubernetes Service name (short, ``name.ns``, ``name.ns.svc...``) or
ClusterIP from a pod; and a host port (``127.0.0.1:5432``, ``host.docker.internal``) from the
host or a host-networked container, whoever holds that port. ``127.0.0.1`` inside a bridged
container or a pod is the container itself, never another service.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from stackwarden.model.base import Runtime
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import (
    Container,
    DependencyRef,
    KubeServiceState,
    PodState,
    ProcessInfo,
    Snapshot,
)
from stackwarden.placement import ServicePlacement, StackView

# ---------------------------------------------------------------------------- extraction
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?:[^@/\s'\"]*@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)(?::(\d{1,5}))?")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+):(\d{1,5})$")
_KV_HOST = re.compile(
    r"(?:^|;)\s*(?:host|server|data source|address|addr)\s*=\s*([A-Za-z0-9._\-]+)(?:[,:](\d{1,5}))?", re.IGNORECASE
)
_KV_PORT = re.compile(r"(?:^|;)\s*port\s*=\s*(\d{1,5})", re.IGNORECASE)
_ADDRESS_KEY = re.compile(
    r"(?:^|_)(?:HOST|HOSTNAME|HOSTS|ADDR|ADDRESS|SERVER|SERVERS|BROKER|BROKERS|ENDPOINT|ENDPOINTS|URL|URI|DSN|NODES|"
    r"BOOTSTRAP_SERVERS|CONNECTION_STRING|CONN|SERVICE_HOST)$",
    re.IGNORECASE,
)
_OWN_BIND_KEY = re.compile(
    r"^(?:HOST|HOSTNAME|PORT|BIND|LISTEN|ADDR|ADDRESS)$|BIND|LISTEN|PUBLIC_|EXTERNAL_|ADVERTISED"
)
_PORT_KEY = re.compile(r"^(.*?)_?PORT$", re.IGNORECASE)
_NOT_HOSTS = frozenset(
    {"true", "false", "yes", "no", "on", "off", "none", "null", "nil", "0.0.0.0", "::", "*", "all", "any", "default"}
)
_FLAG = re.compile(
    r"^--?(?:[a-z0-9]+[-_])*(?:host|hostname|addr|address|server|url|uri|dsn|endpoint|broker|brokers|upstream)$",
    re.IGNORECASE,
)
_PORT_FLAG = re.compile(r"^--?(?:[a-z0-9]+[-_])*port$", re.IGNORECASE)
_SHORT_HOST_TOOLS = frozenset({"pg_isready", "psql", "redis-cli", "mysql", "mysqladmin", "mongosh", "mongo"})
_PROBE_TOOLS = frozenset({"nc", "ncat", "netcat", "telnet"})
_LOOKUP_TOOLS = frozenset({"nslookup", "host", "dig", "ping"})
_WAIT_TOOLS = re.compile(r"(?:^|/)(?:wait-for-it(?:\.sh)?|wait-for(?:\.sh)?|dockerize)$")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})


def is_host(text: str) -> bool:
    """A DNS name or an IP address, not a path, a number, a wildcard or a word like ``true``."""
    value = text.strip().strip("[]").rstrip(".")
    if not value or value.lower() in _NOT_HOSTS:
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return bool(_HOST_NAME.match(value)) and not value.replace(".", "").isdigit()
    return not address.is_unspecified


def _port(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number < 65536 else None


def _clean_host(text: str) -> str:
    return text.strip().strip("[]").rstrip(".").lower()


def addresses_in(value: str) -> list[tuple[str, int | None]]:
    """Every (host, port) a value names: URLs (``postgres://u:p@db:5432/x``, ``jdbc:postgresql://``),
    ``host:port`` lists (``kafka-1:9092,kafka-2:9092``), key=value connection strings
    (``Host=db;Port=5432``), or a bare host name."""
    out: list[tuple[str, int | None]] = []
    for match in _URL.finditer(value):
        host = match.group(1)
        if is_host(host):
            out.append((_clean_host(host), _port(match.group(2))))
    if out:
        return out
    kv = _KV_HOST.search(value)
    if kv and is_host(kv.group(1)):
        port = _port(kv.group(2))
        if port is None and (pm := _KV_PORT.search(value)):
            port = _port(pm.group(1))
        return [(_clean_host(kv.group(1)), port)]
    for part in re.split(r"[,\s]+", value.strip()):
        hp = _HOST_PORT.match(part)
        if hp and is_host(hp.group(1)):
            out.append((_clean_host(hp.group(1)), _port(hp.group(2))))
    if out:
        return out
    single = value.strip()
    return [(_clean_host(single), None)] if is_host(single) else []


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return False
    return True


def _takes(listening: str, target: str) -> bool:
    """Whether a socket listening on ``listening`` takes connections to the IP ``target``: the
    very address, the wildcard of its family, or ``::`` for IPv4 too (Linux's dual-stack default)."""
    listen, to = ipaddress.ip_address(listening), ipaddress.ip_address(target.strip().strip("[]"))
    if listen == to:
        return True
    if listen.is_unspecified:
        return listen.version in (to.version, 6)
    return False


def refs_from_env(env: Iterable[tuple[str, str]]) -> tuple[DependencyRef, ...]:
    """The addresses an environment names, by variable: URLs in any variable, host names in
    variables named like an address (``*_HOST``, ``*_URL``, ``*_ADDR``, ``*_BROKERS`` ...), with
    the port from a sibling ``*_PORT`` (``REDIS_HOST`` + ``REDIS_PORT``). The service's own bind
    address (``HOST=0.0.0.0``, ``LISTEN_ADDR``) is not a dependency. Only hosts and ports are
    returned: never a value."""
    pairs = [(k, v) for k, v in env if k and isinstance(v, str)]
    ports = {}
    for key, value in pairs:
        port_match = _PORT_KEY.match(key)
        if port_match and value.strip().isdigit():
            ports[port_match.group(1).upper().rstrip("_")] = _port(value.strip())
    out: list[DependencyRef] = []
    for key, value in pairs:
        if _OWN_BIND_KEY.search(key.upper()) and "://" not in value:
            continue
        named = bool(_ADDRESS_KEY.search(key)) or "CONNECTIONSTRING" in key.upper().replace("_", "")
        if not named and "://" not in value:
            continue
        sibling = ports.get(re.sub(r"_?(?:HOST|HOSTNAME|ADDR|ADDRESS|SERVER|SERVICE_HOST)$", "", key.upper()))
        out += [
            DependencyRef(host=host, port=port if port is not None else sibling, source=f"env {key}")
            for host, port in addresses_in(value)
        ]
    return tuple(dict.fromkeys(out))


def _script_words(argv: Sequence[str]) -> list[list[str]]:
    """The command, and for ``sh -c SCRIPT`` each simple command of the script, as word lists."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in _SHELLS and "-c" in argv[1:3]:
        at = argv.index("-c") + 1
        script = argv[at] if at < len(argv) else ""
        rest = [list(argv[at + 1 :])] if len(argv) > at + 1 else []  # $0 $1...: what the script execs
        try:
            words = shlex.split(script, comments=True)
        except ValueError:
            words = script.split()
        commands: list[list[str]] = [[]]
        for word in words:
            if word in {";", "&&", "||", "|", "do", "then", "until", "while", "if", "done", "fi", "!"}:
                commands.append([])
                continue
            for piece in re.split(r"(;|&&|\|\|)", word):
                if piece in {";", "&&", "||"}:
                    commands.append([])
                elif piece:
                    commands[-1].append(piece)
        return [c for c in commands if c] + rest
    return [list(argv)]


_VALUE_FLAGS = {"nc": frozenset({"-w", "-p", "-s", "-i", "-q", "-W", "-x", "-X"})}


def _probe_target(words: Sequence[str]) -> tuple[str, int | None] | None:
    """``nc [-z] [-w N] HOST PORT`` (netcat, telnet): the host and port it probes."""
    takes_value = _VALUE_FLAGS["nc"]
    positional, skip = [], False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-"):
            positional.append(word)
    if not positional or not is_host(positional[0]):
        return None
    return _clean_host(positional[0]), _port(positional[1]) if len(positional) > 1 else None


def _flags(words: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--key value`` / ``--key=value`` pairs, and the other words."""
    flags: dict[str, str] = {}
    positional: list[str] = []
    i = 1
    while i < len(words):
        word = words[i]
        if word.startswith("-") and "=" in word:
            key, _, value = word.partition("=")
            flags[key] = value
        elif word.startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("-"):
            flags[word] = words[i + 1]
            i += 1
        elif not word.startswith("-"):
            positional.append(word)
        i += 1
    return flags, positional


def _refs_of_command(words: Sequence[str], source: str) -> Iterator[DependencyRef]:
    """Addresses in one command's words: ``--db-host X``/``--db-host=X`` (+ ``--db-port``), URLs and
    ``host:port`` arguments, ``nc [-z] HOST PORT``, ``pg_isready -h HOST -p PORT``, wait-for-it's
    ``HOST:PORT``, dockerize's ``-wait tcp://HOST:PORT``, ``nslookup HOST``."""
    if not words:
        return
    tool = words[0].rsplit("/", 1)[-1]
    if tool in _PROBE_TOOLS:
        probe = _probe_target(words)
        if probe is not None:
            yield DependencyRef(host=probe[0], port=probe[1], source=f"{source} {tool}")
        return
    flags, positional = _flags(words)
    if tool in _LOOKUP_TOOLS:
        if positional and is_host(positional[0]):
            yield DependencyRef(host=_clean_host(positional[0]), source=f"{source} {tool}")
        return
    wait = bool(_WAIT_TOOLS.search(words[0]))
    short = tool in _SHORT_HOST_TOOLS or wait
    port_flag = next((v for k, v in flags.items() if _PORT_FLAG.match(k) or (k == "-p" and short)), None)
    for key, value in flags.items():
        if _FLAG.match(key) or (key == "-h" and short):
            for host, port in addresses_in(value):
                yield DependencyRef(host=host, port=port or _port(port_flag), source=f"{source} {key}")
        elif "://" in value:
            for host, port in addresses_in(value):
                yield DependencyRef(host=host, port=port, source=f"{source} {key}")
    for word in positional:
        if "://" in word or _HOST_PORT.match(word):
            for host, port in addresses_in(word):
                if port is not None or "://" in word:
                    yield DependencyRef(host=host, port=port, source=f"{source} {tool if wait else 'argument'}")


def refs_from_argv(argv: Sequence[str], source: str = "command") -> tuple[DependencyRef, ...]:
    """The addresses a command line names, a shell script's commands included
    (``sh -c "until nc -z orders-db 5432; do sleep 2; done"``)."""
    out: list[DependencyRef] = []
    for words in _script_words([str(a) for a in argv]):
        out += list(_refs_of_command(words, source))
    return tuple(dict.fromkeys(out))


def refs_from_links(links: Iterable[str]) -> tuple[DependencyRef, ...]:
    """Docker links (``/orders-db-1:/api-1/database`` or ``orders-db-1:database``): the alias a
    container reaches the linked one by."""
    out = []
    for link in links:
        target, _, alias = link.partition(":")
        name = alias.rsplit("/", 1)[-1] or target.rsplit("/", 1)[-1]
        if is_host(name):
            out.append(DependencyRef(host=name.lower(), source=f"link {target.strip('/')}"))
    return tuple(dict.fromkeys(out))


# ---------------------------------------------------------------------------- resolution
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost", "0.0.0.0"})
_HOST_GATEWAY = frozenset({"host.docker.internal", "host-gateway", "host.minikube.internal", "gateway.docker.internal"})


@dataclass(frozen=True)
class Resolution:
    """Where an address leads from where the caller runs: the profile service (and the runtime
    that serves it that way), or nothing, with the reason in words."""

    service: str | None
    runtime: Runtime | None
    how: str
    host_port: bool = False
    """Reached through a port on this host (whoever holds it), not by a runtime's own name."""
    kind: Literal["outside", "loopback", "port", "address"] = "outside"
    """Why no service, when none: outside the profile, the caller's own loopback, a port the
    service does not serve, an address of the host the service's port does not listen on."""


@dataclass
class _Book:
    """Names and addresses of every profile service, per runtime that answers to them."""

    compose: dict[str, str] = field(default_factory=dict)
    kube: dict[str, str] = field(default_factory=dict)
    kube_ports: dict[str, frozenset[int]] = field(default_factory=dict)
    kube_service_of: dict[str, str] = field(default_factory=dict)
    """A name or ClusterIP -> the Service it belongs to (for the ports that Service serves)."""


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _service_names(svc: KubeServiceState, namespace: str | None) -> list[str]:
    names = [svc.name]
    if namespace:
        names += [f"{svc.name}.{namespace}", f"{svc.name}.{namespace}.svc", f"{svc.name}.{namespace}.svc.cluster.local"]
    if svc.cluster_ip and svc.cluster_ip != "None":
        names.append(svc.cluster_ip)
    return names


def compose_owners(profile: Profile) -> dict[tuple[str, str], str]:
    """(compose project, compose service) -> profile service: one lookup per container instead of
    one per container and service."""
    return {(profile.compose_for(s).project, profile.compose_service_name(s)): s for s in profile.services}


def _containers_of(snapshot: Snapshot, profile: Profile) -> dict[str, list[Container]]:
    """Every container (in any state) of each profile service."""
    owners = compose_owners(profile)
    out: dict[str, list[Container]] = {}
    for c in snapshot.containers:
        service = owners.get((c.compose_project or "", c.compose_service or ""))
        if service is not None:
            out.setdefault(service, []).append(c)
    return out


def _book(snapshot: Snapshot, profile: Profile, view: StackView) -> _Book:
    book = _Book()
    containers = _containers_of(snapshot, profile)
    for service in profile.services:
        book.compose[profile.compose_service_name(service)] = service
        for c in containers.get(service, ()):
            book.compose[c.name.lower()] = service
            for ip in c.ip_addresses:
                book.compose[ip] = service
    for c in snapshot.containers:  # link aliases lead to the linked container's service
        for ref in c.targets:
            if ref.source.startswith("link "):
                linked = ref.source.removeprefix("link ").rsplit("/", 1)[-1].lower()
                if linked in book.compose:
                    book.compose.setdefault(ref.host, book.compose[linked])
    kube = snapshot.kubernetes
    if kube is None:
        return book
    for service, spec in profile.services.items():
        if spec.kubernetes is None:
            continue
        placement = view.placements.get(service)
        pods = placement.pods if placement is not None else ()
        workloads = placement.workloads if placement is not None else ()
        label_sets = [dict(labels) for labels in {tuple(sorted(p.labels.items())) for p in pods}]
        selected = [
            s
            for s in kube.services
            if s.name == spec.kubernetes.service
            or any(_selects(s.selector, w.selector) for w in workloads)
            or any(_selects(s.selector, labels) for labels in label_sets)
        ]
        book.kube.setdefault(spec.kubernetes.name, service)
        if spec.kubernetes.service:
            book.kube[spec.kubernetes.service] = service
        for svc in selected:
            for name in _service_names(svc, kube.namespace):
                book.kube[name.lower()] = service
                book.kube_service_of[name.lower()] = svc.name
            book.kube_ports[svc.name] = frozenset(p.port for p in svc.ports)
        for pod in pods:
            if pod.pod_ip:
                book.kube[pod.pod_ip] = service
    return book


@dataclass(frozen=True)
class Origin:
    """Where a connection starts: the runtime, and for a container whether it shares the host's
    network (then 127.0.0.1 is the host's)."""

    runtime: Runtime
    host_networked: bool = False


class AddressBook:
    """Resolves the addresses a failing service names to profile services, from where it runs."""

    def __init__(self, snapshot: Snapshot, profile: Profile, view: StackView) -> None:
        self._snapshot = snapshot
        self._profile = profile
        self._view = view
        self._book = _book(snapshot, profile, view)
        self.containers = _containers_of(snapshot, profile)
        """Every container of each profile service, in any state."""

    def _host_port(self, port: int | None, shown: str, host: str | None = None) -> Resolution:
        """An address on this host: the profile service that declares the port (whoever holds it),
        unless the port's listeners do not take that address (a server on 127.0.0.1 only, reached
        at ::1 because ``localhost`` resolves to it first): then nothing answers there."""
        service = self._profile.service_for_port(port) if port is not None else None
        if service is None:
            return Resolution(None, None, f"{shown}, which no profile service provides")
        owners = self._view.port_owners.get(port or 0, ())
        listeners = [listener for owner in owners for listener in owner.listeners]
        if host is not None and _is_ip(host) and listeners and not any(_takes(lst.address, host) for lst in listeners):
            family = "IPv6" if ipaddress.ip_address(host.strip("[]")).version == 6 else "IPv4"
            held = ", ".join(sorted({lst.display for lst in listeners}))
            return Resolution(
                None,
                None,
                f"{shown}, but profile port {port} of {service} listens on {held} only: nothing takes {family} "
                f"connections to {host.strip('[]')}",
                kind="address",
            )
        runtime = next((o.runtime for o in owners if o.in_profile), None)
        return Resolution(service, runtime or Runtime.HOST, f"{shown}, profile port {port} of {service}", True)

    def resolve(self, host: str | None, port: int | None, origin: Origin) -> Resolution:
        """The profile service at ``host:port`` as seen from ``origin``, or why none is."""
        bracketed = f"[{host.strip('[]')}]" if host and ":" in host else host
        shown = f"{bracketed}:{port}" if host and port is not None else (host or f"port {port}")
        name = _clean_host(host) if host else None
        if name is None or name in _LOOPBACK:
            if origin.runtime is Runtime.HOST or (origin.runtime is Runtime.COMPOSE and origin.host_networked):
                return self._host_port(port, shown, name if name is not None and _is_ip(name) else None)
            where = "its pod" if origin.runtime is Runtime.KUBERNETES else "its container"
            return Resolution(
                None,
                None,
                f"{shown}, but inside {where} that address is {where} itself, not another service",
                kind="loopback",
            )
        if name in _HOST_GATEWAY:
            return self._host_port(port, shown)
        first = name.split(".", 1)[0]
        if origin.runtime is Runtime.KUBERNETES:
            hit = self._book.kube.get(name) or (self._book.kube.get(first) if "." in name else None)
            if hit is None and "." in name:  # a StatefulSet pod behind a headless Service: pod-0.svc
                second = name.split(".")[1]
                hit = self._book.kube.get(second)
            if hit is not None:
                return self._kube_resolution(hit, name if name in self._book.kube else first, port, shown)
            other = self._book.compose.get(name)
            if other is not None:
                return Resolution(
                    other, Runtime.COMPOSE, f"{shown}, the compose service {other}, which a pod cannot reach by name"
                )
            return Resolution(None, None, f"{shown}, which no profile service provides")
        if origin.runtime is Runtime.COMPOSE:
            hit = self._book.compose.get(name)
            if hit is not None:
                return Resolution(hit, Runtime.COMPOSE, f"{shown}, the compose service {hit}")
            other = self._book.kube.get(name) or self._book.kube.get(first)
            if other is not None and not _is_ip(name):
                return Resolution(
                    other,
                    Runtime.KUBERNETES,
                    f"{shown}, the Kubernetes Service of {other}, which a compose container cannot reach by name",
                )
            return Resolution(None, None, f"{shown}, which no profile service provides")
        hit = self._book.compose.get(name) if _is_ip(name) else None
        if hit is not None:
            return Resolution(hit, Runtime.COMPOSE, f"{shown}, a container of {hit}")
        if name == self._snapshot.hostname.lower():
            return self._host_port(port, shown)
        return Resolution(None, None, f"{shown}, which no profile service provides")

    def _kube_resolution(self, service: str, name: str, port: int | None, shown: str) -> Resolution:
        svc = self._book.kube_service_of.get(name)
        served = self._book.kube_ports.get(svc or "", frozenset())
        if port is not None and served and port not in served:
            listed = ", ".join(str(p) for p in sorted(served))
            return Resolution(
                None,
                None,
                f"{shown}, but Service {svc} of {service} serves port(s) {listed}, not {port}",
                kind="port",
            )
        return Resolution(service, Runtime.KUBERNETES, f"{shown}, the Kubernetes Service of {service}")


# ---------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Edge:
    """``source`` needs ``target``, as ``via`` says (``env DATABASE_URL -> orders-db:5432``)."""

    source: str
    target: str
    runtime: Runtime
    via: str


@dataclass(frozen=True)
class DependencyGraph:
    """Who depends on whom in the stack, with the declaration behind each edge."""

    edges: tuple[Edge, ...] = ()

    def needs(self, service: str) -> tuple[Edge, ...]:
        """What ``service`` depends on, in declaration order."""
        return tuple(e for e in self.edges if e.source == service)

    def needed_by(self, service: str) -> tuple[Edge, ...]:
        """Who depends on ``service``."""
        return tuple(e for e in self.edges if e.target == service)


def origin_of_container(container: Container) -> Origin:
    """Where a container's connections start."""
    return Origin(Runtime.COMPOSE, container.host_networked)


def declared_refs(
    containers: Sequence[Container], placement: ServicePlacement | None
) -> list[tuple[DependencyRef, Origin]]:
    """Every address a service is declared to need, with where it connects from: its compose
    containers' depends_on, links, env and command; its pods' (init) containers' env and args;
    its host processes' command lines."""
    out: list[tuple[DependencyRef, Origin]] = []
    for c in containers:
        origin = origin_of_container(c)
        out += [(DependencyRef(host=d.lower(), source="compose depends_on"), origin) for d in c.depends_on]
        out += [(ref, origin) for ref in c.targets]
    pods: Sequence[PodState] = placement.pods if placement is not None else ()
    specs = {(kc.init, kc.name, kc.targets) for pod in pods for kc in (*pod.init_containers, *pod.containers)}
    for init, name, targets in sorted(specs, key=lambda spec: (not spec[0], spec[1])):  # replicas share a spec
        kind = "init container" if init else "container"
        out += [
            (ref.model_copy(update={"source": f"{kind} {name}: {ref.source}"}), Origin(Runtime.KUBERNETES))
            for ref in targets
        ]
    processes: Sequence[ProcessInfo] = placement.processes if placement is not None else ()
    for process in processes:
        out += [(ref, Origin(Runtime.HOST)) for ref in refs_from_argv(process.cmdline, "command line")]
    return list(dict.fromkeys(out))


def dependency_graph(profile: Profile, view: StackView, book: AddressBook) -> DependencyGraph:
    """The graph of the whole stack, one edge per (dependent, dependency, declaration)."""
    edges: list[Edge] = []
    for service in profile.services:
        for ref, origin in declared_refs(book.containers.get(service, ()), view.placements.get(service)):
            found = book.resolve(ref.host, ref.port, origin)
            if found.service is not None and found.service != service:
                via = f"{ref.source} -> {ref.display}"
                edges.append(Edge(service, found.service, found.runtime or origin.runtime, via))
    return DependencyGraph(edges=tuple(dict.fromkeys(edges)))
