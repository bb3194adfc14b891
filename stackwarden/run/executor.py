"""What the switch's decisions need from the world, and the in-process way to provide it.

The run layer (``stackwarden.run.switch``) decides; an ``Executor`` observes, applies steps and
runs preflight. ``LocalExecutor`` does it in this process (threads for concurrent stops);
``flows/switch.py`` provides one that runs each step as a Prefect task run. A fake one in the
unit tests plays any sequence of outcomes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from stackwarden.adapters.executor import execute
from stackwarden.adapters.preflight import preflight
from stackwarden.errors import RefusedError
from stackwarden.model.plan import Plan, Step, StepResult, StepStatus, Unchanged
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import Progress, observe_all, observed_runtimes

LOG = logging.getLogger("stackwarden.run")

MAX_CONCURRENT_STOPS = 4
"""Independent stops run at most this many at a time: a switch lasts about the longest grace
period, not their sum, without stopping a whole stack in one burst."""

Logger = logging.Logger | logging.LoggerAdapter[Any]


class Executor(Protocol):
    """Observe, apply, preflight, and keep time: everything the switch's decisions touch."""

    log: Logger
    run_id: str | None
    """The recorded run this switch is (a Prefect flow run id), written into its journal."""

    def observe(self) -> Snapshot:
        """One fresh observation of every runtime (never from a cache)."""
        ...

    def apply(
        self, steps: Sequence[Step], *, concurrent: bool, force: bool, recheck_generation: bool
    ) -> list[StepResult]:
        """Carry out ``steps`` (concurrently, or one after the other stopping at the first that
        does not apply); one result per step that ran, in the order of ``steps``."""
        ...

    def preflight(self, plan: Plan) -> list[str]:
        """Every check that changes nothing; one line per failure."""
        ...

    def crashed(self, run_ids: Sequence[str], reason: str) -> list[str]:
        """Mark recorded runs that died (still "Running") as crashed; what was marked."""
        ...

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait between two observations."""
        ...


def result_of(step: Step, outcome: object, started: datetime, ended: datetime | None = None) -> StepResult:
    """A journal entry from what an apply returned (a message, ``Unchanged``) or raised: a target
    already as wanted was not touched (skipped: nothing to roll back); a ``RefusedError`` changed
    nothing (refused); anything else may have half-happened (failed)."""
    ended = ended or datetime.now(UTC)
    failed = isinstance(outcome, BaseException)
    if failed:
        status = StepStatus.REFUSED if isinstance(outcome, RefusedError) else StepStatus.FAILED
    else:
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


def apply_one(step: Step, profile: Profile, *, force: bool, recheck_generation: bool) -> StepResult:
    """One step through the adapter-side executor, its failure recorded, not raised."""
    started = datetime.now(UTC)
    outcome: object
    try:
        outcome = execute(step.request(force=force, recheck_generation=recheck_generation), profile)
    except Exception as exc:  # recorded in the result: the run decides what a failure means
        outcome = exc
    return result_of(step, outcome, started)


class LocalExecutor:
    """The switch in this process: the pipeline's threaded observation, the adapters' calls."""

    def __init__(self, profile: Profile, log: Logger = LOG, run_id: str | None = None) -> None:
        self.profile = profile
        self.log = log
        self.run_id = run_id

    def observe(self) -> Snapshot:
        """The pipeline's concurrent observation of every runtime."""
        return observe_all(self.profile, log=self.log)

    def apply(
        self, steps: Sequence[Step], *, concurrent: bool, force: bool, recheck_generation: bool
    ) -> list[StepResult]:
        """Threads for a concurrent batch (at most ``MAX_CONCURRENT_STOPS``); else one by one."""
        if concurrent and len(steps) > 1:
            with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_STOPS, thread_name_prefix="step") as pool:
                return list(
                    pool.map(
                        lambda s: apply_one(s, self.profile, force=force, recheck_generation=recheck_generation),
                        steps,
                    )
                )
        results = []
        for step in steps:
            result = apply_one(step, self.profile, force=force, recheck_generation=recheck_generation)
            results.append(result)
            if result.status not in {StepStatus.APPLIED, StepStatus.SKIPPED}:
                break
        return results

    def preflight(self, plan: Plan) -> list[str]:
        """The adapters' read-only checks."""
        return preflight(plan, self.profile)

    def crashed(self, run_ids: Sequence[str], reason: str) -> list[str]:
        """Nothing is recorded in process."""
        return []

    def now(self) -> float:
        """``time.monotonic``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


class ShownExecutor(LocalExecutor):
    """``LocalExecutor`` with a live line for each slow part (what a person at a terminal waits
    on in a dry run: the observation and the preflight checks)."""

    def __init__(self, profile: Profile, progress: Progress, log: Logger = LOG) -> None:
        super().__init__(profile, log)
        self.progress = progress

    def observe(self) -> Snapshot:
        """The observation, shown as one step naming the runtimes observed."""
        with self.progress.step("observing " + ", ".join(observed_runtimes(self.profile))):
            return super().observe()

    def preflight(self, plan: Plan) -> list[str]:
        """Preflight, shown as one step."""
        with self.progress.step("preflight checks"):
            return super().preflight(plan)
