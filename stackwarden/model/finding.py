"""Findings: the diagnosis, each with evidence, a severity and exact commands for this host."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackwarden.model.base import CrashCategory, Frozen, Mode, Runtime, Severity

LinkFailure = Literal["refused", "reset", "timeout", "unresolved", "wait"]


class DependencyFailure(Frozen):
    """What the decisive line says about a dependency: it refused, reset or timed out the
    connection, its name did not resolve, or the wait for it never ended; and the address it
    names, when it names one (``orders-db:5432``)."""

    kind: LinkFailure
    host: str | None = None
    port: int | None = None
    line: str = ""

    @property
    def target(self) -> str | None:
        """``host:port``, the host alone, ``port N``, or None when the line names no address."""
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        if host and self.port is not None:
            return f"{host}:{self.port}"
        return host or (f"port {self.port}" if self.port is not None else None)


class CrashCause(Frozen):
    """Why a service crash-loops, derived from its exit code and log signatures."""

    category: CrashCategory
    signature: str
    explanation: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()
    exit_code: int | None = None
    port: int | None = None
    decisive_line: str | None = Field(
        default=None, description="The log line that says what happened (exception, panic message, Caused by)."
    )
    alternative: CrashCategory | None = Field(
        default=None, description="The next likeliest category, e.g. code-issue behind a missing setting."
    )
    setting: str | None = Field(default=None, description="The missing environment variable or config key, if named.")
    dependency: DependencyFailure | None = Field(
        default=None, description="The dependency the failure names (refused, unresolved, waited for), if any."
    )


class Location(Frozen):
    """Where something was seen: a container, pod, workload or process."""

    runtime: Runtime
    kind: str
    name: str
    detail: str = ""


class Finding(Frozen):
    """One diagnosed fact. ``id`` is stable across runs for the same conflict, so events can
    open and resolve it; ``evidence`` holds observed facts only (PIDs, ids, log lines)."""

    id: str
    rule: str
    title: str
    severity: Severity
    services: tuple[str, ...] = ()
    runtimes: tuple[Runtime, ...] = ()
    summary: str
    evidence: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    recommendation: str = ""
    action: str = Field(default="", description="Short imperative for the status table.")
    commands: tuple[str, ...] = ()
    cause: CrashCause | None = None
    condition: str = Field(
        default="",
        description="The service's state in a few words, as a chain quotes it: 'is scaled to 0', 'crash-loops'.",
    )
    caused_by: str | None = Field(
        default=None, description="The id of the root-cause finding this one follows from (a dependency that is down)."
    )
    chain: tuple[str, ...] = Field(
        default=(), description="The services from this one to the root cause: ('web', 'api', 'orders-db')."
    )
    dependents: tuple[str, ...] = Field(
        default=(), description="On a root cause: the services that fail because of it."
    )
    gaps: tuple[str, ...] = Field(
        default=(),
        description="What of this finding's objects could not be read (a log read that timed out): the diagnosis is "
        "partial.",
    )


class ModeRecommendation(Frozen):
    """The mode stackwarden suggests, and why."""

    mode: Mode
    reasons: tuple[str, ...]


class AuditResult(Frozen):
    """What an audit produced: the snapshot it diagnosed, the findings, the suggested mode."""

    profile: str
    snapshot_taken_at: str
    findings: tuple[Finding, ...]
    recommendation: ModeRecommendation
    mode_refusals: dict[Mode, tuple[str, ...]] = Field(
        default_factory=dict,
        description=(
            "Per mode, what the switch's preflight (every check that changes nothing) refuses in the plan the "
            "report shows: the report never offers a plan the switch would refuse."
        ),
    )

    def worst(self) -> Severity:
        """The worst severity among the findings (``ok`` when there are none)."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=Severity.OK)

    def at_least_conflict(self) -> bool:
        """True when any finding is worse than ``low``, or says a service is broken (it carries a
        cause: a crash loop, a service with no ready instance), whatever its severity: the
        seed's "CONFLICTS DETECTED". "No conflicts" over a broken service is a false all-clear."""
        return any(
            f.severity.at_least(Severity.MEDIUM) or (f.cause is not None and f.severity is not Severity.OK)
            for f in self.findings
        )

    def at_least(self, severity: Severity) -> tuple[Finding, ...]:
        """Findings at ``severity`` or worse; the CLI's ``--fail-on`` gate."""
        return tuple(f for f in self.findings if f.severity.at_least(severity))
