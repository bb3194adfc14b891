"""Metrics task: the audit as a node_exporter textfile, written atomically."""

from __future__ import annotations

from prefect import get_run_logger, task

from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import metrics_step


@task(name="write-metrics", task_run_name="write-metrics {profile.name}")
def write_metrics_task(
    result: AuditResult, snapshot: Snapshot, profile: Profile, path: str, duration_seconds: float
) -> str:
    """Render the audit's metrics and replace ``path`` with them; only a successful audit gets
    here, so the file's timestamp is the last successful audit's."""
    written = metrics_step(result, snapshot, profile, path, duration_seconds)
    get_run_logger().info("metrics written to %s", written)
    return written
