"""Findings: the diagnosis, each with evidence, a severity and exact commands for this host."""

from __future__ import annotations

from pydantic import Field

from stackwarden.model.base import CrashCategory, Frozen, Mode, Runtime, Severity


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
