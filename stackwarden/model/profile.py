"""The stack profile: what one application stack is and where it may run.

A profile is the scope of every action stackwarden takes (DESIGN.md §5.1): only the compose
project, Kubernetes namespace/workloads and host executables named here are ever touched.
"""

from __future__ import annotations

import fnmatch
import signal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from stackwarden.model.base import Frozen, Mode, Runtime

Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")]


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


class ComposeSpec(Frozen):
    """The Compose project that runs the stack; containers are matched by its project label."""

    project: Name
    files: tuple[str, ...] = ("docker-compose.yml",)
    working_dir: str | None = None
    network: str | None = None


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


class KubernetesSpec(Frozen):
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


class Profile(Frozen):
    """A whole stack: services, the compose project, the cluster side and the default mode."""

    name: Name
    description: str = ""
    default_mode: Mode = Mode.COMPOSE_ONLY
    compose: ComposeSpec
    kubernetes: KubernetesSpec | None = None
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
