"""The stack profile: what one application stack is and where it may run.

A profile is the scope of every action stackwarden takes (DESIGN.md §5.1): only the compose
project, Kubernetes namespace/workloads and host executables named here are ever touched.
"""

from __future__ import annotations

import fnmatch
import signal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from stackwarden.model.base import Frozen, Mode, Runtime

Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")]


CLEAN_STOP_SIGNALS = frozenset({"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGPWR"})
"""Signals that ask a process to exit (it may flush and close first). A stateful service may only
be stopped with one of these: SIGKILL loses unflushed data, SIGSTOP does not end it at all."""

NEVER_STOPS = frozenset({"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCONT", "SIGCHLD", "SIGWINCH", "SIGURG"})
"""Signals that do not end a process: as a stop signal they would leave it running (or frozen)."""


class NoHomePolicy(StrEnum):
    """What a mode does with a service that has no home in the mode's runtime (e.g. a monitoring
    service without a ``kubernetes`` section, in k8s-only). Stated per service in the profile and
    shown in every plan, so nobody learns it from a surprise."""

    STOP = "stop"
    LEAVE = "leave"
    REFUSE = "refuse"


class Timeouts(Frozen):
    """Connect and read timeouts of every Docker and Kubernetes API call. A hung engine or
    apiserver (accepts, never answers) must cost an audit seconds, not minutes."""

    connect_seconds: float = Field(default=3.0, gt=0, le=60)
    read_seconds: float = Field(default=5.0, gt=0, le=300)


class HealthCheck(Frozen):
    """How verify decides a service is up: a TCP connect or an HTTP GET that answers < 400."""

    tcp: Port | None = None
    http: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        if (self.tcp is None) == (self.http is None):
            raise ValueError("set exactly one of 'tcp' or 'http'")
        return self


class HostMatcher(Frozen):
    """Which host processes are this service: matched by port AND executable name.

    A process on the service's port whose executable is not listed is an unknown owner and is
    never touched (DESIGN.md §5.1).
    """

    executables: tuple[str, ...] = Field(min_length=1)
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
            if "/" in exe or not exe.strip():
                raise ValueError(f"{exe!r}: give the executable's base name, not a path")
        return value


class KubeWorkload(Frozen):
    """The service's Kubernetes side: the workload, and the Service object in front of it."""

    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    name: Name
    service: Name | None = None
    replicas: int = Field(default=1, ge=0, le=1000)


class ServiceSpec(Frozen):
    """One service of the stack and how to recognise it in each runtime."""

    ports: tuple[Port, ...] = Field(min_length=1)
    stateful: bool = False
    group: str = "core"
    description: str = ""
    compose_service: Name | None = None
    kubernetes: KubeWorkload | None = None
    host: HostMatcher | None = None
    health: HealthCheck | None = None
    runtime: Runtime | None = Field(
        default=None, description="The single runtime this service uses in hybrid-guarded mode."
    )
    no_home: NoHomePolicy = Field(
        default=NoHomePolicy.REFUSE,
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


class ComposeSpec(Frozen):
    """The Compose project that runs the stack; containers are matched by its project label."""

    project: Name
    files: tuple[str, ...] = ("docker-compose.yml",)
    working_dir: str | None = None
    network: str | None = None


class KubernetesSpec(Frozen):
    """The cluster side: a namespace and the contexts where remediation is allowed."""

    namespace: Name
    allowed_contexts: tuple[str, ...] = ("minikube", "kind-*", "docker-desktop")
    context: str | None = None
    kubeconfig: str | None = None

    def allows(self, context: str) -> bool:
        """True when ``context`` matches one of the allowlist's glob patterns."""
        return any(fnmatch.fnmatchcase(context, pattern) for pattern in self.allowed_contexts)


class Profile(Frozen):
    """A whole stack: services, the compose project, the cluster side and the default mode."""

    name: Name
    description: str = ""
    default_mode: Mode = Mode.COMPOSE_ONLY
    compose: ComposeSpec
    kubernetes: KubernetesSpec | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    services: dict[Name, ServiceSpec] = Field(min_length=1)

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
