"""Plans, step results and verdicts of a mode switch (DESIGN.md §3).

A Step names its exact target identity, why it exists, whether it can be undone and how; the
planner is pure, so the dry-run output is the plan that ``--apply`` would carry out.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from stackwarden.model.base import Frozen, Mode, Runtime
from stackwarden.model.profile import clean_stop_signal, signal_name
from stackwarden.model.snapshot import Container

PREVIOUS_REPLICAS = "stackwarden.io/previous-replicas"
"""The annotation a scale to 0 writes on the workload (its count before), read to restore it:
one name for the planner, the Kubernetes adapter and the printed commands."""

Phase = Literal["make", "break", "start"]
PHASES: tuple[Phase, ...] = ("make", "break", "start")


class _StepBase(Frozen):
    """What every step carries: identity, reason, reversibility."""

    id: str
    service: str
    runtime: Runtime
    why: str
    target: str = Field(description="The exact identity acted on, as a person reads it.")
    reversible: bool
    inverse: str = Field(description="What undoing this step does ('' when it cannot be undone).")
    phase: Phase = Field(
        default="break",
        description=(
            "make: start a new owner that needs no port an old one holds (before anything stops); "
            "break: stop an old owner (independent stops run concurrently); start: a new owner that "
            "needed a freed port, started right after the stops."
        ),
    )

    @property
    def profile_services(self) -> tuple[str, ...]:
        """The profile services this step is for: one, or several for one ``compose up`` of a
        project (``service`` joins them with commas, which a profile name cannot contain)."""
        return tuple(self.service.split(","))


class ScaleWorkload(_StepBase):
    """Scale a Deployment/StatefulSet; scaling to 0 records the previous count on the object."""

    kind: Literal["scale-workload"] = "scale-workload"
    context: str | None
    namespace: str
    workload_kind: Literal["Deployment", "StatefulSet"]
    name: str
    uid: str
    generation: int
    replicas: int
    previous_replicas: int


class RunAs(Frozen):
    """Who a host process ran as: a rollback's ``start_command`` runs as the same user, never as
    whoever runs stackwarden (root would leave root-owned files in a database's data directory,
    and many servers refuse to start as root)."""

    uid: int
    gid: int
    user: str | None = None

    def argv_prefix(self) -> list[str]:
        """``setpriv`` (util-linux) does by hand what the switch does: the ids and the user's groups."""
        if self.uid == 0:
            return []
        groups = ["--init-groups"] if self.user else ["--clear-groups"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--"]


class StopProcess(_StepBase):
    """Stop a host process: its systemd unit, else its configured signal and grace period."""

    kind: Literal["stop-process"] = "stop-process"
    pid: int
    create_time: float
    exe: str | None
    name: str
    signal: str
    grace_seconds: float
    systemd_unit: str | None = None
    stateful: bool = False
    start_command: tuple[str, ...] | None = None
    run_as: RunAs | None = None


class StartProcess(_StepBase):
    """Start a host service again (rollback only): its unit, or the profile's start_command as
    the user the stopped process ran as."""

    kind: Literal["start-process"] = "start-process"
    systemd_unit: str | None = None
    start_command: tuple[str, ...] | None = None
    run_as: RunAs | None = None


class GracefulStop(Frozen):
    """How a stateful container is stopped, decided when the plan is made so that the printed
    commands and the switch do the same thing: ``docker kill --signal SIGNAL``, a wait of the
    step's timeout with no SIGKILL ever, and (only when Docker would otherwise restart it) its
    restart policy set to ``no`` for the stop and put back after.

    Docker keeps a killed container down whatever its restart policy only when the signal is the
    container's own stop signal (or it has none); a SIGTERM sent in place of an image's SIGKILL
    would be followed by a restart under ``always``."""

    signal: str
    pause_restart_policy: str | None = Field(
        default=None, description="The restart policy to put back after the stop (docker update --restart VALUE)."
    )


def graceful_stop(stateful: bool, c: Container) -> GracefulStop | None:
    """How a stateful container is stopped (None: ``docker stop`` for any other)."""
    if not stateful:
        return None
    return stateful_stop(c.stop_signal, c.restart_policy, c.restart_max_retries)


def stateful_stop(stop_signal: str | None, restart_policy: str | None, max_retries: int = 0) -> GracefulStop:
    """Its own stop signal when that asks for a clean exit, else SIGTERM. When the signal sent is
    not the container's own, Docker would restart it under its policy: the policy is paused."""
    sent = clean_stop_signal(stop_signal)
    own = signal_name(stop_signal)
    policy = restart_policy if restart_policy not in {None, "", "no"} else None
    if own is None or own == sent or policy is None:
        return GracefulStop(signal=sent)
    restore = f"{policy}:{max_retries}" if policy == "on-failure" and max_retries else policy
    return GracefulStop(signal=sent, pause_restart_policy=restore)


class StopContainer(_StepBase):
    """Stop one container by id; the container and its volumes are kept. A stateful one is
    stopped as ``graceful`` says (its clean signal, ``timeout_seconds`` to exit, no SIGKILL
    without force); any other with ``docker stop``."""

    kind: Literal["stop-container"] = "stop-container"
    container_id: str
    name: str
    compose_project: str
    timeout_seconds: int
    stateful: bool = False
    graceful: GracefulStop | None = None


class StartContainer(_StepBase):
    """Start an existing (stopped or never-started) container by id."""

    kind: Literal["start-container"] = "start-container"
    container_id: str
    name: str
    compose_project: str
    stop_timeout_seconds: int = 10
    stateful: bool = False
    graceful: GracefulStop | None = Field(default=None, description="How its undo stops it (stateful only).")


class ComposeUp(_StepBase):
    """``docker compose up -d`` for services that have no container yet."""

    kind: Literal["compose-up"] = "compose-up"
    project: str
    files: tuple[str, ...]
    working_dir: str | None
    services: tuple[str, ...]


class ComposeStop(_StepBase):
    """``docker compose stop SERVICES`` (rollback of a compose-up; containers and volumes kept)."""

    kind: Literal["compose-stop"] = "compose-stop"
    project: str
    files: tuple[str, ...]
    working_dir: str | None
    services: tuple[str, ...]


Step = Annotated[
    ScaleWorkload | StopProcess | StartProcess | StopContainer | StartContainer | ComposeUp | ComposeStop,
    Field(discriminator="kind"),
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
    """Whether the mode's invariants hold in a snapshot."""

    mode: Mode
    outcome: Outcome
    failures: tuple[str, ...] = ()
    code_issues: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """The mode's own invariants hold (code issues do not count against it)."""
        return self.outcome is not Outcome.FAILED


class SwitchStatus(StrEnum):
    """How a switch run ended, before the verdict's detail."""

    DRY_RUN = "dry-run"
    REFUSED = "refused"
    REJECTED = "rejected"
    SWITCHED = "switched"
    ROLLED_BACK = "rolled-back"


class SwitchOutcome(Frozen):
    """Everything a switch run produced: the plan, the journal, the verdict and what happened."""

    status: SwitchStatus
    plan: Plan
    journal: tuple[StepResult, ...] = ()
    verdict: Verdict | None = None
    message: str = ""
    approval_comment: str | None = Field(
        default=None, description="What the person who approved or rejected the plan in the UI wrote."
    )
