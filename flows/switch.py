"""The ``switch-mode`` flow: the run layer's switch (``stackwarden.run.switch``) wired to Prefect.

The decisions (repair, phases, make before break, verify, rollback) are plain code in the run
layer; here each step becomes a task run named after its target, the observations are the
audit's observe tasks, the approval is a pause in the UI, and the plan, journal, verdict and
outcome become artifacts and an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import os
import threading
import time
from collections.abc import Sequence
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
from flows.interrupted import mark_crashed
from flows.served import is_deployment_run, run_host
from stackwarden.errors import StackwardenError
from stackwarden.model.base import Mode
from stackwarden.model.plan import Plan, Step, StepResult, StepStatus, SwitchOutcome, SwitchStatus, Verdict
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.profiles import LoadedProfile, choose_profile, read_profile
from stackwarden.report.approval import ApprovalScope, render_approval
from stackwarden.report.plan import render_outcome, render_plan
from stackwarden.report.verdict import render_verdict
from stackwarden.run.executor import MAX_CONCURRENT_STOPS, result_of
from stackwarden.run.switch import Options, run
from stackwarden.sanitize import FIELD_MAX, clean, one_line
from tasks.publish import event, markdown_artifact, table_artifact
from tasks.switch import apply_step_task, preflight_task

__all__ = ["MAX_CONCURRENT_STOPS", "PrefectExecutor", "run_switch", "switch_flow", "switch_mode"]


APPROVAL_COMMENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("approval_comment", default=None)
"""The comment of the person who answered this run's approval form (None: no one was asked). The
switch events and the verdict artifact carry it, so the record says who expected what."""


def _run_name() -> str:
    params: dict[str, Any] = flow_run.parameters or {}
    return f"switch-{profile_name_of(params)}-{params.get('mode') or 'default-mode'}"


def _key(profile: Profile, what: str) -> str:
    return f"stackwarden-{profile.name}-{what}".replace(".", "-").replace("_", "-").lower()


# --------------------------------------------------------------------------- the executor


def _outcome_of(state: Any) -> object:
    """What a finished task run returned or raised (its failure recorded, not raised)."""
    outcome = state.result(raise_on_failure=False)
    if state.is_failed() and not isinstance(outcome, BaseException):
        return RuntimeError(str(outcome))
    return outcome


class PrefectExecutor:
    """The run layer's executor as Prefect task runs: one ``apply-step`` task run per step (a
    concurrent batch on the flow's task runner, at most ``MAX_CONCURRENT_STOPS`` at once), the
    audit's observe tasks, the preflight task."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.log = get_run_logger()
        self.run_id = str(flow_run.id) if flow_run.id else None

    def observe(self) -> Snapshot:
        """The observe tasks (never cached)."""
        return observe_all(self.profile)

    def apply(
        self, steps: Sequence[Step], *, concurrent: bool, force: bool, recheck_generation: bool
    ) -> list[StepResult]:
        """Each step as its own task run; every one of a concurrent batch runs to its end."""
        started = datetime.now(UTC)
        if concurrent:
            futures = [(step, apply_step_task.submit(step, self.profile, force, recheck_generation)) for step in steps]
            for _, future in futures:
                future.wait()
            return [result_of(step, _outcome_of(future.state), started) for step, future in futures]
        results = []
        for step in steps:
            started = datetime.now(UTC)
            state = apply_step_task(step, self.profile, force, recheck_generation, return_state=True)
            results.append(result_of(step, _outcome_of(state), started))
            if results[-1].status not in {StepStatus.APPLIED, StepStatus.SKIPPED}:
                break
        return results

    def preflight(self, plan: Plan) -> list[str]:
        """The preflight task."""
        return preflight_task(plan, self.profile)

    def crashed(self, run_ids: Sequence[str], reason: str) -> list[str]:
        """Set recorded runs that a dead process left running (or pending, or paused) Crashed."""
        return asyncio.run(mark_crashed(run_ids, reason)) if run_ids else []

    def now(self) -> float:
        """``time.monotonic``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


# --------------------------------------------------------------------------- approval


class Approval(RunInput):
    """What a person answers in the Prefect UI when a switch pauses for approval."""

    approve: bool = False
    comment: str = ""


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


def _await_approval(
    the_plan: Plan, plan_artifact: UUID | None, scope: ApprovalScope, timeout_seconds: int
) -> State[Any] | None:
    """Pause for a person in the UI: None when they approve, else the run's Cancelled end. The
    approver's comment is kept (``APPROVAL_COMMENT``) for the outcome, its events and artifacts."""
    get_run_logger().info("waiting for approval of plan %s", the_plan.digest)
    try:
        answer, expired = wait_for_approval(_approval_form(the_plan, plan_artifact, scope), timeout_seconds)
    except FlowPauseTimeout:  # the server's backstop ran out: a rejection all the same
        expired = True
    if expired:  # no answer in time is a rejection: nothing changes
        return _reject(the_plan, "Approval timed out", f"no answer within {timeout_seconds}s")
    APPROVAL_COMMENT.set(clean(answer.comment, FIELD_MAX))
    get_run_logger().info(
        "plan %s %s in the UI; comment: %s",
        the_plan.digest,
        "approved" if answer.approve else "rejected",
        APPROVAL_COMMENT.get() or "(none)",
    )
    if not answer.approve:
        return _reject(the_plan, "Rejected", f"rejected: {APPROVAL_COMMENT.get() or 'no comment'}")
    return None


class _Recorded:
    """What the recorded run adds around the run layer: the plan artifact, the approval pause."""

    def __init__(self, loaded: LoadedProfile, approval: Literal["auto", "ui"], timeout_seconds: int) -> None:
        self.loaded = loaded
        self.approval = approval
        self.timeout_seconds = timeout_seconds
        self.plan_artifact: UUID | None = None
        self.scope: ApprovalScope | None = None

    def planned(self, plan: Plan, snapshot: Snapshot) -> None:
        """Publish the plan (the approval form links to it) and keep what the form names."""
        profile = self.loaded.profile
        self.scope = approval_scope(self.loaded, snapshot)
        self.plan_artifact = markdown_artifact(
            markdown=render_plan(plan),
            key=_key(profile, "switch-plan"),
            description=(
                f"Plan: switch {profile.name} to {plan.mode}, {len(plan.steps)} step(s), digest {plan.digest[:12]}"
            ),
        )

    @property
    def asks(self) -> bool:
        """A person approves in the UI (always for a deployment run: ``_policy``)."""
        return self.approval == "ui"

    def approve(self, plan: Plan) -> State[Any] | None:
        """Pause for approval in the UI."""
        scope = self.scope or approval_scope(self.loaded, observe_all(self.loaded.profile))
        return _await_approval(plan, self.plan_artifact, scope, self.timeout_seconds)


# --------------------------------------------------------------------------- publishing the end


def _switch_event(name: str, the_plan: Plan, **payload: object) -> None:
    """``stackwarden.mode.switched`` and ``stackwarden.switch.<refused|rolled_back|
    rollback_incomplete|unverified>``, with the reason, so an automation can notify on the ones
    that did not switch."""
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


def _verdict_artifact(profile: Profile, result: Verdict, reason: str = "") -> None:
    markdown_artifact(
        markdown=render_verdict(result, profile.name, reason, APPROVAL_COMMENT.get()),
        key=_key(profile, "switch-verdict"),
        description=f"Verdict of the switch of {profile.name} to {result.mode}: {result.outcome}",
    )


def _journal_artifact(profile: Profile, journal: Sequence[StepResult]) -> None:
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


_EVENTS = {
    SwitchStatus.REFUSED: "stackwarden.switch.refused",
    SwitchStatus.ROLLED_BACK: "stackwarden.switch.rolled_back",
    SwitchStatus.ROLLBACK_INCOMPLETE: "stackwarden.switch.rollback_incomplete",
    SwitchStatus.UNVERIFIED: "stackwarden.switch.unverified",
}


def _finish(profile: Profile, outcome: SwitchOutcome) -> SwitchOutcome | State[Any]:
    """Publish the end (journal, verdict, outcome, event) and give the run its state: Completed
    for a dry run or a switch, Failed with the outcome attached for everything else."""
    log = get_run_logger()
    for line in outcome.repairs:
        log.warning("interrupted switch: %s", line)
    if outcome.status is SwitchStatus.DRY_RUN:
        return outcome
    if outcome.journal:
        _journal_artifact(profile, outcome.journal)
    if outcome.verdict is not None:
        failed = outcome.status is not SwitchStatus.SWITCHED
        _verdict_artifact(profile, outcome.verdict, outcome.message if failed else "")
    if outcome.status is SwitchStatus.SWITCHED:
        _switch_event(
            "stackwarden.mode.switched",
            outcome.plan,
            outcome=str(outcome.verdict.outcome) if outcome.verdict else "",
            steps=len(outcome.journal),
            repaired=len(outcome.repairs),
        )
        return outcome
    if outcome.status in {SwitchStatus.ROLLBACK_INCOMPLETE, SwitchStatus.UNVERIFIED} or outcome.repairs:
        markdown_artifact(
            markdown=render_outcome(outcome),
            key=_key(profile, "switch-outcome"),
            description=f"Outcome of the switch of {profile.name}: {outcome.status}",
        )
    if outcome.status is SwitchStatus.REFUSED:  # the safe outcome, not a crash: one warning line
        log.warning("switch refused: %s; nothing was changed", outcome.message)
        _switch_event(_EVENTS[outcome.status], outcome.plan, reason=outcome.message)
        return Failed(message=one_line(f"refused: {outcome.message}; nothing was changed"), data=outcome)
    log.error("switch %s: %s", outcome.status, outcome.message)
    undone = sum(1 for r in outcome.journal if r.status is StepStatus.ROLLED_BACK)
    _switch_event(_EVENTS[outcome.status], outcome.plan, reason=outcome.message, steps_undone=undone)
    return Failed(message=one_line(f"{outcome.status}: {outcome.message}"), data=outcome)


# --------------------------------------------------------------------------- the flow


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
    """The run layer's switch (``stackwarden.run.switch.run``): lock, repair what a dead run left
    half done, plan (refused where the host was not fully seen) and preflight, approval (a
    deployment run always pauses in the UI: ``_policy``), the plan checked again, then make,
    wait, break, start, verify (settled), rollback. ``expected_digest`` is the digest of the plan
    a person reviewed at a terminal: a plan with any other content is refused. Without ``mode``
    the profile's ``default_mode``."""
    profile = loaded.profile
    target = Mode(mode) if mode else profile.default_mode
    approval, force, policy_note = _policy(approval, force)
    if policy_note:
        get_run_logger().warning(policy_note)
    outcome = run(
        profile,
        target,
        PrefectExecutor(profile),
        _Recorded(loaded, approval, approval_timeout_seconds),
        apply=apply,
        expected_digest=expected_digest,
        options=Options(force=force, deadline_seconds=deadline_seconds),
        holder=f"flow run {flow_run.name or flow_run.id}",
        lock_wait_seconds=lock_wait_seconds,
    )
    if not isinstance(outcome, SwitchOutcome):
        return outcome  # not approved: the Cancelled state of the approval block
    return _finish(profile, outcome)


def run_switch(**parameters: Any) -> SwitchOutcome:
    """Run the switch-mode flow and return its outcome whatever state the run ended in (refused,
    rolled-back, incomplete and unverified runs end Failed, rejected ones Cancelled, each with
    the outcome as data)."""
    state = switch_flow(return_state=True, **parameters)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, SwitchOutcome):
        raise TypeError(f"switch-mode returned {type(result).__name__}, not a SwitchOutcome")
    return result
