"""The switch journal as data, and what a dead run's journal means (pure).

A switch that applies anything keeps a journal file (``stackwarden.adapters.journal``): a
``begin`` record with its plan, then for every step an ``intent`` (written and fsynced before the
step: the step, its undo and the undo's commands) and an ``outcome`` after it, ``phase`` markers,
and an ``end``. A journal without ``end`` whose writer is gone belongs to a run that died (SIGKILL,
host crash) part way: ``repair`` says what must be put back before anything else is planned, and
the audit reports it (rule ``interrupted-switch``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import Field

from stackwarden.model.base import Frozen, Mode
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import InterruptedRun
from stackwarden.model.steps import (
    ComposeStop,
    ComposeUp,
    RestoreRestartPolicy,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StopContainer,
)

Role = Literal["forward", "undo", "redo", "repair"]
"""Why a step ran: a planned step, an undo of one (rollback), a planned step run again because
its old owner could not be restored, or a repair of an earlier run."""

CHANGED = frozenset({"applied", "rolled-back"})


class JournalEntry(Frozen):
    """One step as the journal recorded it: its intent, and its outcome if the run lived to write it."""

    seq: int
    role: Role
    step: Step
    status: str | None = Field(default=None, description="applied, skipped, refused, failed; None: no outcome written.")
    error: str | None = None


class InterruptedSwitch(Frozen):
    """A journal left by a switch that died before its end: what it planned and what it did."""

    path: str
    run_id: str
    flow_run_id: str | None = None
    pid: int | None = None
    profile: str
    mode: Mode
    started: str
    planned: tuple[Step, ...] = ()
    entries: tuple[JournalEntry, ...] = ()
    last_phase: str | None = None

    @property
    def changed_anything(self) -> bool:
        """Whether it got as far as a step (a run that died before its first intent changed nothing)."""
        return bool(self.entries)


class Repair(Frozen):
    """What the next switch puts back before it plans, and what it cannot."""

    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()


def _may_have_changed(entry: JournalEntry) -> bool:
    """Applied, or no outcome (it died during the step), or a failure that may have half-happened."""
    if entry.status is None or entry.status in CHANGED:
        return True
    return entry.status == "failed" and entry.step.UNDO_AFTER_FAILURE


def effective_steps(entries: Iterable[JournalEntry]) -> list[JournalEntry]:
    """The planned (or redone) steps whose change may still be in place: done or maybe done, and
    not undone since (an undo, rollback or repair, that applied or found nothing to do)."""
    entries = list(entries)
    undone = {_undone_id(e.step.id) for e in entries if e.role in {"undo", "repair"} and e.status in UNDONE}
    redone = {e.step.id for e in entries if e.role == "redo" and _may_have_changed(e)}
    out: dict[str, JournalEntry] = {}
    for entry in entries:
        if entry.role not in {"forward", "redo"} or not _may_have_changed(entry):
            continue
        if entry.step.id in undone and entry.step.id not in redone:
            continue
        out[entry.step.id] = entry
    return list(out.values())


UNDONE = frozenset({"applied", "rolled-back", "skipped"})
"""Outcomes of an undo after which the step's change is gone (skipped: there was nothing to undo)."""


def _undone_id(step_id: str) -> str:
    """The id of the step an undo or repair step is for (``undo:X`` and ``repair:X`` undo ``X``)."""
    for prefix in ("undo:", "repair:"):
        if step_id.startswith(prefix):
            return step_id.removeprefix(prefix)
    return step_id


def _paused_policies(entries: Sequence[JournalEntry]) -> list[Step]:
    """A graceful stop that paused a restart policy and did not report back: the policy may still
    be ``no`` (the run died between the pause and the restore)."""
    out: dict[str, Step] = {}
    for entry in entries:
        if entry.status in {"applied", "skipped", "refused"}:
            continue  # its own finally put the policy back, or it never paused it
        restore = entry.step.after_failure()
        if isinstance(entry.step, StopContainer) and restore is not None:
            out[entry.step.container_id] = restore.model_copy(
                update={
                    "id": f"repair:policy:{entry.step.container_id}",
                    "why": "an interrupted switch paused this restart policy for a graceful stop and died before "
                    "restoring it",
                }
            )
    return list(out.values())


def _half_moved(run: InterruptedSwitch, effective: Sequence[JournalEntry]) -> tuple[list[Step], list[str]]:
    """Services whose old owner the run stopped while the new owner it planned never started:
    nothing may serve them now. Their stops are undone (newest first) where the kind can be undone."""
    started = {s for e in effective if e.step.phase in {"make", "start"} for s in e.step.profile_services}
    planned_new = {s for step in run.planned if step.phase in {"make", "start"} for s in step.profile_services}
    steps: list[Step] = []
    notes: list[str] = []
    for entry in reversed(effective):
        step = entry.step
        if step.phase != "break":
            continue
        waiting = [s for s in step.profile_services if s in planned_new and s not in started]
        if not waiting:
            continue  # moved (its new owner started), or the plan gave it no new owner here
        undo = step.undo()
        if undo is None:
            notes.append(
                f"{', '.join(waiting)}: the interrupted switch stopped {step.target} before starting its new owner, "
                "and stackwarden cannot start it again (no unit, no start_command): the new plan must start it"
            )
            continue
        steps.append(undo.model_copy(update={"id": f"repair:{step.id}", "why": f"repair: {step.why}"}))
    return steps, notes


def repair(runs: Sequence[InterruptedSwitch]) -> Repair:
    """What to put back of every interrupted run (oldest first, their entries taken together: a
    repair that itself died is repaired too): paused restart policies, and services left with
    their old owner stopped and their new one not started. Every step is identity-checked and a
    no-op where there is nothing to do, so a repair may safely run twice."""
    entries: list[JournalEntry] = [e for run in runs for e in run.entries]
    effective = effective_steps(entries)
    steps: list[Step] = _paused_policies(entries)
    notes: list[str] = []
    for run in runs:
        mine = [e for e in effective if any(e is x for x in run.entries)]
        moved, why = _half_moved(run, mine)
        steps += moved
        notes += why
    unique = list({step.id: step for step in steps}.values())
    return Repair(steps=tuple(unique), notes=tuple(notes))


def describe(run: InterruptedSwitch) -> str:
    """One line: which run, when, how far it got."""
    done = sum(1 for e in run.entries if e.status is not None)
    open_steps = [e.step.id for e in run.entries if e.status is None]
    where = f"; it died during {', '.join(open_steps)}" if open_steps else ""
    phase = f" in phase {run.last_phase}" if run.last_phase else ""
    who = f"PID {run.pid}" if run.pid else "an unknown process"
    return (
        f"a switch of {run.profile} to {run.mode} ({who}, started {run.started}) ended without finishing{phase}: "
        f"{done} of {len(run.entries)} step(s) reported back{where}"
    )


def out_of_scope(step: Step, profile: Profile) -> str | None:
    """Why a step read from a journal must not be acted on under ``profile``, or None.

    A journal says what a run of *this* profile did; a step naming a service, compose project,
    namespace, workload, unit or start command the profile does not (an edited profile, or a
    file that is not what it claims) is reported, never executed."""
    services = [s for s in step.profile_services if s not in profile.services]
    if services:
        return f"service(s) {', '.join(services)} are not in profile {profile.name}"
    projects = {c.project: c for c in profile.compose_projects}
    if isinstance(step, StopContainer | StartContainer | RestoreRestartPolicy):
        if step.compose_project not in projects:
            return f"compose project {step.compose_project} is not in the profile"
    elif isinstance(step, ComposeUp | ComposeStop):
        spec = projects.get(step.project)
        if spec is None or spec.files != step.files:
            return f"compose project {step.project} with files {', '.join(step.files)} is not the profile's"
    elif isinstance(step, ScaleWorkload):
        kube = profile.kubernetes
        names = {s.kubernetes.name for s in profile.services.values() if s.kubernetes is not None}
        if kube is None or step.namespace != kube.namespace or step.name not in names:
            return f"workload {step.namespace}/{step.name} is not the profile's"
    elif isinstance(step, StartProcess):
        matcher = profile.services[step.service].host
        if matcher is None:
            return f"{step.service} has no host section in the profile"
        if step.systemd_unit is None and step.start_command != matcher.start_command:
            command = " ".join(step.start_command or ())
            return f"start command {command!r} is not services.{step.service}.host.start_command"
        if step.systemd_unit is not None and not _unit_of(step.systemd_unit, matcher.systemd_unit, matcher.executables):
            return f"unit {step.systemd_unit} is not services.{step.service}'s"
    return None


def _unit_of(unit: str, named: str | None, executables: tuple[str, ...]) -> bool:
    """The profile's unit, or one named after one of the service's executables (as the planner trusts)."""
    stem = unit.removesuffix(".service").split("@", 1)[0]
    return unit == named or any(stem.startswith(e) or e.startswith(stem) for e in executables)


def summarize(runs: Sequence[InterruptedSwitch], profile: Profile) -> tuple[InterruptedRun, ...]:
    """What an audit reports of each interrupted run: how far it got, and the commands of the
    repair the next switch would make (only steps inside the profile's scope)."""
    out = []
    for run in runs:
        if not run.changed_anything:
            continue
        todo = repair([run])
        commands = [
            " ".join(shlex.quote(a) for a in argv)
            for step in todo.steps
            if out_of_scope(step, profile) is None
            for argv in step.commands()
        ]
        out.append(
            InterruptedRun(
                run_id=run.run_id,
                mode=str(run.mode),
                started=run.started,
                pid=run.pid,
                journal=run.path,
                summary=describe(run),
                steps_recorded=len(run.entries),
                repair_commands=tuple(commands),
                notes=todo.notes,
            )
        )
    return tuple(out)
