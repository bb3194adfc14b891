"""The process of one flow run under ``stackwarden worker`` (``python -m flows.engine``).

Prefect's own ``python -m prefect.engine`` loads the flow the deployment names, after running
the deployment's pull steps, and raises when a flow returns a Failed or Cancelled state: a
refused or rejected switch (a safe outcome) then ends in an ERROR line and a traceback on the
worker's output. Here the flow is one of stackwarden's, chosen by the name of the flow the run
belongs to, and the run's final state is the outcome: the process exits 0 once Prefect has
recorded it, whatever it is. A flow that raised still logs its traceback (a real crash).
"""

from __future__ import annotations

import os
import sys
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect._internal.control_listener import configure_from_env
from prefect.client.orchestration import get_client
from prefect.engine import handle_engine_signals
from prefect.flow_engine import load_flow_run, run_flow
from prefect.logging.loggers import flow_run_logger
from prefect.states import Failed


def stackwarden_flows() -> dict[str, Flow[Any, Any]]:
    """The flows a worker runs, by their Prefect name."""
    from flows.audit import audit_flow
    from flows.switch import switch_flow

    return {audit_flow.name: audit_flow, switch_flow.name: switch_flow}


def main() -> int:
    """Run the flow run named by ``PREFECT__FLOW_RUN_ID``; 0 once its final state is recorded."""
    flow_run_id = UUID(os.environ["PREFECT__FLOW_RUN_ID"])
    configure_from_env()
    with handle_engine_signals(flow_run_id):
        flow_run = load_flow_run(flow_run_id=flow_run_id)
        logger = flow_run_logger(flow_run=flow_run)
        with get_client(sync_client=True) as client:
            name = client.read_flow(flow_run.flow_id).name
            flow = stackwarden_flows().get(name)
            if flow is None:
                message = (
                    f"flow {name!r} is not a stackwarden flow; this worker runs only {sorted(stackwarden_flows())}"
                )
                logger.warning("%s; nothing was run", message)
                client.set_flow_run_state(flow_run_id, Failed(message=message), force=True)
                return 1
        run_flow(flow, flow_run=flow_run, error_logger=logger, return_type="state")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
