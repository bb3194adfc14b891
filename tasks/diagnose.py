"""Diagnosis and reporting tasks: the pure domain, made observable."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.variables import Variable

from stackwarden.events import open_finding_ids, transitions
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


@task(name="emit-finding-events", task_run_name="emit-finding-events-{profile.name}")
def emit_finding_events_task(result: AuditResult, profile: Profile) -> dict[str, list[str]]:
    """Emit ``stackwarden.finding.opened``/``.resolved`` against the previous audit's open set,
    kept in a Prefect Variable so automations can notify or trigger a switch."""
    name = f"stackwarden-open-findings-{profile.name}".replace(".", "-")
    previous: object = Variable.get(name, default=[])
    previous_ids = [str(i) for i in previous] if isinstance(previous, list) else []
    opened, resolved = transitions(previous_ids, result.findings)
    for finding in opened:
        event(
            "stackwarden.finding.opened",
            resource={"prefect.resource.id": f"stackwarden.finding.{profile.name}.{finding.id}"},
            payload={
                "severity": str(finding.severity),
                "title": finding.title,
                "summary": finding.summary,
            },
        )
    for finding_id in resolved:
        event(
            "stackwarden.finding.resolved",
            resource={"prefect.resource.id": f"stackwarden.finding.{profile.name}.{finding_id}"},
        )
    Variable.set(name, open_finding_ids(result.findings), overwrite=True)
    return {"opened": [f.id for f in opened], "resolved": resolved}
