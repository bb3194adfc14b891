"""The switch as a state machine (plain code, no Prefect): the decisions between "approved" and
the end, and the repair of a run that died before its end.

States and exits (docs/architecture.md draws them)::

    locked -> repair -> planned -> (refused | dry-run) / approved -> make -> wait -> break -> start
           -> verify -> switched | unverified | rollback -> rolled-back | rollback-incomplete

- make: new owners that need no port an old one holds; wait: until they serve (make before
  break); break: the old owners' stops, concurrently; start: new owners that needed a freed port.
- verify: the mode's invariants must hold on consecutive observations spanning the profile's
  settle window. Not seeing is not failing: a verify that stays blind until its deadline leaves
  the host as it is and ends ``unverified``.
- rollback: undo in reverse; a failed (or impossible) undo of a break step keeps the make/start
  steps of the same services (their new owners serve; the old ones could not come back), and a
  new owner stopped to free a port for an old one that then failed to start is started again.
  Any undo that did not happen ends ``rollback-incomplete``, with where everything runs now and
  the commands that would finish the job.

Every step is journaled (intent before, outcome after) when a journal is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from stackwarden.adapters.journal import Journal
from stackwarden.adapters.lock import lock_resources, switch_lock
from stackwarden.model.base import Mode
from stackwarden.model.journal import Role
from stackwarden.model.plan import (
    Plan,
    ServiceWhere,
    Step,
    StepResult,
    StepStatus,
    SwitchOutcome,
    SwitchStatus,
    Verdict,
)
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.model.steps import printed
from stackwarden.pipeline import Progress
from stackwarden.planner import plan as make_plan
from stackwarden.planner import undo_after_failure
from stackwarden.run.executor import Executor, LocalExecutor, ShownExecutor
from stackwarden.run.repair import Repaired, pending_repair_notes, repair_interrupted
from stackwarden.verdict import not_ready, verdict, where_now

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class JournalLike(Protocol):
    """Where the run writes what it is about to do and what happened (``adapters.journal``)."""

    def intent(self, step: Step, role: Role) -> int: ...

    def outcome(self, seq: int, status: str, error: str | None = None) -> None: ...

    def phase(self, name: str) -> None: ...


class NoJournal:
    """A run that writes no journal (unit tests of the decisions)."""

    def intent(self, step: Step, role: Role) -> int:
        """Nothing is written."""
        return 0

    def outcome(self, seq: int, status: str, error: str | None = None) -> None:
        """Nothing is written."""

    def phase(self, name: str) -> None:
        """Nothing is written."""


@dataclass(frozen=True)
class Options:
    """How a run behaves: ``force`` (SIGKILL a stateful service that ignores its signal),
    the deadline of each wait (make-before-break, verify), the settle window (None: the
    profile's ``switch.settle_seconds``) and the pause between two observations."""

    force: bool = False
    deadline_seconds: float = 120.0
    settle_seconds: float | None = None
    poll_seconds: float = 2.0


# --------------------------------------------------------------------------- waits


def verify(
    profile: Profile,
    mode: Mode,
    executor: Executor,
    *,
    deadline_seconds: float,
    settle_seconds: float,
    poll_seconds: float = 2.0,
) -> Verdict:
    """Observe until the mode's invariants have held on consecutive observations spanning
    ``settle_seconds`` (a supervisor that restarts what was stopped, a container that dies a
    second after its start: the next observation fails and the window starts again), or until
    the deadline. Once they hold, the window is always completed, even past the deadline."""
    deadline = executor.now() + deadline_seconds
    held_since: float | None = None
    pause = min(poll_seconds, max(0.5, settle_seconds / 3)) if settle_seconds > 0 else poll_seconds
    while True:
        result = verdict(executor.observe(), profile, mode)  # the observation ran the health checks
        now = executor.now()
        if result.passed:
            held_since = now if held_since is None else held_since
            if now - held_since >= settle_seconds:
                return result
            end = max(deadline, held_since + settle_seconds)
        else:
            if held_since is not None:
                executor.log.warning(
                    "verify: the invariants held, then broke again: %s", "; ".join(result.failures[:3])
                )
            held_since = None
            end = deadline
            executor.log.info(
                "verify: %d invariant(s) not met yet: %s", len(result.failures), "; ".join(result.failures[:3])
            )
        if now >= end:
            return result
        executor.sleep(max(0.0, min(pause, end - now)))


def wait_ready(
    profile: Profile,
    mode: Mode,
    executor: Executor,
    services: list[str],
    *,
    deadline_seconds: float,
    poll_seconds: float = 1.0,
) -> list[str]:
    """Make before break: poll until the new owners of ``services`` serve (up, ready, healthy,
    seen) or the deadline passes; returns what is still missing (empty: ready)."""
    deadline = executor.now() + deadline_seconds
    while True:
        missing = not_ready(executor.observe(), profile, mode, services)
        if not missing or executor.now() >= deadline:
            return missing
        executor.sleep(poll_seconds)


# --------------------------------------------------------------------------- carrying a plan out


@dataclass
class _Run:
    """One plan being carried out: what was applied (or may have half-happened), every result."""

    plan: Plan
    profile: Profile
    executor: Executor
    journal: JournalLike
    options: Options
    applied: list[Step] = field(default_factory=list)
    results: list[StepResult] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    """Ids of the applied steps that failed part way (undone too: they may have half-happened)."""

    def run_steps(
        self, steps: Sequence[Step], role: Role, *, concurrent: bool, recheck_generation: bool = True
    ) -> list[tuple[Step, StepResult]]:
        """Journal the intents, apply, journal the outcomes. One after the other unless
        ``concurrent``; a serial batch stops at the first step that does not apply."""
        if concurrent:
            return self._batch(steps, role, recheck_generation)
        out: list[tuple[Step, StepResult]] = []
        for step in steps:
            done = self._batch([step], role, recheck_generation)
            out += done
            if not done or done[0][1].status not in {StepStatus.APPLIED, StepStatus.SKIPPED}:
                break
        return out

    def _batch(self, steps: Sequence[Step], role: Role, recheck_generation: bool) -> list[tuple[Step, StepResult]]:
        """Every intent on disk before any step of the batch runs, every outcome after."""
        seqs = [self.journal.intent(step, role) for step in steps]
        results = self.executor.apply(
            steps, concurrent=len(steps) > 1, force=self.options.force, recheck_generation=recheck_generation
        )
        by_id = {r.step_id: r for r in results}
        out = []
        for seq, step in zip(seqs, steps, strict=True):
            result = by_id.get(step.id)
            if result is not None:
                self.journal.outcome(seq, str(result.status), result.error)
                out.append((step, result))
        return out

    def forward(self, phase: str, *, concurrent: bool) -> str | None:
        """Run one phase of the plan; the first step that did not apply, as the reason to stop. A
        failed step that may have half-happened (its kind says so) is undone with the rest."""
        steps = [s for s in self.plan.steps if s.phase == phase]
        if not steps:
            return None
        self.journal.phase(phase)
        reason = None
        for step, result in self.run_steps(steps, "forward", concurrent=concurrent):
            self.results.append(result)
            if result.status is StepStatus.FAILED and undo_after_failure(step):
                self.failed.add(step.id)
            if result.status is StepStatus.APPLIED or step.id in self.failed:
                self.applied.append(step)
            if result.status not in {StepStatus.APPLIED, StepStatus.SKIPPED} and reason is None:
                reason = f"step {step.id} {result.status}: {result.error}"
        return reason

    def outcome(
        self, status: SwitchStatus, message: str, result: Verdict | None = None, **extra: object
    ) -> SwitchOutcome:
        """The run's end, with its journal so far."""
        return SwitchOutcome(
            status=status, plan=self.plan, journal=tuple(self.results), verdict=result, message=message, **extra
        )


def refused_before_any_change(applied: Sequence[Step], results: Sequence[StepResult]) -> bool:
    """Nothing was applied and every step that did not apply was refused (a 403 on the first
    write, an identity that changed): the switch ends "refused" (exit 4), not "rolled back" -
    there is nothing to roll back (a skipped step found its target as wanted and did nothing).
    A step that failed may have half-happened: that rolls back."""
    return (
        not applied
        and any(r.status is StepStatus.REFUSED for r in results)
        and all(r.status in {StepStatus.REFUSED, StepStatus.SKIPPED} for r in results)
    )


def carry_out(
    the_plan: Plan,
    profile: Profile,
    executor: Executor,
    journal: JournalLike | None = None,
    options: Options | None = None,
) -> SwitchOutcome:
    """Apply the approved plan phase by phase, verify, and roll back (or leave as it is when the
    result could not be seen) - every decision between approval and the end."""
    opts = options or Options()
    run = _Run(the_plan, profile, executor, journal or NoJournal(), opts)
    mode = the_plan.mode
    reason = run.forward("make", concurrent=False)
    make = [s for s in the_plan.steps if s.phase == "make"]
    if reason is None and make:
        run.journal.phase("wait")
        services = sorted({n for s in make for n in s.profile_services})
        missing = wait_ready(
            profile,
            mode,
            executor,
            services,
            deadline_seconds=opts.deadline_seconds,
            poll_seconds=min(1.0, opts.poll_seconds),
        )
        if missing:
            reason = "new owners did not serve before the old ones were stopped: " + "; ".join(missing)
    if reason is None:
        reason = run.forward("break", concurrent=True)
    if reason is None:  # back to back with the stops that freed their ports
        reason = run.forward("start", concurrent=False)
    if reason is not None:
        if refused_before_any_change(run.applied, run.results):
            executor.log.error("switch refused: %s", reason)
            return run.outcome(SwitchStatus.REFUSED, f"{reason}; nothing changed")
        return rollback(run, reason, None)
    run.journal.phase("verify")
    settle = opts.settle_seconds if opts.settle_seconds is not None else profile.switch.settle_seconds
    result = verify(
        profile,
        mode,
        executor,
        deadline_seconds=opts.deadline_seconds,
        settle_seconds=settle,
        poll_seconds=opts.poll_seconds,
    )
    if result.passed:
        return run.outcome(SwitchStatus.SWITCHED, f"switched to {mode}: {result.outcome}", result)
    if result.blind:
        seen = "; ".join(result.checks) or "nothing else"
        message = f"unverified: {'; '.join(result.unobserved)} until the deadline; left as it is (seen: {seen})"
        executor.log.error("%s", message)
        return run.outcome(SwitchStatus.UNVERIFIED, message, result)
    return rollback(run, "verification failed: " + "; ".join(result.seen_failures), result)


# --------------------------------------------------------------------------- rollback


@dataclass
class _Undo:
    """The rollback's bookkeeping: which services could not get their old owner back, and the
    undo (or redo) each applied step still needs (for the commands that finish the job)."""

    unrestored: set[str] = field(default_factory=set)
    undone_starts: dict[str, list[Step]] = field(default_factory=dict)
    pending: dict[str, Step] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    on_its_way_out: set[str] = field(default_factory=set)
    """Ids of failed stops whose old owner still ran at the undo: it may have got its signal."""


def _record(run: _Run, result: StepResult, status: StepStatus | None = None) -> None:
    """Journal an undo's result (an applied undo as rolled-back)."""
    run.results.append(result.model_copy(update={"status": status}) if status is not None else result)


def _kept(run: _Run, step: Step, why: str) -> None:
    """Journal an undo withheld on purpose."""
    stamp = datetime.now(UTC)
    run.results.append(
        StepResult(
            step_id=f"undo:{step.id}", status=StepStatus.KEPT, started=stamp, ended=stamp, duration_seconds=0, error=why
        )
    )


def _put_back(run: _Run, step: Step, book: _Undo) -> None:
    """What a failed step may have left changed beside its own effect (a paused restart policy)
    is put back first, whatever happens to the step's own undo; if it cannot be, it is left to
    finish by hand."""
    fix = step.after_failure() if step.id in run.failed else None
    if fix is None:
        return
    for _, result in run.run_steps([fix], "undo", concurrent=False, recheck_generation=False):
        _record(run, result, StepStatus.ROLLED_BACK if result.status is StepStatus.APPLIED else None)
        if result.status not in {StepStatus.APPLIED, StepStatus.SKIPPED}:
            book.pending[fix.id] = fix
            book.notes.append(f"{fix.target} could not be put back: {result.error}")


def _undo_one(run: _Run, step: Step, book: _Undo) -> None:
    """Undo one applied step, unless doing so would stop what serves for what cannot come back."""
    _put_back(run, step, book)
    services = set(step.profile_services)
    undo = step.undo()
    if step.phase in {"make", "start"} and services & book.unrestored:
        lost = ", ".join(sorted(services & book.unrestored))
        _kept(run, step, f"kept: the old owner of {lost} could not be restored, so its new owner keeps serving")
        if undo is not None:
            book.pending[step.id] = undo
        return
    if undo is None:
        if step.phase != "break":  # an old owner that cannot come back was said once, up front
            book.notes.append(f"{step.run_name()} cannot be undone")
        return
    done = run.run_steps([undo], "undo", concurrent=False, recheck_generation=False)
    if not done:
        return
    result = done[0][1]
    # a stop that failed part way and whose old owner still runs: its signal may have been sent
    # (a database still shutting down after its grace period), so it is not known to stay
    on_its_way_out = step.id in run.failed and step.MAY_COMPLETE_LATER and result.status is StepStatus.SKIPPED
    if result.status in {StepStatus.APPLIED, StepStatus.SKIPPED} and not on_its_way_out:
        _record(run, result, StepStatus.ROLLED_BACK if result.status is StepStatus.APPLIED else None)
        if step.phase == "start":
            for service in services:
                book.undone_starts.setdefault(service, []).append(step)
        return
    _record(run, result)
    book.pending[step.id] = undo
    if step.phase == "break":
        if on_its_way_out:
            book.on_its_way_out.add(step.id)
            book.notes.append(
                f"{', '.join(services)}: its stop ({step.run_name()}) failed part way; the old owner still runs but "
                "may have got its signal and be on its way out, so its new owner is kept"
            )
        book.unrestored |= services
        _restart_new_owners(run, services, book)


def _restart_new_owners(run: _Run, services: set[str], book: _Undo) -> None:
    """A break step's undo failed after the new owner (which needed the freed port) was stopped:
    start that new owner again, or the service has no owner at all."""
    for service in sorted(services):
        for step in book.undone_starts.pop(service, []):
            done = run.run_steps([step], "redo", concurrent=False, recheck_generation=False)
            for _, result in done:
                _record(run, result.model_copy(update={"step_id": f"redo:{step.id}"}))
                if result.status not in {StepStatus.APPLIED, StepStatus.SKIPPED}:
                    book.notes.append(f"{service}: its new owner could not be started again: {result.error}")
            undo = step.undo()
            if undo is not None:
                book.pending[step.id] = undo  # to finish: stop it again, then restore the old owner


def rollback(run: _Run, reason: str, result: Verdict | None) -> SwitchOutcome:
    """Undo the applied steps in reverse order without ever making things worse; ends
    ``rolled-back`` when everything was undone, else ``rollback-incomplete`` with the table of
    what runs where now and the commands that would finish the job."""
    executor = run.executor
    executor.log.error("%s; rolling back %d step(s)", reason, len(run.applied))
    run.journal.phase("rollback")
    book = _Undo()
    for step in run.applied:  # an old owner that no step of ours can bring back is lost from the start
        if step.phase == "break" and step.undo() is None:
            book.unrestored |= set(step.profile_services)
            how = " (its stop failed part way: it may be on its way out)" if step.id in run.failed else ""
            book.notes.append(
                f"{', '.join(step.profile_services)}: its old owner ({step.run_name()}) cannot be started again "
                f"by stackwarden{how}"
            )
    for step in reversed(run.applied):
        _undo_one(run, step, book)
    if not book.pending and not book.unrestored:
        return run.outcome(SwitchStatus.ROLLED_BACK, reason, result)
    where: tuple[ServiceWhere, ...] = ()
    with contextlib.suppress(Exception):  # the table is for the person; its absence must not hide the status
        where = where_now(executor.observe(), run.profile)
    to_finish = _to_finish(run, book)
    failed = [
        r.step_id
        for r in run.results
        if r.step_id.startswith(("undo:", "redo:")) and r.status in {StepStatus.FAILED, StepStatus.REFUSED}
    ]
    names = {step.id: step.run_name() for step in run.applied}
    kept = [names.get(r.step_id.removeprefix("undo:"), r.step_id) for r in run.results if r.status is StepStatus.KEPT]
    parts = [reason]
    if failed:
        parts.append(f"{len(failed)} undo step(s) failed ({', '.join(failed)})")
    if kept:
        parts.append(f"kept serving: {', '.join(kept)}")
    parts += book.notes
    message = "rollback incomplete: " + "; ".join(parts)
    executor.log.error("%s", message)
    return run.outcome(SwitchStatus.ROLLBACK_INCOMPLETE, message, result, where=where, to_finish=tuple(to_finish))


def _to_finish(run: _Run, book: _Undo) -> list[str]:
    """The commands that would finish the rollback, in the order a rollback would run them
    (newest step first: a new owner stopped before its port's old owner is started again)."""
    lines: list[str] = []
    for step in reversed(run.applied):
        fix = step.after_failure()
        if fix is not None and fix.id in book.pending:
            lines += [printed(argv) for argv in fix.commands()]
        undo = book.pending.get(step.id)
        if undo is not None and step.id in book.on_its_way_out:
            lines.append(
                f"# {step.service}: wait until {step.target} has exited (it may have got its stop signal), then"
            )
        if undo is not None:
            lines += [printed(argv) for argv in undo.commands()]
        elif step.phase == "break" and step.undo() is None:
            lines.append(f"# start {step.service} again as it was started before (stackwarden knows no command)")
    return lines


# --------------------------------------------------------------------------- plan, approve, run


def prepare(profile: Profile, mode: Mode, executor: Executor) -> tuple[Plan, Snapshot]:
    """Observe, plan, and run preflight on an applicable plan (refusals then name every failure);
    the observation too (the approval form names the cluster it saw)."""
    snapshot = executor.observe()
    the_plan = make_plan(snapshot, profile, mode)
    if the_plan.applicable:
        the_plan = the_plan.model_copy(update={"refusals": tuple(executor.preflight(the_plan))})
    return the_plan, snapshot


def recheck(approved: Plan, profile: Profile, executor: Executor) -> tuple[Plan, str | None]:
    """After an approval (an hour may have passed): observe and plan again; the plan must still
    have the approved digest and pass preflight. Returns the plan and a refusal, if any."""
    fresh = make_plan(executor.observe(), profile, approved.mode)
    if not fresh.applicable or fresh.digest != approved.digest:
        return fresh, "the host changed while the plan waited for approval; nothing was applied"
    late = executor.preflight(fresh)
    if late:
        return fresh.model_copy(update={"refusals": tuple(late)}), "; ".join(late)
    return fresh, None


class Surroundings(Protocol[T_co]):
    """What a recorded run adds around the decisions: publishing the plan, asking a person."""

    @property
    def asks(self) -> bool:
        """Whether an applying run pauses for a person (then the plan is made again after)."""
        ...

    def planned(self, plan: Plan, snapshot: Snapshot) -> None:
        """The plan is ready, made from ``snapshot`` (a recorded run publishes it as an artifact)."""
        ...

    def approve(self, plan: Plan) -> T_co | None:
        """Ask for approval: None to go on, anything else ends the run with it (a rejection)."""
        ...


def _refused(reason: str, the_plan: Plan, repairs: tuple[str, ...] = ()) -> SwitchOutcome:
    """A switch that must not go on (nothing of the plan was applied)."""
    return SwitchOutcome(status=SwitchStatus.REFUSED, plan=the_plan, message=reason, repairs=repairs)


def run(
    profile: Profile,
    mode: Mode,
    executor: Executor,
    surroundings: Surroundings[T] | None = None,
    *,
    apply: bool = False,
    expected_digest: str | None = None,
    options: Options | None = None,
    holder: str = "a switch",
    lock_wait_seconds: float = 0.0,
) -> SwitchOutcome | T:
    """The whole switch: lock (when applying), repair what a dead run left half done, plan and
    preflight, refuse or stop at a dry run, ask for approval (``surroundings``), check the plan
    again, then carry it out with a journal. Whatever ``surroundings.approve`` returns instead
    of None ends the run and is returned as it is."""
    opts = options or Options()
    lock = (
        switch_lock(lock_resources(profile), holder, lock_wait_seconds, profile=profile.name)
        if apply
        else contextlib.nullcontext()
    )  # a dry run changes nothing: no lock, no repair
    with lock:
        repaired = repair_interrupted(profile, executor) if apply else Repaired()
        if repaired.failures:
            return _refused(
                "could not repair what an interrupted switch left: " + "; ".join(repaired.failures),
                Plan(profile=profile.name, mode=mode),
                repaired.lines,
            )
        the_plan, snapshot = prepare(profile, mode, executor)
        if not apply:
            the_plan = the_plan.model_copy(update={"notes": the_plan.notes + pending_repair_notes(profile)})
        if surroundings is not None:
            surroundings.planned(the_plan, snapshot)
        if not the_plan.applicable:
            return _refused("; ".join(the_plan.refusals), the_plan, repaired.lines)
        if expected_digest is not None and the_plan.digest != expected_digest:
            reason = "the plan changed since it was reviewed (its digest differs); review the new plan"
            return _refused(reason, the_plan, repaired.lines)
        if not apply:
            return SwitchOutcome(status=SwitchStatus.DRY_RUN, plan=the_plan, message="dry run: nothing changed")
        if surroundings is not None and surroundings.asks and the_plan.steps:
            answer = surroundings.approve(the_plan)
            if answer is not None:
                return answer
            the_plan, late = recheck(the_plan, profile, executor)
            if late is not None:
                return _refused(late, the_plan, repaired.lines)
        journal = Journal.begin(the_plan, flow_run_id=executor.run_id)
        try:
            outcome = carry_out(the_plan, profile, executor, journal, opts)
        except BaseException:
            journal.close()  # not ended: the next switch repairs what this one left
            raise
        journal.end(str(outcome.status))
        return outcome.model_copy(update={"repairs": repaired.lines}) if repaired.lines else outcome


def dry_run(profile: Profile, mode: Mode, progress: Progress | None = None) -> SwitchOutcome:
    """A switch's dry run in this process, no Prefect: the same ``run`` as the recorded flow
    (observe, plan, preflight, the notes of a repair pending), with no lock and no change, and a
    live line for each slow part. The applying switch stays a recorded flow."""
    executor = ShownExecutor(profile, progress) if progress is not None else LocalExecutor(profile)
    outcome: SwitchOutcome = run(profile, mode, executor, apply=False)
    return outcome
