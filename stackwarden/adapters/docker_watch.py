"""The Docker part of the live view: the engine listed once, then kept current from its events.

The engine's event stream says *that* a container changed (created, started, died, became
unhealthy, was OOM-killed, destroyed ...); each container an event names is then described again
exactly as the audit describes it (``describe_container``: one list entry, an inspect when it is
not known to be healthy, its logs when it crash-loops), so the live view and an audit agree. A
container started less than ``RECENT_START_SECONDS`` ago is described again when it crosses
that line (no event says so). Network events list the networks again. One thread describes, one
container at a time, each once however many events name it before its turn; a container of the
profile's own compose projects (its label is in the event) goes before the rest of the engine's
business, so a busy shared engine does not delay what the profile is about.

A stream that ends (the engine restarted or stopped), breaks, or an engine that stops answering
the ping every ``PING_SECONDS`` is a lost watch: a ``Lost`` change (a gap), then the engine is
listed again, with a backoff while it does not answer; the listing ends the gap.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import queue
import threading
import time
from typing import Any

from stackwarden.adapters.docker import (
    PROJECT_LABEL,
    call,
    deaths_from_events,
    describe_container,
    docker_endpoint,
    networks_of,
    observe_with,
    read_client,
    read_timeout,
)
from stackwarden.adapters.watching import Backoff, Emit, now, why
from stackwarden.live.state import ContainerGone, ContainerSeen, DockerSeen, Heard, Lost, NetworksSeen
from stackwarden.model.base import Runtime
from stackwarden.model.profile import Timeouts
from stackwarden.model.snapshot import RECENT_START_SECONDS, ContainerDeath

LOG = logging.getLogger(__name__)

PING_SECONDS = 5.0
"""How often an idle stream's engine is asked whether it still answers: a hung engine keeps its
stream open and silent, which must not read as "nothing changed"."""

CONTAINER_ACTIONS = (
    "create",
    "start",
    "restart",
    "die",
    "destroy",
    "health_status",
    "oom",
    "pause",
    "unpause",
    "rename",
    "update",
)
NETWORK_ACTIONS = ("create", "destroy", "remove", "connect", "disconnect")
EVENT_FILTERS = {"type": ["container", "network"], "event": sorted(set(CONTAINER_ACTIONS + NETWORK_ACTIONS))}
"""What a profile can be concerned by (containers of any project: a foreign container may
hold a profile port; networks: isolation). ``exec_*`` events (every health check runs one) are
left out: they change nothing the audit reads, and ``health_status`` says what they found."""

_NETWORKS = "<networks>"


class DockerWatch:
    """Runs until ``stop`` is set; everything it learns goes to ``emit``."""

    def __init__(
        self,
        emit: Emit,
        stop: threading.Event,
        *,
        timeouts: Timeouts | None = None,
        log_tail: int = 40,
        always_inspect: frozenset[tuple[str, str]] = frozenset(),
        projects: frozenset[str] = frozenset(),
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        self._emit = emit
        self._projects = projects
        self._stop = stop
        self._timeout = read_timeout(timeouts)
        self._log_tail = log_tail
        self._always_inspect = always_inspect
        self._ping_seconds = ping_seconds
        self._backoff = Backoff()

    def run(self) -> None:
        """List, follow, and after each loss list again, until stopped."""
        while not self._stop.is_set():
            reason = self._session()
            if self._stop.is_set():
                return
            # said once per loss, not at every attempt to get it back
            (LOG.info if self._backoff.retrying else LOG.warning)("Docker watch lost: %s", reason)
            self._emit(Lost(runtime=Runtime.COMPOSE, reason=reason, at=now(), endpoint=docker_endpoint()))
            self._stop.wait(self._backoff.next())

    def _session(self) -> str:
        """One listing and the stream that follows it; returns why it ended."""
        since = time.time()
        try:
            observed = observe_with(
                read_client(self._timeout), log_tail=self._log_tail, always_inspect=self._always_inspect
            )
        except Exception as exc:
            return why(exc)
        self._emit(
            DockerSeen(status=observed.status, containers=observed.containers, networks=observed.networks, at=now())
        )
        self._backoff.reset()
        return _Session(self, observed.deaths).follow(since)


class _Session:
    """The events stream of one listing, and the thread that describes what events name."""

    def __init__(self, watch: DockerWatch, deaths: dict[str, ContainerDeath]) -> None:
        self.watch = watch
        self.deaths = dict(deaths)
        self.lock = threading.Lock()
        self.pending: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()
        self.order = 0
        self.queued: set[str] = set()
        self.due: list[tuple[float, str]] = []
        self.failure: str | None = None
        self.stream: Any = None

    def follow(self, since: float) -> str:
        reader = read_client(self.watch._timeout)
        try:
            self.stream = call(
                reader.follow_events, "follow engine events", since=f"{since:.9f}", filters=EVENT_FILTERS
            )
        except Exception as exc:
            reader.close()
            return why(exc)
        describer = threading.Thread(target=self._describe_loop, name="docker-describe", daemon=True)
        describer.start()
        reason = "the engine closed its event stream (restarted or stopped)"
        try:
            for event in self.stream:
                if self.watch._stop.is_set():
                    break
                self._handle(event)
        except Exception as exc:
            reason = f"event stream broke: {why(exc)}"
        finally:
            self.pending.put((-1, 0, None))
            with contextlib.suppress(Exception):
                self.stream.close()
            reader.close()
            describer.join(timeout=30)
        return self.failure or reason

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("Type")
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        if kind == "container":
            cid = str(actor.get("ID") or event.get("id") or "")
            if not cid:
                return
            with self.lock:
                if action == "die":
                    self.deaths.update(deaths_from_events([event]))
                elif action == "destroy":
                    self.deaths.pop(cid, None)
            self._enqueue(cid, urgent=attributes.get(PROJECT_LABEL) in self.watch._projects)
        elif kind == "network":
            self._enqueue(_NETWORKS, urgent=False)
            container = attributes.get("container")
            if container:
                self._enqueue(str(container), urgent=False)

    def _enqueue(self, item: str, *, urgent: bool) -> None:
        """Queue ``item`` to be described once (however many events name it before its turn);
        a container of the profile's own projects goes before the engine's other business."""
        with self.lock:
            if item in self.queued:
                return
            self.queued.add(item)
            self.order += 1
            order = self.order
        self.pending.put((0 if urgent else 1, order, item))

    def _describe_loop(self) -> None:
        reader = read_client(self.watch._timeout)
        last_heard = time.monotonic()
        try:
            while not self.watch._stop.is_set():
                while (due := self._due_now()) is not None:
                    self._describe(reader, due)
                try:
                    _, _, item = self.pending.get(timeout=max(0.0, self._ping_wait(last_heard)))
                except queue.Empty:
                    if time.monotonic() - last_heard >= self.watch._ping_seconds:
                        call(reader.ping, "ping the engine")
                        self.watch._emit(Heard(runtime=Runtime.COMPOSE, at=now()))
                        last_heard = time.monotonic()
                    continue
                if item is None:
                    return
                with self.lock:
                    self.queued.discard(item)
                self._describe(reader, item)
                last_heard = time.monotonic()
        except Exception as exc:
            self.failure = f"the engine stopped answering: {why(exc)}"
            with contextlib.suppress(Exception):
                self.stream.close()
        finally:
            reader.close()

    def _ping_wait(self, last_heard: float) -> float:
        """Seconds until the next ping or the next container crossing its recent-start line."""
        wait = last_heard + self.watch._ping_seconds - time.monotonic()
        with self.lock:
            if self.due:
                wait = min(wait, self.due[0][0] - time.monotonic())
        return wait

    def _due_now(self) -> str | None:
        with self.lock:
            if self.due and self.due[0][0] <= time.monotonic():
                return heapq.heappop(self.due)[1]
        return None

    def _describe(self, reader: Any, item: str) -> None:
        if item == _NETWORKS:
            networks = call(reader.networks, "list networks")
            self.watch._emit(NetworksSeen(networks=networks_of(networks), at=now()))
            return
        summaries = call(reader.containers, f"list container {item[:12]}", all=True, filters={"id": item})
        summary = next((s for s in summaries if s.get("Id") == item), None)
        with self.lock:
            deaths = dict(self.deaths)
        container = (
            describe_container(
                reader, summary, deaths, log_tail=self.watch._log_tail, always_inspect=self.watch._always_inspect
            )
            if summary is not None
            else None
        )
        if container is None:
            self.watch._emit(ContainerGone(container_id=item, at=now()))
            return
        self.watch._emit(ContainerSeen(container=container, at=now()))
        uptime = container.uptime_seconds
        if container.state == "running" and uptime is not None and uptime < RECENT_START_SECONDS:
            with self.lock:  # described again once it has run long enough to count as healthy
                heapq.heappush(self.due, (time.monotonic() + RECENT_START_SECONDS - uptime + 0.25, item))
