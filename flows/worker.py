"""``stackwarden worker``: Prefect's process worker with nothing left for a run's creator to choose.

A process worker, as Prefect ships it, starts each flow run with the command and environment the
work pool's job template, the deployment and the run's own job variables say, and the run's
process loads the flow the deployment's entrypoint names after running its pull steps: whoever
may create or edit those through the API chooses a command root runs. This worker keeps
Prefect's polling, cancellation and state handling, and fixes the three things itself: the
command (``python -m flows.engine`` with this worker's Python), the environment (this worker's,
plus what Prefect needs to find the run) and the flow (one of stackwarden's, by its name, from
the installed package).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.processutils import command_to_string, setup_signal_handlers_worker
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

ENGINE_MODULE = "flows.engine"


def run_environment(flow_run: FlowRun) -> dict[str, str | None]:
    """The environment of a flow run's process: the worker's own (fixed by its operator:
    ``STACKWARDEN_PROFILES``, ``STACKWARDEN_HOST``, ``KUBECONFIG``...), Prefect's settings, and the
    run's id. Nothing from job variables."""
    return {
        **os.environ,
        **ProcessJobConfiguration._base_environment(),
        "PREFECT__FLOW_RUN_ID": str(flow_run.id),
    }


def fixed_configuration(configuration: ProcessJobConfiguration, flow_run: FlowRun) -> ProcessJobConfiguration:
    """The job configuration as this worker runs it, whatever the pool, deployment or run said."""
    fixed = configuration.model_copy(
        update={
            "command": command_to_string([sys.executable, "-m", ENGINE_MODULE]),
            "env": run_environment(flow_run),
            "working_dir": None,
            "stream_output": True,
        }
    )
    fixed._command_configured = True  # run it as given, not through Prefect's workspace resolver
    return fixed


class StackwardenWorker(ProcessWorker):
    """A process worker whose runs execute stackwarden's flows only, as ``fixed_configuration`` says."""

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        return await super().run(flow_run, fixed_configuration(configuration, flow_run), task_status)


def run_worker(pool: str, **options: Any) -> None:
    """Poll ``pool`` until Ctrl-C or SIGTERM, as ``prefect worker start`` does (the first signal
    stops taking runs and lets the runs in flight finish; a second one kills them)."""
    setup_signal_handlers_worker(os.getpid(), "the stackwarden worker", print)
    signal.siginterrupt(signal.SIGTERM, False)

    async def main() -> None:
        worker = StackwardenWorker(work_pool_name=pool, create_pool_if_not_found=True, **options)
        await worker.start(printer=print)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        print("stackwarden worker: stopped", flush=True)
