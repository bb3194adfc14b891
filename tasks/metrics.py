"""Metrics task: the audit as a node_exporter textfile, written atomically."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task

from stackwarden.adapters.textfile import write_textfile
from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.report.prometheus import render_prometheus


@task(name="write-metrics", task_run_name="write-metrics {profile.name}")
def write_metrics_task(
    result: AuditResult, snapshot: Snapshot, profile: Profile, path: str, duration_seconds: float
) -> str:
    """Render the audit's metrics and replace ``path`` with them; only a successful audit gets
    here, so the file's timestamp is the last successful audit's."""
    text = render_prometheus(
        result, snapshot, profile, duration_seconds=duration_seconds, finished_at=datetime.now(UTC)
    )
    written = write_textfile(path, text)
    get_run_logger().info("metrics written to %s", written)
    return str(written)
