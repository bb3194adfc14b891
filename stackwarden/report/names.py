"""Run names a person can read in the Prefect UI (pure): each task run of a switch is named after
its target with a short identity, e.g. ``stop-container backend 3f2a9c1``, not a 64-hex id."""

from __future__ import annotations

from stackwarden.model.plan import (
    ComposeStop,
    ComposeUp,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StopContainer,
    StopProcess,
)

SHORT = 7  # as git and docker print ids


def step_run_name(step: Step) -> str:
    """``<kind> <service> <short identity>``: the container id, the PID, the workload and its uid,
    the unit or command, or the compose project; enough to find the target, short enough to read."""
    match step:
        case StopContainer() | StartContainer():
            identity = step.container_id[:SHORT]
        case StopProcess():
            identity = f"pid {step.pid}"
        case StartProcess():
            identity = step.systemd_unit or (step.start_command[0] if step.start_command else "")
        case ScaleWorkload():
            identity = f"{step.workload_kind.lower()}/{step.name} {step.uid[:SHORT]} to {step.replicas}"
        case ComposeUp() | ComposeStop():
            identity = step.project
        case _:  # a step kind added later still gets a readable name
            identity = step.target
    return " ".join(part for part in (step.kind, step.service, identity) if part)
