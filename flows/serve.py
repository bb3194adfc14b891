"""``stackwarden serve``: the audit on a schedule and the three switches, in one process.

Prefect's ``serve`` runs the deployments itself (no worker, no work pool). Each host of a fleet
runs its own ``serve`` against one server; deployment names end in ``@<host>`` so two hosts with
the same profile never share (and overwrite) a deployment, and every run carries the host as a
tag and a parameter.

What a run may choose is narrow (``flows.served``): a profile by name among those given to
``serve``, never a file. The runs execute the flow objects of this process (registered with the
runner), not whatever entrypoint or pull steps the server's copy of the deployment says now:
editing a deployment through the API must not become a way to run code as root here. Switches
hold no Prefect concurrency slot: a slot's lease lapses while a run is paused for approval and
Prefect then kills the run; the per-profile switch lock keeps two switches apart instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner
from prefect.types.entrypoint import EntrypointType

from flows.audit import audit_flow
from flows.interrupted import announce_interrupted
from flows.live import Watched, live_views
from flows.served import PROMETHEUS_DIR_ENV, metrics_file
from flows.switch import switch_flow
from stackwarden.model.base import Mode
from stackwarden.model.profile import Profile

__all__ = ["DrainingRunner", "Served", "deployments_for", "metrics_file", "serve_stack", "served_deployments"]


@dataclass(frozen=True)
class Served:
    """One profile to serve: where its file is, and what it says."""

    path: Path
    profile: Profile


def tags_for(kind: str, profile: Profile, host: str) -> list[str]:
    """Tags that filter a fleet in the UI: by kind, profile and host."""
    return ["stackwarden", kind, f"profile:{profile.name}", f"host:{host}"]


@dataclass(frozen=True)
class ServedDeployment:
    """One deployment ``serve`` registers: the flow object its runs execute, and how it is named,
    scheduled and parameterised."""

    flow: Flow[Any, Any]
    settings: dict[str, Any]


def served_deployments(served: Served, *, host: str, audit_every: timedelta) -> list[ServedDeployment]:
    """The audit (scheduled) and one switch per mode (approval in the UI) for one profile.

    Parameters name the profile and the host; they are no files (the profile is one of those
    ``serve`` was given, its metrics file is where ``--prometheus-dir`` says)."""
    name = served.profile.name
    common = {"entrypoint_type": EntrypointType.MODULE_PATH}
    deployments = [
        ServedDeployment(
            audit_flow,
            {
                "name": f"audit-{name}@{host}",
                "description": f"Audit of {name} on {host}, every {audit_every}.",
                "interval": audit_every,
                "parameters": {"profile": name, "host": host},
                "tags": tags_for("audit", served.profile, host),
                "concurrency_limit": 1,  # an audit slower than its interval must not pile up
                **common,
            },
        )
    ]
    for mode in Mode:
        deployments.append(
            ServedDeployment(
                switch_flow,
                {
                    "name": f"switch-{name}-{mode}@{host}",
                    "description": (
                        f"Switch {name} on {host} to {mode}: the run shows its plan and waits for approval "
                        "in the UI (Resume, approve: true) before changing anything."
                    ),
                    "parameters": {"mode": str(mode), "profile": name, "apply": True, "approval": "ui", "host": host},
                    "tags": tags_for("switch", served.profile, host),
                    # no concurrency_limit: its slot would lapse while the run waits for approval
                    **common,
                },
            )
        )
    return deployments


TERMINAL_ONLY_PARAMETERS = ("profile_path", "prometheus_path")
"""Parameters a run started at a terminal may set and a deployment run may not (it is refused):
left out of a served deployment's form, so the UI offers no field that can only fail."""


def without_terminal_parameters(deployment: RunnerDeployment) -> RunnerDeployment:
    """``deployment`` with the terminal-only parameters gone from its parameter schema (the form
    the UI draws). The flow still refuses them if an API caller sends them anyway."""
    schema = deployment._parameter_openapi_schema  # Prefect keeps the form's schema here
    for name in TERMINAL_ONLY_PARAMETERS:
        schema.properties.pop(name, None)
        if name in schema.required:
            schema.required.remove(name)
    return deployment


def deployments_for(served: Served, *, host: str, audit_every: timedelta) -> list[RunnerDeployment]:
    """``served_deployments`` as Prefect's deployment objects (what the server is told)."""
    return [
        without_terminal_parameters(
            d.flow.to_deployment(**d.settings)  # type: ignore[arg-type]  # the sync dispatch returns a deployment
        )
        for d in served_deployments(served, host=host, audit_every=audit_every)
    ]


DEFAULT_DRAIN_SECONDS = 300.0
"""How long SIGTERM (or Ctrl-C) waits for runs in flight; systemd's TimeoutStopSec must be longer."""


class DrainingRunner(Runner):
    """Prefect's runner, but SIGTERM and the first Ctrl-C drain before they stop.

    Prefect's own handler cancels every run it tracks at once. A switch killed between its stop
    and its start leaves a service with no owner, and a run that had just reported Completed
    (its process still exiting) is rewritten Cancelled. Here a stop signal first stops taking new
    runs, then waits (up to ``drain_seconds``) for every run still in flight to finish; a run
    paused for approval has changed nothing and is cancelled at once. A second signal stops now.
    """

    def __init__(self, *, drain_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drain_seconds = drain_seconds
        self.stop_requested = False
        self._drain: asyncio.Task[None] | None = None

    def install_signal_handlers(self) -> None:
        """SIGTERM and Ctrl-C both drain, from before the deployments are registered: a stop that
        comes while ``serve`` starts up is kept and acted on once the runner is up (so the
        schedules are still paused on the way out), never an exception out of Prefect's start-up."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.handle_sigterm)
            signal.signal(signal.SIGINT, self.handle_sigterm)

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        if self.stop_requested:
            self._logger.info("Second stop signal: stopping now; runs still in flight are cancelled")
            sys.exit(0)
        self.stop_requested = True
        if not self.started or self._loop is None:
            self._logger.info("Stop signal received while starting: stopping as soon as the runner is up")
            return
        self._begin_drain()
        self.execute_in_background(self._drain_then_stop)

    def _begin_drain(self) -> None:
        self._logger.info(
            "Stop signal received: no new runs; waiting up to %.0f s for runs in flight (a second signal stops now)",
            self.drain_seconds,
        )
        self.stopping = True  # the runner submits nothing more (its poller checks this flag too)
        poller = getattr(self, "_scheduled_run_poller", None)
        if poller is not None:
            poller.stopping = True

    async def __aenter__(self) -> DrainingRunner:
        await super().__aenter__()
        if self.stop_requested:  # the signal came during start-up: stop now that there is a runner
            self._begin_drain()
            self._drain = asyncio.get_running_loop().create_task(self._drain_then_stop())
        return self

    async def _drain_then_stop(self) -> None:
        deadline = time.monotonic() + self.drain_seconds
        announced: set[UUID] = set()
        while True:
            busy = await self._runs_in_flight()
            if not busy:
                break
            if time.monotonic() >= deadline:
                names = ", ".join(sorted(run.name for run in busy))
                self._logger.warning("Drain time is up; cancelling runs still in flight: %s", names)
                break
            for run in busy:
                if run.id not in announced:
                    announced.add(run.id)
                    self._logger.info("Waiting for flow run %r (%s) to finish", run.name, run.state)
            await asyncio.sleep(0.5)
        await self.astop()

    async def _runs_in_flight(self) -> list[InFlight]:
        """Runs whose process is still alive, except those paused for approval (nothing changed yet).

        A run whose state is already final but whose process has not exited counts: cancelling it
        now would overwrite its Completed state. A run the server cannot tell about counts too: an
        unreachable server is no evidence that a switch is not between its stop and its start."""
        manager = getattr(self, "_process_manager", None)
        ids: set[UUID] = set(manager.flow_run_ids()) if manager is not None else set()
        busy = []
        for flow_run_id in ids:
            try:
                run = await self._client.read_flow_run(flow_run_id)
            except Exception as exc:  # any failure to read is "state unknown"
                busy.append(InFlight(flow_run_id, str(flow_run_id), f"state unknown: {type(exc).__name__}"))
                continue
            if run.state is not None and run.state.is_paused():
                continue
            busy.append(InFlight(run.id, run.name, (run.state.name if run.state is not None else None) or "no state"))
        return busy


@dataclass(frozen=True)
class InFlight:
    """A run the drain waits for: its id, its name and the state the server last reported."""

    id: UUID
    name: str
    state: str


def serve_stack(
    served: Sequence[Served],
    *,
    host: str,
    audit_every: timedelta,
    ui_url: str | None,
    drain_seconds: float = DEFAULT_DRAIN_SECONDS,
    watch: bool = True,
    socket_group: str | None = None,
) -> None:
    """Register the deployments and run them until Ctrl-C or SIGTERM. Runs in flight finish first
    (``DrainingRunner``); schedules are paused on the way out so no run is left unattended.

    ``add_flow`` registers each flow object with the runner, so a run executes it directly (in a
    child process) instead of importing what the server's copy of the deployment names. With
    ``watch`` (the default) each profile also has a live view (``flows.live``): finding changes
    published within seconds, ``stackwarden audit`` answered from it; its metrics go where the
    served audits' go (``$STACKWARDEN_PROMETHEUS_DIR``, fixed at serve time)."""
    deployments = [d for s in served for d in served_deployments(s, host=host, audit_every=audit_every)]
    print(f"stackwarden serve: {len(deployments)} deployment(s) for host {host}:", flush=True)
    for deployment in deployments:
        print(f"  {deployment.flow.name}/{deployment.settings['name']}", flush=True)
    if ui_url:
        print(f"Prefect UI: {ui_url}", flush=True)
    for line in announce_interrupted([s.profile for s in served]):  # switches that died part way
        print(f"stackwarden serve: {line}", flush=True)
    runner = DrainingRunner(drain_seconds=drain_seconds, pause_on_shutdown=True)
    runner.install_signal_handlers()
    for deployment in deployments:
        runner.add_flow(deployment.flow, **deployment.settings)
    directory = os.environ.get(PROMETHEUS_DIR_ENV)
    metrics = {s.profile.name: metrics_file(Path(directory), s.profile) for s in served} if directory else None
    live: contextlib.AbstractContextManager[object] = (
        live_views([Watched(s.path, s.profile) for s in served], host=host, metrics=metrics, socket_group=socket_group)
        if watch
        else contextlib.nullcontext()
    )
    with live:
        try:
            asyncio.run(runner.start())
        except KeyboardInterrupt:
            print("stackwarden serve: stopped", flush=True)
