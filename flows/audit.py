"""The ``audit`` flow: the pipeline's steps as Prefect tasks, so a run is recorded.

The steps themselves live in ``stackwarden.pipeline``; the CLI runs the same functions in
process when no run needs recording. Here the observe steps are submitted as concurrent tasks,
the report is published as artifacts and the finding events are emitted beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from stackwarden.adapters.docker import DockerObservation
from stackwarden.adapters.host import HostObservation
from stackwarden.model.base import Mode
from stackwarden.model.profile import KubernetesSpec, Profile, Timeouts
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import AuditOutcome, Result
from stackwarden.pipeline import observe_all as observe_with
from stackwarden.profiles import load_profile
from tasks.diagnose import diagnose_task, emit_finding_events_task, publish_report_task
from tasks.observe import observe_docker_task, observe_host_task, observe_kubernetes_task

if TYPE_CHECKING:
    from stackwarden.adapters.kubernetes import KubeObservationResult

__all__ = ["AuditOutcome", "audit_flow", "observe_all"]


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"audit-{Path(str(params.get('profile_path', 'profile'))).stem}"


class TaskSubmitter:
    """The pipeline's observe steps submitted as Prefect tasks (recorded, retried by Prefect)."""

    def docker(self, timeouts: Timeouts) -> Result[DockerObservation]:
        """Submit observe-docker."""
        return observe_docker_task.submit(timeouts=timeouts)

    def host(self, ports: list[int], executables: list[str]) -> Result[HostObservation]:
        """Submit observe-host."""
        return observe_host_task.submit(ports, executables)

    def kubernetes(self, spec: KubernetesSpec, timeouts: Timeouts) -> Result[KubeObservationResult]:
        """Submit observe-kubernetes."""
        return observe_kubernetes_task.submit(spec, timeouts=timeouts)


def observe_all(profile: Profile) -> Snapshot:
    """Run the observation tasks concurrently and assemble one Snapshot (inside a flow run)."""
    return observe_with(profile, TaskSubmitter(), get_run_logger())


@flow(name="audit", flow_run_name=_run_name, log_prints=False, persist_result=False)
def audit_flow(profile_path: str, mode: str | None = None) -> AuditOutcome:
    """Observe Compose, Kubernetes and the host, diagnose conflicts, publish the report."""
    profile = load_profile(profile_path)
    requested = Mode(mode) if mode else None
    snapshot = observe_all(profile)
    result = diagnose_task(snapshot, profile, requested)
    # the finding memory is written beside the report, not in front of it
    events = emit_finding_events_task.submit(result, profile)
    markdown = publish_report_task(result, snapshot, profile)
    events.wait()
    return AuditOutcome(profile=profile, snapshot=snapshot, result=result, markdown=markdown)
