"""Plans, step results and verdicts of a mode switch.

A Step names its exact target identity, why it exists, whether it can be undone and how; the
step kinds themselves (plan text, printed commands, request, inverse, run name, identity
re-check) are defined once each in ``stackwarden.model.steps`` and re-exported here. The
planner is pure, so the dry-run output is the plan that ``--apply`` would carry out.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from stackwarden.model.base import Frozen, Mode
from stackwarden.model.steps import (
    PHASES,
    PREVIOUS_REPLICAS,
    ComposeStop,
    ComposeUp,
    GracefulStop,
    Phase,
    RestoreRestartPolicy,
    RunAs,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StopContainer,
    StopProcess,
    graceful_stop,
    stateful_stop,
)

__all__ = [
    "PHASES",
    "PREVIOUS_REPLICAS",
    "ComposeStop",
    "ComposeUp",
    "GracefulStop",
    "Outcome",
    "Phase",
    "Plan",
    "RestoreRestartPolicy",
    "RunAs",
    "ScaleWorkload",
    "ServiceWhere",
    "StartContainer",
    "StartProcess",
    "Step",
    "StepResult",
    "StepStatus",
    "StopContainer",
    "StopProcess",
    "SwitchOutcome",
    "SwitchStatus",
    "Unchanged",
    "Verdict",
    "graceful_stop",
    "stateful_stop",
]


class Plan(Frozen):
    """An ordered plan: frees ports before starting their new owner. A plan with refusals
    must not be applied at all (nothing half-done)."""

    profile: str
    mode: Mode
    steps: tuple[Step, ...] = ()
    refusals: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def applicable(self) -> bool:
        """True when nothing refuses the plan."""
        return not self.refusals

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the profile, the mode and every step's full model.

        What a person reviews is the content, not the ids: a step id can stay the same while its
        target, signal, replica count or grace period changes. The CLI's question and the UI's
        approval form show this digest, and a run applies a plan only if its digest is the one
        that was reviewed."""
        canonical = json.dumps(
            {
                "profile": self.profile,
                "mode": str(self.mode),
                "steps": [step.model_dump(mode="json") for step in self.steps],
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def in_phase(self, phase: Phase) -> tuple[Step, ...]:
        """The steps of one phase, in plan order."""
        return tuple(step for step in self.steps if step.phase == phase)


class Unchanged(str):
    """What an apply returns when its target already was as the step wants (a container or
    process already stopped, a container already running, a workload already at its count).
    Nothing was done, so the journal says "skipped" and a rollback leaves the target alone:
    undoing it would undo what someone else did (a container stopped by hand is not started)."""

    __slots__ = ()


class StepStatus(StrEnum):
    """How a step ended."""

    APPLIED = "applied"
    SKIPPED = "skipped"
    REFUSED = "refused"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    KEPT = "kept"
    """Not undone on purpose: the old owner of its service could not be restored, so the new
    owner that serves stays (a rollback never stops what serves for what cannot come back)."""


class StepResult(Frozen):
    """One journal entry."""

    step_id: str
    status: StepStatus
    started: datetime
    ended: datetime
    duration_seconds: float
    output: str = ""
    error: str | None = None


class Outcome(StrEnum):
    """How a switch ended. ``broken-by-code-issue`` is a success of the switch that still
    leaves a service broken for reasons no mode fixes (the seed's backend)."""

    PASSED = "passed"
    BROKEN_BY_CODE_ISSUE = "broken-by-code-issue"
    FAILED = "failed"


class Verdict(Frozen):
    """Whether the mode's invariants hold in a snapshot.

    ``failures`` lists every invariant that does not hold or could not be checked;
    ``unobserved`` is the part of them that is only "could not be observed" (a runtime or a
    kind of object that was not seen): not seeing is not failing, and a verify that stays blind
    until its deadline leaves the host as it is instead of rolling back."""

    mode: Mode
    outcome: Outcome
    failures: tuple[str, ...] = ()
    code_issues: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    unobserved: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """The mode's own invariants hold (code issues do not count against it)."""
        return self.outcome is not Outcome.FAILED

    @property
    def seen_failures(self) -> tuple[str, ...]:
        """The failures that were seen (not merely unobserved): what a rollback is for."""
        blind = set(self.unobserved)
        return tuple(f for f in self.failures if f not in blind)

    @property
    def blind(self) -> bool:
        """Not passed, and only because something could not be observed."""
        return not self.passed and not self.seen_failures


class SwitchStatus(StrEnum):
    """How a switch run ended, before the verdict's detail."""

    DRY_RUN = "dry-run"
    REFUSED = "refused"
    REJECTED = "rejected"
    SWITCHED = "switched"
    ROLLED_BACK = "rolled-back"
    UNVERIFIED = "unverified"
    """The steps ran, but the result could not be observed until the deadline: the host is left
    as it is (new owners that served stay); nothing was undone on a guess."""
    ROLLBACK_INCOMPLETE = "rollback-incomplete"
    """A rollback in which some undo failed or was impossible: what serves was kept, and the
    outcome lists what runs where now and the commands that would finish the job."""


class ServiceWhere(Frozen):
    """Where one service runs now, per runtime (a row of the rollback-incomplete table)."""

    service: str
    compose: str = ""
    kubernetes: str = ""
    host: str = ""
    serving: bool | None = Field(default=None, description="Up and ready somewhere; None when it could not be seen.")


class SwitchOutcome(Frozen):
    """Everything a switch run produced: the plan, the journal, the verdict and what happened."""

    status: SwitchStatus
    plan: Plan
    journal: tuple[StepResult, ...] = ()
    verdict: Verdict | None = None
    message: str = ""
    repairs: tuple[str, ...] = Field(
        default=(), description="What this run repaired of a switch that died half way, before it planned."
    )
    where: tuple[ServiceWhere, ...] = Field(
        default=(), description="What runs where after an incomplete rollback (observed after it)."
    )
    to_finish: tuple[str, ...] = Field(
        default=(), description="The commands, in order, that would finish an incomplete rollback."
    )
    approval_comment: str | None = Field(
        default=None, description="What the person who approved or rejected the plan in the UI wrote."
    )
