"""The ``audit`` flow: observe every runtime concurrently, diagnose, publish the report."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from stackwarden.adapters.docker import DockerObservation, docker_endpoint
from stackwarden.adapters.host import HostObservation
from stackwarden.adapters.kubernetes import KubeObservationResult
from stackwarden.errors import ProfileError
from stackwarden.model.base import Mode, Runtime
from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.observe import assemble_snapshot, unreachable
from stackwarden.profiles import default_profile_path, load_profile
from tasks.diagnose import diagnose_task, emit_finding_events_task, publish_report_task
from tasks.metrics import write_metrics_task
from tasks.observe import observe_docker_task, observe_host_task, observe_kubernetes_task


@dataclass(frozen=True)
class AuditOutcome:
    """What the CLI needs from one audit run."""

    profile: Profile
    snapshot: Snapshot
    result: AuditResult
    markdown: str


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


def _outcome(future: Any, runtime: Runtime, endpoint: str | None) -> Any:
    """The observation, or an unreachable record: an engine that cannot be reached is
    reported, it never aborts the audit."""
    try:
        return future.result()
    except Exception as exc:
        get_run_logger().warning("%s not observed: %s", runtime, exc)
        return unreachable(runtime, f"{type(exc).__name__}: {exc}", endpoint)


def observe_all(profile: Profile) -> Snapshot:
    """Run the observation tasks concurrently and assemble one Snapshot."""
    docker_future = observe_docker_task.submit(timeouts=profile.timeouts)
    host_future = observe_host_task.submit(list(profile.all_ports()), list(profile.portless_executables()))
    kube_future = (
        observe_kubernetes_task.submit(profile.kubernetes, timeouts=profile.timeouts) if profile.kubernetes else None
    )
    docker_obs = _outcome(docker_future, Runtime.COMPOSE, docker_endpoint())
    host_obs = _outcome(host_future, Runtime.HOST, socket.gethostname())
    runtimes = []
    kwargs: dict[str, Any] = {}
    if kube_future is not None:
        kube_obs = _outcome(kube_future, Runtime.KUBERNETES, None)
        if isinstance(kube_obs, KubeObservationResult):
            runtimes.append(kube_obs.status)
            kwargs["kubernetes"] = kube_obs.observation
        else:
            runtimes.append(kube_obs)
    if isinstance(docker_obs, DockerObservation):
        runtimes.append(docker_obs.status)
        kwargs.update(containers=docker_obs.containers, networks=docker_obs.networks)
    else:
        runtimes.append(docker_obs)
    if isinstance(host_obs, HostObservation):
        runtimes.append(host_obs.status)
        kwargs.update(listeners=host_obs.listeners, processes=host_obs.processes)
    else:
        runtimes.append(host_obs)
    return assemble_snapshot(
        taken_at=datetime.now(UTC),
        hostname=socket.gethostname(),
        profile=profile.name,
        runtimes=runtimes,
        **kwargs,
    )


@flow(name="audit", flow_run_name=_run_name, log_prints=False)
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
    markdown = publish_report_task(result, snapshot, profile)
    emit_finding_events_task(result, profile, host=host_name(host))
    if prometheus_path:
        write_metrics_task(result, snapshot, profile, prometheus_path, time.monotonic() - started)
    return AuditOutcome(profile=profile, snapshot=snapshot, result=result, markdown=markdown)
