"""``LiveView``: one profile's live view, kept current by its runtimes' watches.

Each watch runs in a thread of its own and reports changes to one queue. The loop takes a
change, gathers what else arrives within ``COALESCE_SECONDS`` (a rollout or a ``compose up``
is a burst of events: it is diagnosed once, not per event), folds it all into the state,
assembles the snapshot and runs the pure diagnosis on it (once per snapshot), then tells its
sinks what changed: findings opened, resolved or re-graded, and runtimes lost or seen again.
A change that only says a stream is alive (``Heard``) updates how old the view is and changes
no finding, so it is not diagnosed. Between changes the loop wakes when a recently started
container or pod crosses the crash-loop line (``LiveState.next_deadline``).

Under a burst that never ends (pods created and deleted continuously) the loop diagnoses at
most every ``MIN_SPACING`` times the last diagnosis's duration, so it cannot eat the machine.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stackwarden.adapters.docker_watch import DockerWatch
from stackwarden.adapters.host_watch import HostWatch
from stackwarden.live.findings import (
    CoverageChange,
    FindingChange,
    changes,
    effective,
    open_findings,
    remembered,
)
from stackwarden.live.state import Change, Concern, LiveState, Lost
from stackwarden.model.base import Runtime
from stackwarden.model.finding import AuditResult, Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.pipeline import diagnose_step, health_checks, stateful_containers

LOG = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05
"""How long the loop gathers further changes after the first of a burst."""
MIN_SPACING = 2.0
"""Under a continuous burst, the wait between two diagnoses is at least this many times the
last one's duration: the loop then uses at most a third of a core."""


@dataclass(frozen=True)
class View:
    """The live view at one moment: the snapshot, its diagnosis, the findings held open
    (``effective``: the diagnosis's plus those a gap keeps open), how fresh each runtime is."""

    profile: Profile
    snapshot: Snapshot
    result: AuditResult
    effective: tuple[Finding, ...]
    heard: Mapping[Runtime, datetime | None]
    gaps: Mapping[Runtime, tuple[datetime, str]]
    diagnosed_at: datetime
    started_at: datetime


@dataclass(frozen=True)
class Update:
    """What one diagnosis changed, for the sinks; ``first`` on the view's first diagnosis."""

    view: View
    findings: tuple[FindingChange, ...] = ()
    coverage: tuple[CoverageChange, ...] = ()
    first: bool = False

    @property
    def opened_or_resolved(self) -> bool:
        """A finding opened or resolved (what the Prefect events and the metrics file follow)."""
        return any(c.event in {"opened", "resolved", "open"} for c in self.findings)


Sink = Callable[[Update], None]


@dataclass
class _Timing:
    last_duration: float = 0.0
    last_at: float = 0.0
    diagnoses: int = 0
    changes: int = 0


class LiveView:
    """The watches of one profile's runtimes and the loop over their changes."""

    def __init__(
        self,
        profile: Profile,
        sinks: Sequence[Sink] = (),
        *,
        hostname: str | None = None,
        remembered_open: Mapping[str, Mapping[str, object]] | None = None,
        host_poll_seconds: float = 1.0,
    ) -> None:
        self.profile = profile
        self.sinks = list(sinks)
        self.state = LiveState(
            profile.name,
            hostname or socket.gethostname(),
            kubernetes=profile.kubernetes is not None,
            concern=Concern(
                projects=frozenset(spec.project for spec in profile.compose_projects),
                ports=frozenset(profile.all_ports()),
            ),
        )
        self.changes: queue.Queue[Change] = queue.Queue()
        self.stop_event = threading.Event()
        self.open: dict[str, Finding] = remembered(remembered_open) if remembered_open is not None else {}
        self._initial = remembered_open is None
        self._gaps: dict[Runtime, tuple[datetime, str]] = {}
        self._view: View | None = None
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self._host_poll = host_poll_seconds
        self.timing = _Timing()
        self.started_at = datetime.now(UTC)

    # ---- lifecycle

    def start(self) -> LiveView:
        """Start every watch and the loop (threads; returns at once)."""
        emit = self.changes.put
        profile = self.profile
        watches: list[tuple[str, Callable[[], None]]] = [
            (
                "docker",
                DockerWatch(
                    emit,
                    self.stop_event,
                    timeouts=profile.timeouts,
                    always_inspect=frozenset(stateful_containers(profile)),
                    projects=frozenset(spec.project for spec in profile.compose_projects),
                ).run,
            ),
            (
                "host",
                HostWatch(
                    emit,
                    self.stop_event,
                    ports=frozenset(profile.all_ports()),
                    lookup=profile.host_lookup(),
                    checks=health_checks(profile),
                    poll_seconds=self._host_poll,
                ).run,
            ),
        ]
        if profile.kubernetes is not None:
            from stackwarden.adapters.kube_watch import KubeWatch

            kube = KubeWatch(profile.kubernetes, emit, self.stop_event, timeouts=profile.timeouts)
            watches.append(("kubernetes", kube.run))
        for name, run in [*watches, ("loop", self._loop)]:
            thread = threading.Thread(target=self._guarded, args=(name, run), name=f"live-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every watch and the loop, and wait for them (bounded)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wait_ready(self, timeout: float) -> bool:
        """Until the first diagnosis (every runtime observed, or known lost)."""
        return self._ready.wait(timeout)

    def current(self) -> View | None:
        """The latest view (None before the first diagnosis)."""
        return self._view

    def _guarded(self, name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception:  # a watch must never die silently: its runtime would look unchanged
            LOG.exception("live view: the %s thread failed", name)
            if name != "loop":
                runtime = {"docker": Runtime.COMPOSE, "host": Runtime.HOST}.get(name, Runtime.KUBERNETES)
                self.changes.put(Lost(runtime=runtime, reason=f"the {name} watch failed", at=datetime.now(UTC)))

    # ---- the loop

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            deadline = self.state.next_deadline(datetime.now(UTC))
            wait = 1.0 if deadline is None else max(0.0, (deadline - datetime.now(UTC)).total_seconds())
            try:
                first = self.changes.get(timeout=min(1.0, wait))
            except queue.Empty:
                if deadline is not None and datetime.now(UTC) >= deadline and self.state.complete:
                    self._diagnose()
                continue
            batch = self._gather(first)
            matters = False
            for change in batch:
                matters = self.state.matters(change) or matters
                self.state.apply(change)
            self.timing.changes += len(batch)
            if not self.state.complete:
                continue
            due = deadline is not None and datetime.now(UTC) >= deadline
            if self._view is None or due or matters:
                self._diagnose()
            else:
                self._view = self._refreshed(self._view)

    def _gather(self, first: Change) -> list[Change]:
        """The first change and what else arrives within the coalescing window (longer under a
        continuous burst, by the last diagnosis's duration)."""
        batch = [first]
        spacing = max(
            COALESCE_SECONDS, MIN_SPACING * self.timing.last_duration - (time.monotonic() - self.timing.last_at)
        )
        until = time.monotonic() + spacing
        while (left := until - time.monotonic()) > 0:
            try:
                batch.append(self.changes.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _refreshed(self, view: View) -> View:
        """The same diagnosis with the latest "heard from" times."""
        return View(
            profile=view.profile,
            snapshot=view.snapshot,
            result=view.result,
            effective=view.effective,
            heard=self._heard(),
            gaps=view.gaps,
            diagnosed_at=view.diagnosed_at,
            started_at=view.started_at,
        )

    def _heard(self) -> dict[Runtime, datetime | None]:
        sides = (
            (Runtime.COMPOSE, self.state.docker),
            (Runtime.HOST, self.state.host),
            (Runtime.KUBERNETES, self.state.kube),
        )
        return {runtime: side.heard_at for runtime, side in sides if side is not None}

    def _diagnose(self) -> None:
        started = time.monotonic()
        at = datetime.now(UTC)
        snapshot = self.state.snapshot(at)
        result = diagnose_step(snapshot, self.profile)
        gaps = {r: (g.since, g.reason) for r, g in self.state.gaps().items()}
        held = effective(self.open, result.findings, frozenset(gaps))
        now_open = open_findings(held)
        found = changes(
            self.open, now_open, profile=self.profile.name, at=at, initial=self._initial and self._view is None
        )
        coverage = self._coverage_changes(gaps, at)
        first = self._view is None
        self.open, self._gaps = now_open, gaps
        self._view = View(
            profile=self.profile,
            snapshot=snapshot,
            result=result,
            effective=held,
            heard=self._heard(),
            gaps=gaps,
            diagnosed_at=at,
            started_at=self.started_at,
        )
        self.timing.last_duration = time.monotonic() - started
        self.timing.last_at = time.monotonic()
        self.timing.diagnoses += 1
        self._ready.set()
        if found or coverage or first:
            update = Update(view=self._view, findings=tuple(found), coverage=tuple(coverage), first=first)
            for sink in self.sinks:
                try:
                    sink(update)
                except Exception:
                    LOG.exception("live view: a sink failed")

    def _coverage_changes(self, gaps: Mapping[Runtime, tuple[datetime, str]], at: datetime) -> list[CoverageChange]:
        out = [
            CoverageChange(event="gap", at=at, profile=self.profile.name, runtime=str(r), reason=why, since=since)
            for r, (since, why) in gaps.items()
            if r not in self._gaps
        ]
        out += [
            CoverageChange(event="resumed", at=at, profile=self.profile.name, runtime=str(r), since=self._gaps[r][0])
            for r in self._gaps
            if r not in gaps
        ]
        return out
