"""Diagnosis and reporting tasks: the pipeline's steps, made observable in Prefect."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.variables import Variable

from stackwarden.events import changes_since, finding_record, open_set, previous_open_set, transitions
from stackwarden.model.base import Mode
from stackwarden.model.finding import AuditResult, Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import artifact_key, diagnose_step, findings_summary, findings_table, render_step
from tasks.publish import event, markdown_artifact, set_variable, table_artifact, variable_value

T = TypeVar("T")

# The open-findings memory is a convenience for automations, not part of the audit's answer:
# a busy server (503) gets a few spaced retries, and then a warning instead of a failed audit.
MEMORY_ATTEMPTS = 4
MEMORY_BACKOFF_SECONDS = 0.5


@task(name="diagnose", task_run_name="diagnose-{profile.name}", persist_result=False)
def diagnose_task(snapshot: Snapshot, profile: Profile, requested: Mode | None = None) -> AuditResult:
    """Run every rule and suggest a mode."""
    result = diagnose_step(snapshot, profile, requested)
    get_run_logger().info("%d finding(s): %s", len(result.findings), findings_summary(result.findings))
    return result


@task(name="publish-report", task_run_name="publish-report-{profile.name}", persist_result=False)
def publish_report_task(result: AuditResult, snapshot: Snapshot, profile: Profile) -> str:
    """The markdown report and the findings table as artifacts; returns the markdown."""
    markdown = render_step(result, snapshot, profile)
    markdown_artifact(
        markdown=markdown,
        key=artifact_key(profile, "audit-report"),
        description=f"stackwarden audit of {profile.name}",
    )
    table_artifact(
        rows=findings_table(result),
        key=artifact_key(profile, "findings"),
        description=f"Findings of the audit of {profile.name}",
    )
    return markdown


def with_backoff(
    call: Callable[[], T],
    what: str,
    log: Callable[..., object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call``, retried with doubling delays on any server error (a busy server answers 503);
    after ``MEMORY_ATTEMPTS`` the last error is raised for the caller to turn into a warning."""
    for attempt in range(MEMORY_ATTEMPTS):
        try:
            return call()
        except Exception as exc:
            if attempt == MEMORY_ATTEMPTS - 1:
                raise
            (log or get_run_logger().info)("%s failed (%s); retrying", what, exc)
            sleep(MEMORY_BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def open_findings_variable(profile: Profile, host: str) -> str:
    """One open set per profile AND host: two hosts auditing the same profile on one server must
    not close each other's findings. Variable names take lowercase letters, digits, - and _."""
    raw = f"stackwarden-open-findings-{profile.name}-{host}".lower()
    return re.sub(r"[^a-z0-9_-]", "-", raw)


@dataclass(frozen=True)
class Published:
    """What one comparison with the stored open set did."""

    previous: dict[str, dict[str, object]]
    opened: list[Finding]
    resolved: list[str]
    written: bool
    error: str | None = None


def publish_finding_changes(
    findings: tuple[Finding, ...],
    profile: Profile,
    host: str,
    warn: Callable[..., object],
    note: Callable[..., object],
) -> Published:
    """Emit ``stackwarden.finding.opened``/``.resolved`` against the open set kept in a Prefect
    Variable, and store the new set (only when it changed). Each event's resource carries host,
    profile, rule and severity as labels (triggers match labels), so one server tells a fleet's
    hosts apart; a ``resolved`` event says which finding it closes. The scheduled audit and the
    live view of ``serve`` both publish through here: whichever sees a change first emits it, the
    other finds it already stored. Retries are noted (``note``); a server that stays busy (503)
    costs a warning (``warn``), never the caller."""
    name = open_findings_variable(profile, host)
    labels = {"stackwarden.host": host, "stackwarden.profile": profile.name}
    try:
        stored: object = with_backoff(lambda: Variable.get(name, default={}), f"reading {name}", note)
    except Exception as exc:
        warn("open findings not compared: reading %s failed: %s", name, exc)
        return Published(previous={}, opened=[], resolved=[], written=False, error=str(exc))
    previous = previous_open_set(stored)
    opened, resolved = transitions(list(previous), findings)
    for finding in opened:
        event(
            "stackwarden.finding.opened",
            resource={
                "prefect.resource.id": f"stackwarden.finding.{host}.{profile.name}.{finding.id}",
                "stackwarden.rule": finding.rule,
                "stackwarden.severity": str(finding.severity),
                **labels,
            },
            payload={"id": finding.id, "host": host, **finding_record(finding, summary_max=2000)},
        )
    for finding_id in resolved:
        closed = previous[finding_id]
        event(
            "stackwarden.finding.resolved",
            resource={
                "prefect.resource.id": f"stackwarden.finding.{host}.{profile.name}.{finding_id}",
                "stackwarden.rule": str(closed.get("rule", "unknown")),
                "stackwarden.severity": str(closed.get("severity", "unknown")),
                **labels,
            },
            payload={"id": finding_id, "host": host, **closed},
        )
    current = variable_value(open_set(findings))  # compared as stored: sanitized
    written = False
    if current != previous:
        try:
            with_backoff(lambda: set_variable(name, current), f"writing {name}", note)
            written = True
        except Exception as exc:
            warn("open findings not remembered: writing %s failed: %s", name, exc)
    return Published(previous=previous, opened=opened, resolved=resolved, written=written)


@task(name="emit-finding-events", task_run_name="emit-finding-events-{profile.name}", persist_result=False)
def emit_finding_events_task(result: AuditResult, profile: Profile, host: str = "") -> dict[str, Any]:
    """The audit's finding events (``publish_finding_changes``), and the table of changes since
    the last audit as an artifact. The flow runs this beside the report, off its path."""
    host = host or socket.gethostname()
    log = get_run_logger()
    done = publish_finding_changes(result.findings, profile, host, log.warning, log.info)
    if done.error is not None:
        return {"opened": [], "resolved": [], "written": False, "error": done.error}
    rows = changes_since(done.previous, result.findings)
    table_artifact(
        rows or [{"change": "none", "id": "", "rule": "", "severity": "", "services": "", "summary": "nothing open"}],
        key=artifact_key(profile, "changes"),
        description=(
            f"Changes since the last audit of {profile.name} on {host}: "
            f"{len(done.opened)} new, {len(rows) - len(done.opened) - len(done.resolved)} persisting, "
            f"{len(done.resolved)} resolved"
        ),
    )
    return {"opened": [f.id for f in done.opened], "resolved": done.resolved, "written": done.written}
