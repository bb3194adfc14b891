"""Diagnosis and reporting tasks: the pure domain, made observable."""

from __future__ import annotations

import re
import socket

from prefect import get_run_logger, task
from prefect.variables import Variable

from stackwarden.events import changes_since, finding_record, open_set, previous_open_set, transitions
from stackwarden.model.base import Mode
from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.recommend import recommend_mode
from stackwarden.report import render_markdown
from stackwarden.rules import diagnose
from tasks.publish import event, markdown_artifact, table_artifact


@task(name="diagnose", task_run_name="diagnose-{profile.name}")
def diagnose_task(snapshot: Snapshot, profile: Profile, requested: Mode | None = None) -> AuditResult:
    """Run every rule and suggest a mode."""
    findings = diagnose(snapshot, profile)
    get_run_logger().info(
        "%d finding(s): %s",
        len(findings),
        ", ".join(f"{f.id}={f.severity}" for f in findings) or "none",
    )
    return AuditResult(
        profile=profile.name,
        snapshot_taken_at=snapshot.taken_at.isoformat(),
        findings=findings,
        recommendation=recommend_mode(snapshot, profile, findings, requested),
    )


def _artifact_key(profile: Profile, what: str) -> str:
    """Artifact keys must be lowercase letters, digits and dashes."""
    return f"stackwarden-{profile.name}-{what}".replace(".", "-").replace("_", "-").lower()


@task(name="publish-report", task_run_name="publish-report-{profile.name}")
def publish_report_task(result: AuditResult, snapshot: Snapshot, profile: Profile) -> str:
    """The markdown report and the findings table as artifacts; returns the markdown."""
    markdown = render_markdown(result, snapshot, profile)
    markdown_artifact(
        markdown=markdown,
        key=_artifact_key(profile, "audit-report"),
        description=f"stackwarden audit of {profile.name}",
    )
    table_artifact(
        rows=[
            {
                "id": f.id,
                "severity": str(f.severity),
                "title": f.title,
                "services": ", ".join(f.services),
                "runtimes": ", ".join(f.runtimes),
                "action": f.action,
            }
            for f in result.findings
        ],
        key=_artifact_key(profile, "findings"),
        description=f"Findings of the audit of {profile.name}",
    )
    return markdown


def open_findings_variable(profile: Profile, host: str) -> str:
    """One open set per profile AND host: two hosts auditing the same profile on one server must
    not close each other's findings. Variable names take lowercase letters, digits, - and _."""
    raw = f"stackwarden-open-findings-{profile.name}-{host}".lower()
    return re.sub(r"[^a-z0-9_-]", "-", raw)


@task(name="emit-finding-events", task_run_name="emit-finding-events-{profile.name}")
def emit_finding_events_task(result: AuditResult, profile: Profile, host: str = "") -> dict[str, list[str]]:
    """Emit ``stackwarden.finding.opened``/``.resolved`` against the previous audit's open set,
    kept in a Prefect Variable so automations can notify or trigger a switch. Each event's
    resource carries host, profile, rule and severity as labels (triggers match labels), so one
    server tells a fleet's hosts apart; a ``resolved`` event says which finding it closes. The
    Variable is written only when the open set changed."""
    host = host or socket.gethostname()
    name = open_findings_variable(profile, host)
    labels = {"stackwarden.host": host, "stackwarden.profile": profile.name}
    previous = previous_open_set(Variable.get(name, default={}))
    opened, resolved = transitions(list(previous), result.findings)
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
    rows = changes_since(previous, result.findings)
    table_artifact(
        rows or [{"change": "none", "id": "", "rule": "", "severity": "", "services": "", "summary": "nothing open"}],
        key=_artifact_key(profile, "changes"),
        description=(
            f"Changes since the last audit of {profile.name} on {host}: "
            f"{len(opened)} new, {len(rows) - len(opened) - len(resolved)} persisting, {len(resolved)} resolved"
        ),
    )
    current = open_set(result.findings)
    if current != previous:
        Variable.set(name, current, overwrite=True)
    return {"opened": [f.id for f in opened], "resolved": resolved}
