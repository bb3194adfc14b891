"""The ``audit`` flow: the pipeline's steps as Prefect tasks, so a run is recorded.

The steps themselves live in ``stackwarden.pipeline``; the CLI runs the same functions in
process when no run needs recording. Here the observe steps are submitted as concurrent tasks,
the report is published as artifacts and the finding events are emitted beside it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.served import fixed_host, is_deployment_run, metrics_path, run_host
from stackwarden.adapters.docker import DockerObservation
from stackwarden.adapters.host import HostObservation
from stackwarden.errors import StackwardenError
from stackwarden.model.base import Mode
from stackwarden.model.profile import HealthCheck, HostLookup, KubernetesSpec, Profile, Timeouts
from stackwarden.model.snapshot import RuntimeStatus, Snapshot
from stackwarden.pipeline import AuditOutcome, Result
from stackwarden.pipeline import observe_all as observe_with
from stackwarden.profiles import choose_profile, load_profile
from stackwarden.sanitize import one_line
from tasks.diagnose import diagnose_task, emit_finding_events_task, publish_report_task
from tasks.metrics import write_metrics_task
from tasks.observe import observe_docker_task, observe_host_task, observe_kubernetes_task
from tasks.switch import preflight_modes_task

if TYPE_CHECKING:
    from stackwarden.adapters.kubernetes import KubeObservationResult

__all__ = ["AuditOutcome", "audit_flow", "host_name", "observe_all", "profile_name_of"]


def profile_name_of(params: dict[str, Any]) -> str:
    """The profile's own name for run names, from a run's parameters (its ``profile`` name, or the
    file its ``profile_path`` or the served set gives), or what was asked for when it cannot be
    read (the run then fails on the same error with its full message)."""
    try:
        path = choose_profile(params.get("profile"), params.get("profile_path"), deployment_run=is_deployment_run())
        return load_profile(path).name
    except StackwardenError:
        return str(params.get("profile") or "unknown-profile")


def host_name(host: str | None = None) -> str:
    """The host a run speaks for: the ``host`` parameter, ``$STACKWARDEN_HOST``, or this machine's
    name. Fleet runs carry it as a tag and a parameter, and events carry it as a label."""
    return host or fixed_host()


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"audit-{profile_name_of(params)}"


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


def audit(
    profile: str | None = None,
    mode: str | None = None,
    host: str | None = None,
    profile_path: str | None = None,
    prometheus_path: str | None = None,
) -> AuditOutcome | State[Any]:
    """Observe Compose, Kubernetes and the host, diagnose conflicts, publish the report.

    ``profile`` names one of the profiles fixed when the runs were served or deployed; a run of a
    deployment chooses only that way (``stackwarden.profiles.choose_profile``). ``profile_path``
    and ``prometheus_path`` (the metrics file for node_exporter's textfile collector) are for runs
    started at a terminal; a served run writes its metrics where ``serve --prometheus-dir`` said.
    Every parameter has a default (the one served profile, or ``$STACKWARDEN_PROFILE`` or the
    bundled one at a terminal; this host's name), so a schedule or a bare ``prefect deployment
    run`` works from any directory. A refused choice ends the run Failed with one line."""
    started = time.monotonic()
    deployment_run = is_deployment_run()
    try:
        chosen = choose_profile(profile, profile_path, deployment_run=deployment_run)
        the_profile = load_profile(chosen)
        metrics = metrics_path(the_profile, prometheus_path, deployment_run=deployment_run)
        speaks_for = run_host(host, deployment_run=deployment_run)
    except StackwardenError as exc:  # a bad choice, or a served file that is broken or not root's
        get_run_logger().warning("audit refused: %s; nothing was observed", exc)
        return Failed(message=one_line(f"refused: {exc}"), data=exc)  # a terminal run raises it again
    requested = Mode(mode) if mode else None
    snapshot = observe_all(the_profile)
    result = diagnose_task(snapshot, the_profile, requested)
    result = result.model_copy(update={"mode_refusals": preflight_modes_task(snapshot, the_profile)})
    # the finding memory is compared and written beside the report, not in front of it
    events = emit_finding_events_task.submit(result, the_profile, host=speaks_for)
    markdown = publish_report_task(result, snapshot, the_profile)
    events.wait()
    if metrics:
        write_metrics_task(result, snapshot, the_profile, metrics, time.monotonic() - started)
    return AuditOutcome(profile=the_profile, snapshot=snapshot, result=result, markdown=markdown)


audit_flow = flow(name="audit", flow_run_name=_run_name, log_prints=False, persist_result=False)(audit)
"""The ``audit`` flow. Its function keeps a module-level name of its own (``audit``), so the
runner of ``stackwarden serve`` pickles it by reference (see ``flows.switch.switch_flow``)."""
