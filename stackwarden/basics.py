"""What every layer speaks, importable without pydantic: the enumerations of the domain and
where the default profile is. The CLI reads its options with these before it knows whether it
needs the models at all (an audit answered by a running ``serve`` never loads them).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

BUNDLED_PROFILE = "reconciliation-platform.yaml"


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


def bundled_profile_path() -> Path:
    """The bundled profile modelling the seed's stack.

    Found through the package (``stackwarden/bundled_profiles`` ships in the wheel; in a checkout
    it is a link to ``profiles/``), so it works from an installed package and from any working
    directory.
    """
    return (Path(__file__).parent / "bundled_profiles" / BUNDLED_PROFILE).resolve()


def default_profile_path() -> Path:
    """``$STACKWARDEN_PROFILE`` when set, else the bundled profile: the one default the CLI and
    every flow parameter share, so a scheduled run never depends on its working directory."""
    env = os.environ.get("STACKWARDEN_PROFILE")
    return Path(env) if env else bundled_profile_path()
