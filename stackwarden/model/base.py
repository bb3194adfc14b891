"""Shared model configuration and the enumerations every layer speaks."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Base for domain models: immutable, and unknown fields are an error, not a silent drop.

    Frozen models can be shared between concurrently running tasks and hashed into stable ids;
    ``extra="forbid"`` turns a typo in a profile into an error that names the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class Mode(StrEnum):
    """A deployment mode: which runtime(s) a profile's services are allowed to use."""

    COMPOSE_ONLY = "compose-only"
    K8S_ONLY = "k8s-only"
    HYBRID_GUARDED = "hybrid-guarded"


class Severity(StrEnum):
    """How urgent a finding is. ``ok`` records a checked fact that needs no action."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    OK = "ok"

    @property
    def rank(self) -> int:
        """Higher is worse; lets ``--fail-on`` compare severities without a lookup table."""
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        """True when this severity is ``other`` or worse."""
        return self.rank >= other.rank


_SEVERITY_RANK = {
    Severity.OK: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Runtime(StrEnum):
    """Where a service can run."""

    COMPOSE = "compose"
    KUBERNETES = "kubernetes"
    HOST = "host"


class CrashCategory(StrEnum):
    """What a crash loop's cause calls for: only a deployment conflict is fixed by switching."""

    CODE_ISSUE = "code-issue"
    DEPLOYMENT_CONFLICT = "deployment-conflict"
    RESOURCES = "resources"
    CONFIGURATION = "configuration"
    DEPENDENCY_DOWN = "dependency-down"
    """It fails because a profile service it depends on is down: fix that one, not this one."""
    UNKNOWN = "unknown"
