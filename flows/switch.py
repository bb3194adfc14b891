"""The ``switch-mode`` flow: observe, plan, approve, apply step by step, verify, roll back."""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.api_access import require_authentication, unauthenticated_allowed
from flows.audit import observe_all, profile_name_of
from flows.served import is_deployment_run, run_host
from stackwarden.adapters.lock import lock_resources, switch_lock
from stackwarden.errors import RefusedError, StackwardenError
from stackwarden.model.base import Mode
from stackwarden.model.plan import (
    Plan,
    Step,
    StepResult,
    StepStatus,
    SwitchOutcome,
    SwitchStatus,
    Unchanged,
    Verdict,
)
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.planner import inverse_of, plan, undo_after_failure
from stackwarden.profiles import LoadedProfile, choose_profile, read_profile
from stackwarden.report.approval import ApprovalScope, render_approval
from stackwarden.report.plan import render_plan
from stackwarden.report.verdict import render_verdict
from stackwarden.sanitize import FIELD_MAX, clean, one_line
from stackwarden.verdict import not_ready, verdict
from tasks.publish import event, markdown_artifact, table_artifact
from tasks.switch import apply_step_task, preflight_task

MAX_CONCURRENT_STOPS = 4
"""Independent stops run at most this many at a time: a switch lasts about the longest grace
period, not their sum, without stopping a whole stack in one burst."""


class Approval(RunInput):
    """What a person answers in the Prefect UI when a switch pauses for approval."""

    approve: bool = False
    comment: str = ""


APPROVAL_COMMENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("approval_comment", default=None)
"""The comment of the person who answered this run's approval form (None: no one was asked). The
switch events and the verdict artifact carry it, so the record says who expected what."""


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"switch-{profile_name_of(params)}-{params.get('mode') or 'default-mode'}"


def _key(profile: Profile, what: str) -> str:
    return f"stackwarden-{profile.name}-{what}".replace(".", "-").replace("_", "-").lower()


def _apply(step: Step, profile: Profile, force: bool, check_generation: bool = True) -> StepResult:
    """Run one step as its own task run; its failure is journaled, not raised."""
    started = datetime.now(UTC)
    state = apply_step_task(step, profile, force, check_generation, return_state=True)
    return _result(step, state, started)


def _result(step: Step, state: Any, started: datetime) -> StepResult:
    """A journal entry from a finished task run's state (its failure journaled, not raised)."""
    ended = datetime.now(UTC)
    outcome = state.result(raise_on_failure=False)
    failed = isinstance(outcome, BaseException) or state.is_failed()
    if failed:
        status = StepStatus.REFUSED if isinstance(outcome, RefusedError) else StepStatus.FAILED
    else:  # a target already as wanted was not touched: nothing to roll back
        status = StepStatus.SKIPPED if isinstance(outcome, Unchanged) else StepStatus.APPLIED
    return StepResult(
        step_id=step.id,
        status=status,
        started=started,
        ended=ended,
        duration_seconds=(ended - started).total_seconds(),
        output="" if failed else str(outcome),
        error=str(outcome) if failed else None,
    )


def _apply_concurrently(steps: tuple[Step, ...], profile: Profile, force: bool) -> list[tuple[Step, StepResult]]:
    """Independent steps (stops of different targets) as concurrent task runs; the flow's task
    runner runs at most MAX_CONCURRENT_STOPS at once. Every one runs to its end, so the journal
    is complete and a rollback knows everything that was applied."""
    started = datetime.now(UTC)
    futures = [(step, apply_step_task.submit(step, profile, force, True)) for step in steps]
    done: list[tuple[Step, StepResult]] = []
    for step, future in futures:
        future.wait()
        done.append((step, _result(step, future.state, started)))
    return done


def _rollback(applied: list[Step], profile: Profile, journal: list[StepResult]) -> None:
    """Undo the reversible steps in reverse order (uid re-checked; the spec has changed by our
    own hand, so the generation is not)."""
    for step in reversed(applied):
        inverse = inverse_of(step)
        if inverse is None:
            get_run_logger().warning("step %s cannot be undone: %s", step.id, step.target)
            continue
        result = _apply(inverse, profile, force=False, check_generation=False)
        journal.append(
            result.model_copy(update={"status": StepStatus.ROLLED_BACK})
            if result.status is StepStatus.APPLIED
            else result
        )


def _switch_event(name: str, the_plan: Plan, **payload: object) -> None:
    """``stackwarden.switch.refused`` / ``.rolled_back`` / ``stackwarden.mode.switched``, with the
    reason, so an automation can notify on the ones that did not switch."""
    event(
        name,
        resource={
            "prefect.resource.id": f"stackwarden.profile.{the_plan.profile}",
            "stackwarden.profile": the_plan.profile,
            "stackwarden.mode": str(the_plan.mode),
        },
        payload={
            "mode": str(the_plan.mode),
            "plan_digest": the_plan.digest,
            **payload,
            **({"approval_comment": comment} if (comment := APPROVAL_COMMENT.get()) is not None else {}),
        },
    )


def _refuse(the_plan: Plan, reason: str) -> State[Any]:
    """End the run Failed without changing anything, the outcome attached: one warning line that
    says so (a refusal is the safe outcome, not a crash: no ERROR, no traceback)."""
    get_run_logger().warning("switch refused: %s; nothing was changed", reason)
    _switch_event("stackwarden.switch.refused", the_plan, reason=reason)
    refused = SwitchOutcome(status=SwitchStatus.REFUSED, plan=the_plan, message=reason)
    return Failed(message=one_line(f"refused: {reason}; nothing was changed"), data=refused)


def _refuse_unplanned(error: StackwardenError) -> State[Any]:
    """Refused before there is a plan (a profile the run may not choose, a bad parameter, a lock
    another switch holds): one warning line, the run Failed, and the error kept as the state's
    data, so a terminal run (``run_switch``) reports it as it always did."""
    get_run_logger().warning("switch refused: %s; nothing was changed", error)
    return Failed(message=one_line(f"refused: {error}; nothing was changed"), data=error)


def _reject(the_plan: Plan, state_name: str, reason: str) -> State[Any]:
    """A rejection or a timeout changes nothing and is no success: the run ends Cancelled under
    a name that says which (``Rejected``, ``Approval timed out``), the reason in its message."""
    get_run_logger().warning("switch not approved (%s): %s; nothing was changed", state_name, reason)
    _switch_event("stackwarden.switch.rejected", the_plan, reason=reason, outcome=state_name)
    outcome = SwitchOutcome(status=SwitchStatus.REJECTED, plan=the_plan, message=reason)
    return Cancelled(name=state_name, message=one_line(f"{state_name}: {reason}; nothing was changed"), data=outcome)


PAUSE_BACKSTOP_SECONDS = 120
"""The server fails a run whose pause outlives its timeout ("paused and never resumed") and
refuses any other state for it; so the server's timeout is this much longer than the approval
timeout, and the run itself ends the wait on time, as Cancelled "Approval timed out"."""


def wait_for_approval(form: type[Approval], timeout_seconds: float) -> tuple[Approval, bool]:
    """Pause for the person's answer: (the answer, whether the approval timeout expired first).

    At the timeout the run answers itself (approve: false) through the API, as the UI would; if
    a person answered first, that resume is refused and the person's answer stands. The run has
    no Prefect concurrency slot to lose while it waits (``flows.serve``): it waits as long as
    the timeout says."""
    run_id = flow_run.id
    expired = threading.Event()

    def at_deadline() -> None:
        with contextlib.suppress(Exception):  # already answered (or cancelled): nothing to do
            resume_flow_run(run_id, run_input={"approve": False, "comment": ""})
            expired.set()

    timer = threading.Timer(timeout_seconds, contextvars.copy_context().run, args=(at_deadline,))
    timer.daemon = True
    timer.start()
    try:
        answer = pause_flow_run(
            wait_for_input=form, timeout=int(timeout_seconds) + PAUSE_BACKSTOP_SECONDS, poll_interval=2
        )
    finally:
        timer.cancel()
        timer.join()  # a resume in flight has finished (and said whether it was the deadline's)
    return answer, expired.is_set()


def approval_scope(loaded: LoadedProfile, snapshot: Snapshot) -> ApprovalScope:
    """What the approval form names beside the plan: the profile file and its sha256, the compose
    files, and the kubeconfig, context and API server the observation used."""
    profile = loaded.profile
    kube = profile.kubernetes
    context = snapshot.kubernetes.context if snapshot.kubernetes is not None else None
    return ApprovalScope(
        profile_file=str(loaded.path.resolve()),
        profile_sha256=loaded.sha256,
        compose_files=tuple(f for spec in profile.compose_projects for f in spec.files),
        kubeconfig=(kube.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config") if kube is not None else None,
        context=context.name if context is not None else None,
        api_server=context.server if context is not None else None,
    )


def _approval_form(the_plan: Plan, plan_artifact: UUID | None, scope: ApprovalScope) -> type[Approval]:
    """The Resume form with the whole plan above its fields: what cannot be undone first, every
    step, why, how it is undone, the digest (what is approved is the content: the run applies
    only a plan with this digest), the files and cluster it acts on, and a link to the plan
    artifact (relative: the UI resolves it on its own origin)."""
    link = f"/artifacts/artifact/{plan_artifact}" if plan_artifact else None
    return Approval.with_initial_data(description=render_approval(the_plan, link, scope), approve=False, comment="")


def _roll_back(
    the_plan: Plan,
    applied: list[Step],
    profile: Profile,
    journal: list[StepResult],
    *,
    reason: str,
    result: Verdict | None,
) -> State[Any]:
    """Undo what was applied, publish the journal, and end the run Failed with the reason."""
    get_run_logger().error("%s; rolling back %d step(s)", reason, len(applied))
    _rollback(applied, profile, journal)
    _journal_artifact(profile, journal)
    if result is not None:
        _verdict_artifact(profile, result, reason)
    _switch_event("stackwarden.switch.rolled_back", the_plan, reason=reason, steps_undone=len(applied))
    outcome = SwitchOutcome(
        status=SwitchStatus.ROLLED_BACK, plan=the_plan, journal=tuple(journal), verdict=result, message=reason
    )
    return Failed(message=one_line(f"rolled back: {reason}"), data=outcome)


def verify(profile: Profile, mode: Mode, deadline_seconds: float, interval: float = 2.0) -> Verdict:
    """Observe until the mode's invariants hold or the deadline passes (a poll, not a retry)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        snapshot = observe_all(profile)
        result = verdict(snapshot, profile, mode)  # the observation ran the health checks
        if result.passed or time.monotonic() >= deadline:
            return result
        get_run_logger().info(
            "verify: %d invariant(s) not met yet: %s", len(result.failures), "; ".join(result.failures[:3])
        )
        time.sleep(interval)


def _verdict_artifact(profile: Profile, result: Verdict, reason: str = "") -> None:
    markdown_artifact(
        markdown=render_verdict(result, profile.name, reason, APPROVAL_COMMENT.get()),
        key=_key(profile, "switch-verdict"),
        description=f"Verdict of the switch of {profile.name} to {result.mode}: {result.outcome}",
    )


def wait_ready(
    profile: Profile, mode: Mode, services: list[str], deadline_seconds: float, interval: float = 1.0
) -> list[str]:
    """Make before break: poll until the new owners of ``services`` serve (up, ready, healthy)
    or the deadline passes; returns what is still missing (empty: ready)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        missing = not_ready(observe_all(profile), profile, mode, services)
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(interval)


def _journal_artifact(profile: Profile, journal: list[StepResult]) -> None:
    table_artifact(
        rows=[
            {
                "step": r.step_id,
                "status": str(r.status),
                "seconds": round(r.duration_seconds, 2),
                "output": r.output[:200],
                "error": (r.error or "")[:200],
            }
            for r in journal
        ],
        key=_key(profile, "switch-journal"),
        description=f"Step journal of the switch of {profile.name}: {len(journal)} step result(s)"
        + (
            f"; approved in the UI: {comment or '(no comment)'}"
            if (comment := APPROVAL_COMMENT.get()) is not None
            else ""
        ),
    )


def _policy(approval: Literal["auto", "ui"], force: bool) -> tuple[Literal["auto", "ui"], bool, str | None]:
    """Approval and force as the code allows them: a run of a deployment
    always pauses for a person in the UI and never forces, whatever parameters it was given;
    ``auto`` approval and ``force`` exist only for a person at a terminal (the CLI)."""
    if deployment.id:
        note = None
        if approval != "ui" or force:
            note = f"deployment run: approval {approval!r} -> 'ui', force {force} -> False (policy is code)"
        return "ui", False, note
    return approval, force, None


MAX_PARAMETER_SECONDS = 24 * 3600.0
"""The longest deadline, approval timeout or lock wait a run may ask for (as the CLI allows)."""


def parameter_problems(deadline: float, approval_timeout: float, lock_wait: float) -> list[str]:
    """The flow's duration parameters, checked in code: a run of a deployment takes them from
    the UI or the API, not from the CLI's parser. ``nan`` compares false with everything, so an
    unchecked NaN (or infinite) deadline would poll forever while holding the switch locks."""
    out = []
    for name, value, zero_ok in (
        ("deadline_seconds", deadline, False),
        ("approval_timeout_seconds", approval_timeout, False),
        ("lock_wait_seconds", lock_wait, True),
    ):
        low_ok = value >= 0 if zero_ok else value > 0
        if not math.isfinite(value) or not low_ok or value > MAX_PARAMETER_SECONDS:
            floor = "0 or more" if zero_ok else "more than 0"
            out.append(f"{name}={value!r} must be a finite number of seconds, {floor}, up to {MAX_PARAMETER_SECONDS:g}")
    return out


def _phase_failure(
    results: list[tuple[Step, StepResult]], applied: list[Step], journal: list[StepResult]
) -> str | None:
    """Journal a phase's results; the first step that did not apply, as the reason to stop. A
    failed step that may have half-happened (``undo_after_failure``) is undone with the rest."""
    reason = None
    for step, result in results:
        journal.append(result)
        if result.status is StepStatus.APPLIED or (result.status is StepStatus.FAILED and undo_after_failure(step)):
            applied.append(step)
        elif result.status is not StepStatus.SKIPPED and reason is None:
            reason = f"step {step.id} {result.status}: {result.error}"
    return reason


def switch_mode(
    mode: str | None = None,
    profile: str | None = None,
    *,
    apply: bool = False,
    approval: Literal["auto", "ui"] = "auto",
    force: bool = False,
    deadline_seconds: float = 120.0,
    approval_timeout_seconds: int = 3600,
    lock_wait_seconds: float = 0.0,
    expected_digest: str | None = None,
    host: str | None = None,
    profile_path: str | None = None,
) -> SwitchOutcome | State[Any]:
    """Switch the profile's stack to ``mode``. Dry run unless ``apply``.

    ``profile`` names one of the profiles fixed when the runs were served or deployed (a run of a
    deployment chooses only that way); ``profile_path`` is for runs started at a terminal. A run
    that may not choose what it asks for, whose parameters are out of range, whose lock another
    switch holds, or (a deployment run) whose Prefect server lets anyone in, is refused before
    anything is observed: one line, the run Failed, nothing changed. See ``_switch`` for the rest.
    """
    deployment_run = is_deployment_run()
    _forget_approval_comment()
    try:
        problems = parameter_problems(deadline_seconds, approval_timeout_seconds, lock_wait_seconds)
        if problems:
            raise StackwardenError("; ".join(problems))
        loaded = read_profile(choose_profile(profile, profile_path, deployment_run=deployment_run))
        run_host(host, deployment_run=deployment_run)
        if deployment_run and apply and (api_url := PREFECT_API_URL.value()):  # none: an in-process server
            require_authentication(api_url, allowed=unauthenticated_allowed())
        return _with_approval_comment(
            _switch(
                loaded,
                mode,
                apply=apply,
                approval=approval,
                force=force,
                deadline_seconds=deadline_seconds,
                approval_timeout_seconds=approval_timeout_seconds,
                lock_wait_seconds=lock_wait_seconds,
                expected_digest=expected_digest,
            )
        )
    except StackwardenError as exc:  # a lock, a choice, a server: nothing was changed
        return _refuse_unplanned(exc)


switch_flow = flow(
    name="switch-mode",
    flow_run_name=_run_name,
    # explicit: PREFECT_FLOW_DEFAULT_RETRIES must not re-plan and re-apply a refused or
    # rolled-back switch behind the person who approved one attempt
    retries=0,
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT_STOPS),  # type: ignore[arg-type]
)(switch_mode)
"""The ``switch-mode`` flow. Its function keeps a module-level name of its own (``switch_mode``),
so the runner of ``stackwarden serve`` pickles it by reference, not by value: a function pickled
by value loses the module globals its annotations name, and Prefect could not validate the
parameters of the run in the child process."""


def _forget_approval_comment() -> None:
    """No comment yet in this run. (A function, not inline in the flow: the runner pickles the
    flow's own function by value, and a ContextVar cannot be pickled.)"""
    APPROVAL_COMMENT.set(None)


def _with_approval_comment(result: SwitchOutcome | State[Any]) -> SwitchOutcome | State[Any]:
    """The outcome (returned, or the data of the final state) with the approver's comment on it."""
    comment = APPROVAL_COMMENT.get()
    if comment is None:
        return result
    if isinstance(result, SwitchOutcome):
        return result.model_copy(update={"approval_comment": comment})
    if isinstance(result.data, SwitchOutcome):
        result.data = result.data.model_copy(update={"approval_comment": comment})
    return result


def _switch(
    loaded: LoadedProfile,
    mode: str | None,
    *,
    apply: bool,
    approval: Literal["auto", "ui"],
    force: bool,
    deadline_seconds: float,
    approval_timeout_seconds: int,
    lock_wait_seconds: float,
    expected_digest: str | None,
) -> SwitchOutcome | State[Any]:
    """Before anything changes: the plan (refused where the host was not fully seen), then
    preflight (every check that changes nothing; all failures in one refusal). A deployment run
    always pauses for approval in the UI (``_policy``). ``expected_digest`` is the digest of the
    plan a person reviewed at a terminal: a plan with any other content is refused; after an
    approval in the UI the plan is made again and must have the approved digest.
    Steps run make (new owners that need no held port, then wait until they serve), break
    (independent stops, concurrently), start (new owners that needed a freed port). Without
    ``mode`` the profile's ``default_mode``."""
    profile = loaded.profile
    target = Mode(mode) if mode else profile.default_mode
    approval, force, policy_note = _policy(approval, force)
    if policy_note:
        get_run_logger().warning(policy_note)
    holder = f"flow run {flow_run.name or flow_run.id}"
    with (
        switch_lock(lock_resources(profile), holder, lock_wait_seconds, profile=profile.name)
        if apply
        else contextlib.nullcontext()
    ):  # a dry run changes nothing: no lock
        snapshot = observe_all(profile)
        the_plan: Plan = plan(snapshot, profile, target)
        if the_plan.applicable:
            the_plan = the_plan.model_copy(update={"refusals": tuple(preflight_task(the_plan, profile))})
        plan_artifact = markdown_artifact(
            markdown=render_plan(the_plan),
            key=_key(profile, "switch-plan"),
            description=(
                f"Plan: switch {profile.name} to {target}, {len(the_plan.steps)} step(s), digest {the_plan.digest[:12]}"
            ),
        )
        if not the_plan.applicable:
            return _refuse(the_plan, "; ".join(the_plan.refusals))
        if expected_digest is not None and the_plan.digest != expected_digest:
            return _refuse(the_plan, "the plan changed since it was reviewed (its digest differs); review the new plan")
        if not apply:
            return SwitchOutcome(status=SwitchStatus.DRY_RUN, plan=the_plan, message="dry run: nothing changed")
        if approval == "ui" and the_plan.steps:
            get_run_logger().info("waiting for approval of plan %s", the_plan.digest)
            form = _approval_form(the_plan, plan_artifact, approval_scope(loaded, snapshot))
            try:
                answer, expired = wait_for_approval(form, approval_timeout_seconds)
            except FlowPauseTimeout:  # the server's backstop ran out: a rejection all the same
                expired = True
            if expired:  # no answer in time is a rejection: nothing changes
                return _reject(the_plan, "Approval timed out", f"no answer within {approval_timeout_seconds}s")
            APPROVAL_COMMENT.set(clean(answer.comment, FIELD_MAX))
            get_run_logger().info(
                "plan %s %s in the UI; comment: %s",
                the_plan.digest,
                "approved" if answer.approve else "rejected",
                APPROVAL_COMMENT.get() or "(none)",
            )
            if not answer.approve:
                return _reject(the_plan, "Rejected", f"rejected: {APPROVAL_COMMENT.get() or 'no comment'}")
            fresh = plan(observe_all(profile), profile, target)
            if not fresh.applicable or fresh.digest != the_plan.digest:
                return _refuse(fresh, "the host changed while the plan waited for approval; nothing was applied")
            late = preflight_task(fresh, profile)  # an hour may have passed: check again before step 1
            if late:
                return _refuse(fresh.model_copy(update={"refusals": tuple(late)}), "; ".join(late))
        return _carry_out(the_plan, profile, target, force, deadline_seconds)


def refused_before_any_change(applied: list[Step], journal: list[StepResult]) -> bool:
    """Nothing was applied and every step that did not apply was refused (a 403 on the first
    write, an identity that changed): the switch ends "refused" (exit 4), not "rolled back" -
    there is nothing to roll back (a skipped step found its target as wanted and did nothing).
    A step that failed may have half-happened: that rolls back."""
    return (
        not applied
        and any(r.status is StepStatus.REFUSED for r in journal)
        and all(r.status in {StepStatus.REFUSED, StepStatus.SKIPPED} for r in journal)
    )


def _serially(
    steps: tuple[Step, ...], profile: Profile, force: bool, applied: list[Step], journal: list[StepResult]
) -> str | None:
    """Steps one after the other, stopping at the first that does not apply."""
    for step in steps:
        reason = _phase_failure([(step, _apply(step, profile, force))], applied, journal)
        if reason is not None:
            return reason
    return None


def _carry_out(
    the_plan: Plan, profile: Profile, target: Mode, force: bool, deadline_seconds: float
) -> SwitchOutcome | State[Any]:
    """Apply the phases, verify, roll back on failure. A step refused (a 403 that preflight
    could not foresee, an identity that changed) before anything changed ends "refused"."""
    journal: list[StepResult] = []
    applied: list[Step] = []
    make = the_plan.in_phase("make")
    reason = _serially(make, profile, force, applied, journal)
    if reason is None and make:
        missing = wait_ready(profile, target, sorted({n for s in make for n in s.profile_services}), deadline_seconds)
        if missing:
            reason = "new owners did not serve before the old ones were stopped: " + "; ".join(missing)
    if reason is None:
        reason = _phase_failure(_apply_concurrently(the_plan.in_phase("break"), profile, force), applied, journal)
    if reason is None:  # back to back with the stops that freed their ports
        reason = _serially(the_plan.in_phase("start"), profile, force, applied, journal)
    if reason is not None:
        if refused_before_any_change(applied, journal):
            _journal_artifact(profile, journal)
            refused = SwitchOutcome(
                status=SwitchStatus.REFUSED, plan=the_plan, journal=tuple(journal), message=f"{reason}; nothing changed"
            )
            get_run_logger().warning("switch refused: %s; nothing was changed", reason)
            _switch_event("stackwarden.switch.refused", the_plan, reason=reason)
            return Failed(message=one_line(f"refused: {reason}; nothing was changed"), data=refused)
        return _roll_back(the_plan, applied, profile, journal, reason=reason, result=None)
    result_verdict = verify(profile, target, deadline_seconds)
    if not result_verdict.passed:
        reason = "verification failed: " + "; ".join(result_verdict.failures)
        return _roll_back(the_plan, applied, profile, journal, reason=reason, result=result_verdict)
    _journal_artifact(profile, journal)
    _verdict_artifact(profile, result_verdict)
    _switch_event("stackwarden.mode.switched", the_plan, outcome=str(result_verdict.outcome), steps=len(journal))
    return SwitchOutcome(
        status=SwitchStatus.SWITCHED,
        plan=the_plan,
        journal=tuple(journal),
        verdict=result_verdict,
        message=f"switched to {target}: {result_verdict.outcome}",
    )


def run_switch(**parameters: Any) -> SwitchOutcome:
    """Run the switch-mode flow and return its outcome whatever state the run ended in (refused
    and rolled-back runs end Failed, rejected ones Cancelled, each with the outcome as data)."""
    state = switch_flow(return_state=True, **parameters)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, SwitchOutcome):
        raise TypeError(f"switch-mode returned {type(result).__name__}, not a SwitchOutcome")
    return result
