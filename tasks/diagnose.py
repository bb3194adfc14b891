"""Diagnosis and reporting tasks: the pipeline's steps, made observable in Prefect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.variables import Variable

from stackwarden.model.base import Mode
from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import (
    artifact_key,
    diagnose_step,
    finding_changes,
    findings_summary,
    findings_table,
    render_step,
)
from tasks.publish import event, markdown_artifact, table_artifact

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


def _backoff(call: Callable[[], T], what: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call``, retried with doubling delays on any server error; the last error is raised."""
    for attempt in range(MEMORY_ATTEMPTS):
        try:
            return call()
        except Exception as exc:
            if attempt == MEMORY_ATTEMPTS - 1:
                raise
            get_run_logger().info("%s failed (%s); retrying", what, exc)
            sleep(MEMORY_BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def open_findings_variable(profile: Profile) -> str:
    """The Prefect Variable that remembers the profile's open finding ids between audits."""
    return f"stackwarden-open-findings-{profile.name}".replace(".", "-")


@task(name="emit-finding-events", task_run_name="emit-finding-events-{profile.name}", persist_result=False)
def emit_finding_events_task(result: AuditResult, profile: Profile) -> dict[str, Any]:
    """Emit ``stackwarden.finding.opened``/``.resolved`` against the previous audit's open set,
    kept in a Prefect Variable so automations can notify or trigger a switch.

    The Variable is written only when the open set changed, and a server that stays busy
    costs a warning, never the audit: the flow runs this beside the report, off its path."""
    name = open_findings_variable(profile)
    log = get_run_logger()
    try:
        previous: object = _backoff(lambda: Variable.get(name, default=[]), f"reading {name}")
    except Exception as exc:
        log.warning("open findings not compared: reading %s failed: %s", name, exc)
        return {"opened": [], "resolved": [], "written": False, "error": str(exc)}
    changes = finding_changes(previous, result.findings)
    for finding in changes.opened:
        event(
            "stackwarden.finding.opened",
            resource={"prefect.resource.id": f"stackwarden.finding.{profile.name}.{finding.id}"},
            payload={
                "severity": str(finding.severity),
                "title": finding.title,
                "summary": finding.summary,
            },
        )
    for finding_id in changes.resolved:
        event(
            "stackwarden.finding.resolved",
            resource={"prefect.resource.id": f"stackwarden.finding.{profile.name}.{finding_id}"},
        )
    written = False
    if changes.changed:
        try:
            _backoff(lambda: Variable.set(name, list(changes.open_ids), overwrite=True), f"writing {name}")
            written = True
        except Exception as exc:
            log.warning("open findings not remembered: writing %s failed: %s", name, exc)
    return {
        "opened": [f.id for f in changes.opened],
        "resolved": list(changes.resolved),
        "written": written,
    }
