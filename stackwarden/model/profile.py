"""The stack profile: what one application stack is and where it may run.

A profile is the scope of every action stackwarden takes: only the compose
project, Kubernetes namespace/workloads and host executables named here are ever touched.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import signal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from stackwarden.model.base import Frozen, Mode, Runtime

Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")]


CLEAN_STOP_SIGNALS = frozenset({"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGPWR"})
"""Signals that ask a process to exit (it may flush and close first). A stateful service may only
be stopped with one of these: SIGKILL loses unflushed data, SIGSTOP does not end it at all."""


def signal_name(raw: str | None) -> str | None:
    """``SIGINT``, ``INT``, ``int`` or ``2`` -> ``SIGINT``; None for nothing or a number that is no
    signal. Docker stores an image's STOPSIGNAL as written, so every spelling occurs."""
    text = (raw or "").strip().upper()
    if not text:
        return None
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            return None
    return text if text.startswith("SIG") else f"SIG{text}"


def clean_stop_signal(configured: str | None) -> str:
    """The container's own stop signal when it asks for a clean exit, else SIGTERM: an image that
    says SIGKILL (or 9, or KILL) must not decide how a stateful service ends."""
    name = signal_name(configured)
    return name if name in CLEAN_STOP_SIGNALS else "SIGTERM"


NEVER_STOPS = frozenset({"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT", "SIGCHLD", "SIGWINCH", "SIGURG"})
"""Signals that do not end a process: as a stop signal they would leave it running (or frozen)."""


class ProfileModel(Frozen):
    """Base of every profile model: strict types (the profile is the scope of
    every action, so it must mean exactly what it says). ``true`` is not a port, ``1`` is not a
    boolean, ``5`` is not a string. The loader hands lists over as tuples; enum fields opt out
    with ``Field(strict=False)`` so YAML can name them by value (a new enum field must too)."""

    model_config = ConfigDict(strict=True)


class NoHomePolicy(StrEnum):
    """What a mode does with a service that has no home in the mode's runtime (e.g. a monitoring
    service without a ``kubernetes`` section, in k8s-only). Stated per service in the profile and
    shown in every plan, so nobody learns it from a surprise."""

    STOP = "stop"
    LEAVE = "leave"
    REFUSE = "refuse"


class Timeouts(ProfileModel):
    """Connect and read timeouts of every Docker and Kubernetes API call. A hung engine or
    apiserver (accepts, never answers) must cost an audit seconds, not minutes."""

    connect_seconds: float = Field(default=3.0, gt=0, le=60)
    read_seconds: float = Field(default=5.0, gt=0, le=300)


class SwitchSettings(ProfileModel):
    """How a switch of this stack decides that its result holds."""

    settle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description=(
            "Verify passes only after the mode's invariants held on consecutive observations spanning this "
            "many seconds: a supervisor that restarts a stopped process, or a container that dies right after "
            "its start, fails verify instead of being reported switched."
        ),
    )


class HealthCheck(ProfileModel):
    """How verify decides a service is up: a TCP connect or an HTTP GET that answers < 400."""

    tcp: Port | None = None
    http: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        if (self.tcp is None) == (self.http is None):
            raise ValueError("set exactly one of 'tcp' or 'http'")
        return self


USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
"""A login name as useradd takes it. A name of digits alone is refused: ``ps`` and psutil print an
unknown uid as its number, so "1000" would silently mean a uid; write the number instead."""

MAX_UID = 2**32 - 2
"""The largest uid (4294967295 is ``(uid_t) -1``, "no user")."""


def _one_or_more(value: object) -> object:
    """``user: postgres`` and ``user: [postgres]`` mean the same; so do ``exe: PATH`` and ``[PATH]``."""
    return (value,) if isinstance(value, str | int) and not isinstance(value, bool) else value


_ONE_OR_MORE_STRINGS = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}, {"type": "null"}]}
)
_ONE_OR_MORE_USERS = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string"},
            {"type": "integer", "minimum": 0},
            {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]},
                "minItems": 1,
            },
            {"type": "null"},
        ]
    }
)


class HostMatcher(ProfileModel):
    """Which host processes are this service: matched by port AND executable, run by an allowed user.

    Identity comes from what a process cannot forge cheaply (stackwarden.identity): the file it
    runs (``/proc/PID/exe``, resolved) and its owner. Its name (comm) and argv[0] are chosen by
    whoever starts it (``exec -a postgres sleep``) and never decide. A process on the service's
    port that is not the service is an unknown owner and is never touched (nothing outside the profile is).
    """

    executables: tuple[str, ...] = Field(
        min_length=1,
        description="Base names of the service's executable: the resolved /proc/PID/exe must have one of these "
        "names, or be the file one of them names in the system's bin directories (Debian's redis-server is a "
        "symlink to redis-check-rdb).",
    )
    exe: Annotated[tuple[str, ...] | None, BeforeValidator(_one_or_more), _ONE_OR_MORE_STRINGS] = Field(
        default=None,
        description="Absolute path(s) the process's resolved executable must be (a symlink given here is "
        "resolved on the host); when set, it replaces the base-name rule of 'executables'.",
    )
    user: Annotated[tuple[str | int, ...] | None, BeforeValidator(_one_or_more), _ONE_OR_MORE_USERS] = Field(
        default=None,
        description="User name(s) or uid(s) the process must run as (real, effective and saved uid). Default: "
        "only processes of the user stackwarden runs as (root under serve).",
    )
    systemd_unit: str | None = None
    stop_signal: str = "SIGTERM"
    grace_period_seconds: float = Field(default=30.0, gt=0, le=3600)
    start_command: tuple[str, ...] | None = None

    @field_validator("stop_signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        if value not in signal.Signals.__members__:
            raise ValueError(f"unknown signal {value!r}; use a name such as SIGTERM or SIGINT")
        if value in NEVER_STOPS:
            raise ValueError(f"{value} does not end a process; use SIGTERM, SIGINT or SIGQUIT")
        return value

    @field_validator("executables")
    @classmethod
    def _basenames(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for exe in value:
            if "/" in exe or not exe.strip() or "\x00" in exe:
                raise ValueError(f"{exe!r}: give the executable's base name, not a path (paths go in 'exe')")
        return value

    @field_validator("exe")
    @classmethod
    def _absolute_paths(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one path, or leave 'exe' out")
        for path in value:
            if not path.startswith("/") or path.startswith("//") or "\x00" in path or posixpath.normpath(path) != path:
                raise ValueError(f"{path!r}: give an absolute, normalised path (no '..', '.', '//' or trailing '/')")
        return value

    @field_validator("user")
    @classmethod
    def _users(cls, value: tuple[str | int, ...] | None) -> tuple[str | int, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one user, or leave 'user' out")
        for user in value:
            if isinstance(user, int) and not 0 <= user <= MAX_UID:
                raise ValueError(f"uid {user} is out of range 0..{MAX_UID}")
            if isinstance(user, str) and not USER_NAME.fullmatch(user):
                raise ValueError(
                    f"{user!r} is not a user name (letters, digits, '_', '.', '-', not starting with a digit); "
                    "give a uid as a number"
                )
        return value

    @property
    def names(self) -> str:
        """The executables as one phrase for messages: ``postgres or postmaster``."""
        return " or ".join(self.executables)


MAX_REPLICAS = 1000
"""The most replicas a profile may give a workload, and so the most a switch ever restores: a
count recorded on the object above it was not written by stackwarden (see planner.recorded_replicas)."""


class KubeWorkload(ProfileModel):
    """The service's Kubernetes side: the workload, and the Service object in front of it."""

    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    name: Name
    service: Name | None = None
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)


class ServiceSpec(ProfileModel):
    """One service of the stack and how to recognise it in each runtime.

    ``ports`` may be empty: a worker or scheduler listens on nothing, and is then recognised by
    its compose service, its workload or its executable alone.
    """

    ports: tuple[Port, ...] = ()
    stateful: bool = False
    group: str = "core"
    description: str = ""
    compose_service: Name | None = None
    compose_project: Name | None = Field(
        default=None, description="The compose project that runs this service, when the profile lists several."
    )
    kubernetes: KubeWorkload | None = None
    host: HostMatcher | None = None
    health: HealthCheck | None = None
    runtime: Runtime | None = Field(
        default=None, strict=False, description="The single runtime this service uses in hybrid-guarded mode."
    )
    no_home: NoHomePolicy = Field(
        default=NoHomePolicy.REFUSE,
        strict=False,
        description=(
            "What a mode does with this service when it has no home in the mode's runtime (no "
            "'kubernetes' section in k8s-only): 'stop' it wherever it runs, 'leave' it as it runs "
            "(not verified), or 'refuse' the switch."
        ),
    )

    @model_validator(mode="after")
    def _stateful_stops_cleanly(self) -> ServiceSpec:
        if self.stateful and self.host is not None and self.host.stop_signal not in CLEAN_STOP_SIGNALS:
            raise ValueError(
                f"host.stop_signal {self.host.stop_signal} does not ask a stateful service for a clean exit; "
                "use one of " + ", ".join(sorted(CLEAN_STOP_SIGNALS))
            )
        return self


class ComposeSpec(ProfileModel):
    """The Compose project that runs the stack; containers are matched by its project label."""

    project: Name
    files: tuple[str, ...] = ("docker-compose.yml",)
    working_dir: str | None = None
    network: str | None = None
    services: tuple[Name, ...] = Field(
        default=(),
        description="Profile services this project runs (another way to say services.<name>.compose_project).",
    )


# Context names a catch-all pattern would match; a pattern matching all of them is a catch-all.
_CONTEXT_PROBES = (
    "a",
    "Z",
    "_",
    "prod",
    "production-cluster",
    "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
    "gke_project_europe-west1_prod",
    "admin@prod.example.com",
)


def is_catch_all(pattern: str) -> bool:
    """True when a glob pattern matches any context name (``*``, ``**``, ``?*``, ``[!.]*`` ...)."""
    return all(fnmatch.fnmatchcase(probe, pattern) for probe in _CONTEXT_PROBES)


def _normalise_server(url: str) -> str:
    """``HTTPS://Host:6443/`` and ``https://host:6443`` name the same API server."""
    scheme, sep, rest = url.strip().partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}{sep}{host.lower()}{slash}{path}".rstrip("/")


class KubernetesSpec(ProfileModel):
    """The cluster side: a namespace and the contexts (and API servers) where remediation is
    allowed. A context name is only a local label, and anyone can name a production context
    ``minikube``; ``allowed_servers`` pins the API server URL the context must point at."""

    namespace: Name
    allowed_contexts: tuple[str, ...] = ("minikube", "kind-*", "docker-desktop")
    allow_any_context: bool = Field(
        default=False,
        description="Required to use a catch-all pattern such as '*' in allowed_contexts; every report warns.",
    )
    allowed_servers: tuple[str, ...] | None = Field(
        default=None,
        description="Glob patterns for the cluster API URL (e.g. 'https://127.0.0.1:*'); when set, a context "
        "is allowed only if its name AND its server match.",
    )
    context: str | None = None
    kubeconfig: str | None = None

    @model_validator(mode="after")
    def _catch_all_is_explicit(self) -> KubernetesSpec:
        wild = [p for p in self.allowed_contexts if is_catch_all(p)]
        if wild and not self.allow_any_context:
            raise ValueError(
                f"allowed_contexts pattern {wild[0]!r} matches every context; set allow_any_context: true "
                "to mean it (and prefer allowed_servers to pin the cluster)"
            )
        return self

    @property
    def any_context(self) -> bool:
        """True when remediation is allowed in every context (warned about in every report)."""
        return self.allow_any_context and any(is_catch_all(p) for p in self.allowed_contexts)

    def allows(self, context: str, server: str | None = None) -> bool:
        """True when ``context`` matches the allowlist's glob patterns and, if ``allowed_servers``
        is set, its API ``server`` URL matches one of those patterns too (unknown server: no)."""
        if not any(fnmatch.fnmatchcase(context, pattern) for pattern in self.allowed_contexts):
            return False
        if self.allowed_servers is None:
            return True
        if not server:
            return False
        url = _normalise_server(server)
        return any(fnmatch.fnmatchcase(url, _normalise_server(p)) for p in self.allowed_servers)


class Profile(ProfileModel):
    """A whole stack: services, its compose project(s), the cluster side and the default mode.

    ``compose`` is one project or a list of them (a stack split across projects). The first is
    the default project of services that name none; the others are kept in ``more_compose``.
    """

    name: Name
    description: str = ""
    default_mode: Mode = Field(default=Mode.COMPOSE_ONLY, strict=False)
    compose: ComposeSpec
    more_compose: tuple[ComposeSpec, ...] = Field(
        default=(), description="Further compose projects; written as a list under 'compose'."
    )
    kubernetes: KubernetesSpec | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    switch: SwitchSettings = Field(default_factory=SwitchSettings)
    services: dict[Name, ServiceSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _compose_list(cls, data: object) -> object:
        """``compose: [a, b]`` -> ``compose: a`` plus ``more_compose: [b]``: one field for the
        default project keeps every single-project profile and caller unchanged."""
        if isinstance(data, dict) and isinstance(data.get("compose"), list | tuple):
            projects = list(data["compose"])
            if not projects:
                raise ValueError("compose: the list of compose projects is empty")
            if "more_compose" in data:
                raise ValueError("compose: give the projects as one list under 'compose', not also 'more_compose'")
            data = {**data, "compose": projects[0], "more_compose": tuple(projects[1:])}
        return data

    @model_validator(mode="after")
    def _projects_consistent(self) -> Profile:
        names = [c.project for c in self.compose_projects]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"compose project {dupes[0]!r} is listed twice")
        listed: dict[str, str] = {}
        for spec in self.compose_projects:
            for service in spec.services:
                if service not in self.services:
                    raise ValueError(
                        f"compose project {spec.project!r} lists {service!r}, which is not a profile service"
                    )
                if service in listed:
                    raise ValueError(
                        f"service {service!r} is listed by compose projects {listed[service]!r} and {spec.project!r}"
                    )
                listed[service] = spec.project
        for name, svc in self.services.items():
            if svc.compose_project is None:
                continue
            if svc.compose_project not in names:
                raise ValueError(
                    f"services.{name}.compose_project: {svc.compose_project!r} is not one of the profile's "
                    f"compose projects ({', '.join(names)})"
                )
            if listed.get(name, svc.compose_project) != svc.compose_project:
                raise ValueError(
                    f"services.{name}.compose_project is {svc.compose_project!r} but project {listed[name]!r} lists it"
                )
        return self

    @model_validator(mode="after")
    def _ports_unique(self) -> Profile:
        seen: dict[int, str] = {}
        for name, spec in self.services.items():
            for port in spec.ports:
                if port in seen:
                    raise ValueError(
                        f"port {port} is declared by both {seen[port]!r} and {name!r}; a port belongs to one service"
                    )
                seen[port] = name
        return self

    @model_validator(mode="after")
    def _hybrid_assignment_complete(self) -> Profile:
        if self.default_mode is Mode.HYBRID_GUARDED:
            missing = [n for n, s in self.services.items() if s.runtime is None]
            if missing:
                raise ValueError("default_mode hybrid-guarded needs services.<name>.runtime for: " + ", ".join(missing))
        return self

    def has_home(self, service: str, runtime: Runtime) -> bool:
        """Whether the profile says how ``service`` runs in ``runtime``: a compose service always
        (its compose name defaults to its own), Kubernetes only with a ``kubernetes`` section in
        both the service and the profile, the host only with a ``host`` matcher."""
        spec = self.services[service]
        if runtime is Runtime.KUBERNETES:
            return spec.kubernetes is not None and self.kubernetes is not None
        if runtime is Runtime.HOST:
            return spec.host is not None
        return True

    @property
    def compose_projects(self) -> tuple[ComposeSpec, ...]:
        """Every compose project of the stack, the default one first."""
        return (self.compose, *self.more_compose)

    def compose_for(self, service: str) -> ComposeSpec:
        """The compose project that runs ``service``: the one it names, the one listing it, else
        the default project."""
        named = self.services[service].compose_project
        for spec in self.compose_projects:
            if spec.project == named or (named is None and service in spec.services):
                return spec
        return self.compose

    def compose_service_name(self, service: str) -> str:
        """The compose service label of a profile service (defaults to its own name)."""
        return self.services[service].compose_service or service

    def service_for_port(self, port: int) -> str | None:
        """The profile service that declares ``port``, if any."""
        for name, spec in self.services.items():
            if port in spec.ports:
                return name
        return None

    def all_ports(self) -> tuple[int, ...]:
        """Every port the profile declares, sorted."""
        return tuple(sorted(p for spec in self.services.values() for p in spec.ports))

    def host_lookup(self) -> HostLookup:
        """What the host observation needs beyond the ports: the names and paths to search for
        (port-less services) and every name and path whose installed file decides identity."""
        matchers = [spec.host for spec in self.services.values() if spec.host is not None]
        portless = [spec.host for spec in self.services.values() if spec.host is not None and not spec.ports]
        return HostLookup(
            search=tuple(sorted({n for m in portless for n in (*m.executables, *(m.exe or ()))})),
            resolve=tuple(sorted({n for m in matchers for n in (*m.executables, *(m.exe or ()))})),
        )


class HostLookup(Frozen):
    """What the host observation looks for besides the profile's ports (``Profile.host_lookup``).

    ``search``: names and paths of port-less services, whose processes no socket leads to; every
    process answering to one of them is observed (the identity rule then decides which are the
    service). ``resolve``: every executable name and path the profile gives, looked up on this
    host (a name in the system's bin directories, a path through its symlinks), because the file
    a process runs is what identifies it."""

    search: tuple[str, ...] = ()
    resolve: tuple[str, ...] = ()
