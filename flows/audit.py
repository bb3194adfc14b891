"""The ``audit`` flow: the pipeline's steps as Prefect tasks, so a run is recorded.

The steps themselves live in ``stackwarden.pipeline``; the CLI runs the same functions in
process when no run needs recording. Here the observe steps are submitted as concurrent tasks,
the report is published as artifacts and the finding events are emitted beside it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from stackwarden.adapters.docker import DockerObservation
from stackwarden.adapters.host import HostObservation
from stackwarden.errors import ProfileError
from stackwarden.model.base import Mode
from stackwarden.model.profile import HealthCheck, HostLookup, KubernetesSpec, Profile, Timeouts
from stackwarden.model.snapshot import RuntimeStatus, Snapshot
from stackwarden.pipeline import AuditOutcome, Result
from stackwarden.pipeline import observe_all as observe_with
from stackwarden.profiles import default_profile_path, load_profile
from tasks.diagnose import diagnose_task, emit_finding_events_task, publish_report_task
from tasks.metrics import write_metrics_task
from tasks.observe import observe_docker_task, observe_host_task, observe_kubernetes_task

if TYPE_CHECKING:
    from stackwarden.adapters.kubernetes import KubeObservationResult

__all__ = ["AuditOutcome", "audit_flow", "host_name", "observe_all", "profile_name_of"]


def profile_name_of(profile_path: object) -> str:
    """The profile's own name for run names, or the file's stem when it cannot be read (the run
    then fails on the same error with its full message)."""
    path = Path(str(profile_path)) if profile_path else default_profile_path()
    try:
        return load_profile(path).name
    except ProfileError:
        return path.stem


def host_name(host: str | None = None) -> str:
    """The host a run speaks for: the ``host`` parameter, ``$STACKWARDEN_HOST``, or this machine's
    name. Fleet runs carry it as a tag and a parameter, and events carry it as a label."""
    return host or os.environ.get("STACKWARDEN_HOST") or socket.gethostname()


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"audit-{profile_name_of(params.get('profile_path'))}"


class TaskSubmitter:
    """The pipeline's observe steps submitted as Prefect tasks (recorded, retried by Prefect)."""

    def docker(
        self, timeouts: Timeouts, stateful: tuple[tuple[str, str], ...]
    ) -> Result[DockerObservation | RuntimeStatus]:
        """Submit observe-docker."""
        return observe_docker_task.submit(timeouts=timeouts, stateful=stateful)

    def host(
        self, ports: list[int], lookup: HostLookup, checks: tuple[tuple[str, HealthCheck], ...]
    ) -> Result[HostObservation]:
        """Submit observe-host."""
        return observe_host_task.submit(ports, lookup, checks)

    def kubernetes(self, spec: KubernetesSpec, timeouts: Timeouts) -> Result[KubeObservationResult | RuntimeStatus]:
        """Submit observe-kubernetes."""
        return observe_kubernetes_task.submit(spec, timeouts=timeouts)


def observe_all(profile: Profile) -> Snapshot:
    """Run the observation tasks concurrently and assemble one Snapshot (inside a flow run):
    the pipeline's ``observe_all`` with Prefect tasks instead of threads."""
    return observe_with(profile, TaskSubmitter(), get_run_logger())


@flow(name="audit", flow_run_name=_run_name, log_prints=False, persist_result=False)
def audit_flow(
    profile_path: str | None = None,
    mode: str | None = None,
    host: str | None = None,
    prometheus_path: str | None = None,
) -> AuditOutcome:
    """Observe Compose, Kubernetes and the host, diagnose conflicts, publish the report.

    Every parameter has a default (``$STACKWARDEN_PROFILE`` or the bundled profile; this host's
    name), so a schedule or a bare ``prefect deployment run`` works from any directory.
    ``prometheus_path`` also writes the audit's metrics for node_exporter's textfile collector."""
    started = time.monotonic()
    profile = load_profile(profile_path or default_profile_path())
    requested = Mode(mode) if mode else None
    snapshot = observe_all(profile)
    result = diagnose_task(snapshot, profile, requested)
    # the finding memory is compared and written beside the report, not in front of it
    events = emit_finding_events_task.submit(result, profile, host=host_name(host))
    markdown = publish_report_task(result, snapshot, profile)
    events.wait()
    if prometheus_path:
        write_metrics_task(result, snapshot, profile, prometheus_path, time.monotonic() - started)
    return AuditOutcome(profile=profile, snapshot=snapshot, result=result, markdown=markdown)
