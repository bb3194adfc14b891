"""``stackwarden serve``: the audit on a schedule and the three switches, in one process.

Prefect's ``serve`` runs the deployments itself (no worker, no work pool). Each host of a fleet
runs its own ``serve`` against one server; deployment names end in ``@<host>`` so two hosts with
the same profile never share (and overwrite) a deployment, and every run carries the host as a
tag and a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.types.entrypoint import EntrypointType

from flows.audit import audit_flow
from flows.switch import switch_flow
from stackwarden.model.base import Mode
from stackwarden.model.profile import Profile


@dataclass(frozen=True)
class Served:
    """One profile to serve: where its file is, and what it says."""

    path: Path
    profile: Profile


def metrics_file(directory: Path, profile: Profile) -> Path:
    """One textfile per profile, so node_exporter sees each profile's series exactly once."""
    return directory / f"stackwarden-{re.sub(r'[^A-Za-z0-9_.-]', '-', profile.name)}.prom"


def tags_for(kind: str, profile: Profile, host: str) -> list[str]:
    """Tags that filter a fleet in the UI: by kind, profile and host."""
    return ["stackwarden", kind, f"profile:{profile.name}", f"host:{host}"]


def deployments_for(
    served: Served, *, host: str, audit_every: timedelta, prometheus_dir: Path | None
) -> list[RunnerDeployment]:
    """The audit (scheduled) and one switch per mode (approval in the UI) for one profile.

    Parameters are absolute, so runs do not depend on the directory ``serve`` was started in."""
    profile_path = str(served.path.resolve())
    audit_parameters: dict[str, object] = {"profile_path": profile_path, "host": host}
    if prometheus_dir is not None:
        audit_parameters["prometheus_path"] = str(metrics_file(prometheus_dir.resolve(), served.profile))
    deployments: list[RunnerDeployment] = [
        audit_flow.to_deployment(
            name=f"audit-{served.profile.name}@{host}",
            description=f"Audit of {served.profile.name} on {host}, every {audit_every}.",
            interval=audit_every,
            parameters=audit_parameters,
            tags=tags_for("audit", served.profile, host),
            concurrency_limit=1,  # an audit slower than its interval must not pile up
            entrypoint_type=EntrypointType.MODULE_PATH,
        )  # type: ignore[list-item]  # the sync dispatch of to_deployment returns a deployment
    ]
    for mode in Mode:
        deployments.append(
            switch_flow.to_deployment(  # type: ignore[arg-type]
                name=f"switch-{served.profile.name}-{mode}@{host}",
                description=(
                    f"Switch {served.profile.name} on {host} to {mode}: the run shows its plan "
                    "and waits for approval in the UI (Resume, approve: true) before changing anything."
                ),
                parameters={"mode": str(mode), "profile_path": profile_path, "apply": True, "approval": "ui"},
                tags=tags_for("switch", served.profile, host),
                concurrency_limit=1,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def serve_stack(
    served: Sequence[Served], *, host: str, audit_every: timedelta, prometheus_dir: Path | None, ui_url: str | None
) -> None:
    """Register the deployments and run them until Ctrl-C or SIGTERM (Prefect's runner handles
    both and returns; schedules are paused on the way out so no run is left unattended)."""
    deployments = [
        d for s in served for d in deployments_for(s, host=host, audit_every=audit_every, prometheus_dir=prometheus_dir)
    ]
    print(f"stackwarden serve: {len(deployments)} deployment(s) for host {host}:", flush=True)
    for deployment in deployments:
        print(f"  {deployment.flow_name}/{deployment.name}", flush=True)
    if ui_url:
        print(f"Prefect UI: {ui_url}", flush=True)
    serve(*deployments, print_starting_message=False)
