"""Find and repair what a switch that died part way left half done, before anything is planned.

The dead run's journal (``stackwarden.adapters.journal``) says what it may have changed; the pure
``stackwarden.model.journal.repair`` says what to put back (restart policies paused for a graceful
stop, services whose old owner was stopped while the new one never started); each repair step is
checked against the profile's scope, identity-checked by its adapter and journaled like any
other step. Recorded runs the dead process left "Running" are marked crashed.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwarden.adapters.journal import Journal, discard, read_interrupted
from stackwarden.errors import StackwardenError
from stackwarden.model.journal import describe, out_of_scope, repair
from stackwarden.model.plan import Plan, StepStatus
from stackwarden.model.profile import Profile
from stackwarden.model.steps import printed
from stackwarden.run.executor import Executor


@dataclass(frozen=True)
class Repaired:
    """What the repair found and did (lines for the outcome), and what it could not do."""

    lines: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()


def repair_interrupted(profile: Profile, executor: Executor) -> Repaired:
    """Repair every interrupted switch of ``profile`` (the caller holds its locks). Its journals
    are removed only when every repair step applied or found nothing to do; otherwise they stay,
    and the switch is refused with what failed."""
    runs = read_interrupted(profile.name)
    if not runs:
        return Repaired()
    lines = [f"found: {describe(run)}" for run in runs]
    marked = executor.crashed([r.flow_run_id for r in runs if r.flow_run_id], "its process died during a switch")
    lines += [f"recorded run {run_id} marked Crashed" for run_id in marked]
    todo = repair(runs)
    lines += [f"note: {note}" for note in todo.notes]
    failures = []
    steps = []
    for step in todo.steps:
        why = out_of_scope(step, profile)
        if why is not None:
            failures.append(f"the journal asks for {step.id}, but {why}; check and remove {runs[-1].path}")
        else:
            steps.append(step)
    if failures:
        return Repaired(tuple(lines), tuple(failures))
    if steps:
        executor.log.warning("repairing what an interrupted switch left: %s", ", ".join(s.id for s in steps))
        journal = Journal.begin(
            Plan(profile=profile.name, mode=runs[-1].mode, steps=tuple(steps)), flow_run_id=executor.run_id
        )
        journal.phase("repair")
        for step in steps:
            seq = journal.intent(step, "repair")
            (result,) = executor.apply([step], concurrent=False, force=False, recheck_generation=False)
            journal.outcome(seq, str(result.status), result.error)
            if result.status in {StepStatus.APPLIED, StepStatus.SKIPPED}:
                lines.append(f"repaired: {step.target}: {result.output}")
            else:
                failures.append(f"{step.id}: {result.error}")
        journal.end("repaired" if not failures else "repair-failed")
    if not failures:
        discard(runs)
    return Repaired(tuple(lines), tuple(failures))


def pending_repair_notes(profile: Profile) -> tuple[str, ...]:
    """For a dry run: an interrupted switch waiting to be repaired, and the commands the repair
    would run (a dry run changes nothing, so it only says so)."""
    try:
        runs = read_interrupted(profile.name)
    except (StackwardenError, OSError) as exc:
        return (f"switch journals could not be read: {exc}",)
    if not runs:
        return ()
    todo = repair(runs)
    commands = [printed(argv) for step in todo.steps if out_of_scope(step, profile) is None for argv in step.commands()]
    return (
        *(f"interrupted: {describe(run)}" for run in runs),
        "--apply repairs it before anything else"
        + (": " + "; ".join(commands) if commands else " (nothing to put back)"),
        *todo.notes,
    )
