"""Switch tasks: one task run per plan step, named after its target. Mutating tasks have no
blind retries: each step is idempotent and re-checks its target's identity before acting.

No task here is ever served from a cache or persists its result (``cache_policy=NO_CACHE``):
an apply, a health check or a preflight answer is only true when it is run, whatever Prefect's
settings say (``PREFECT_RESULTS_PERSIST_BY_DEFAULT=true`` would otherwise key them by inputs).
Nor is any retried by Prefect (``retries=0``, whatever ``PREFECT_TASK_DEFAULT_RETRIES`` says): a
stop that failed is not sent again; the flow decides what a failure means (roll back)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from stackwarden.adapters.compose import compose_stop, compose_up
from stackwarden.adapters.docker import start_container, stop_container
from stackwarden.adapters.host import start_process, stop_process
from stackwarden.adapters.kubernetes import scale_workload
from stackwarden.adapters.preflight import preflight
from stackwarden.model.plan import (
    ComposeStop,
    ComposeUp,
    Plan,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StopContainer,
    StopProcess,
)
from stackwarden.model.profile import Profile
from stackwarden.report.names import step_run_name


def _step_run_name() -> str:
    """``stop-container backend 3f2a9c1``: the task run is named after its target."""
    step = task_run.parameters.get("step")
    return step_run_name(step) if step is not None else "apply-step"


@task(
    name="apply-step",
    retries=0,  # explicit: PREFECT_TASK_DEFAULT_RETRIES must not repeat a step behind the plan
    task_run_name=_step_run_name,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def apply_step_task(step: Step, profile: Profile, force: bool = False, check_generation: bool = True) -> str:
    """Carry out one step; raises RefusedError when the target is not what the plan saw."""
    match step:
        case ScaleWorkload():
            if profile.kubernetes is None:
                raise ValueError("scale-workload step without a kubernetes section in the profile")
            return scale_workload(
                profile.kubernetes,
                context=step.context,
                kind=step.workload_kind,
                name=step.name,
                uid=step.uid,
                replicas=step.replicas,
                expected_generation=step.generation if check_generation else None,
                timeouts=profile.timeouts,
            )
        case StopProcess():
            return stop_process(
                pid=step.pid,
                create_time=step.create_time,
                exe=step.exe,
                signal_name=step.signal,
                grace_seconds=step.grace_seconds,
                systemd_unit=step.systemd_unit,
                stateful=step.stateful,
                force=force,
            )
        case StartProcess():
            return start_process(step.systemd_unit, step.start_command, step.run_as)
        case StopContainer():
            return stop_container(
                step.container_id,
                step.compose_project,
                step.timeout_seconds,
                stateful=step.stateful,
                graceful=step.graceful,
                force=force,
            )
        case StartContainer():
            return start_container(step.container_id, step.compose_project)
        case ComposeUp():
            return compose_up(step.project, step.files, step.working_dir, step.services)
        case ComposeStop():
            return compose_stop(step.project, step.files, step.working_dir, step.services)
    raise ValueError(f"unknown step kind {step.kind}")


@task(
    name="preflight",
    retries=0,  # explicit: PREFECT_TASK_DEFAULT_RETRIES must not repeat a step behind the plan
    task_run_name="preflight-{profile.name}-{the_plan.mode}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def preflight_task(the_plan: Plan, profile: Profile) -> list[str]:
    """Every check that changes nothing, before step 1: all failures, one line each."""
    return preflight(the_plan, profile)
