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

from stackwarden.adapters.executor import execute
from stackwarden.adapters.preflight import preflight
from stackwarden.model.base import Mode
from stackwarden.model.plan import Plan, Step
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import mode_preflight_step
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
    """Carry out one step: its kind's request, through the one adapter-side executor; raises
    RefusedError when the target is not what the plan saw."""
    return execute(step.request(force=force, recheck_generation=check_generation), profile)


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


@task(
    name="preflight-modes",
    retries=0,
    task_run_name="preflight-modes-{profile.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def preflight_modes_task(snapshot: Snapshot, profile: Profile) -> dict[Mode, tuple[str, ...]]:
    """The audit's share of preflight: each mode's plan checked as the switch would check it."""
    return mode_preflight_step(snapshot, profile)
