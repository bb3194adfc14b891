"""Run names a person can read in the Prefect UI (pure): each task run of a switch is named after
its target with a short identity, e.g. ``stop-container backend 3f2a9c1``, not a 64-hex id. The
name is the step kind's own (``stackwarden.model.steps``)."""

from __future__ import annotations

from stackwarden.model.plan import Step


def step_run_name(step: Step) -> str:
    """``<kind> <service> <short identity>``: the container id, the PID, the workload and its uid,
    the unit or command, or the compose project; enough to find the target, short enough to read."""
    return step.run_name()
