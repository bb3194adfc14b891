"""The live view inside ``stackwarden serve``: one ``LiveView`` per served profile, whose finding
changes are published exactly as the scheduled audit publishes them (the same Prefect events,
names, labels and payloads, through the same open-findings Variable, so whichever of the two sees
a change first emits it and the other finds it already stored), the metrics file rewritten, and
``stackwarden audit`` answered from it on the local socket.

The scheduled audit stays: it is the full reconciliation that also records a flow run, its
artifacts and its changes table. Publishing runs in a thread of its own per profile, so a slow
or absent Prefect server never holds the live view back; only the latest view is published (the
Variable comparison makes a skipped intermediate change show as what it ended as).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackwarden.adapters.textfile import write_textfile
from stackwarden.events import previous_open_set
from stackwarden.model.profile import Profile
from stackwarden.report.prometheus import render_prometheus
from stackwarden.watch.answer import AnswerServer, served_profiles
from stackwarden.watch.ask import socket_path
from stackwarden.watch.runner import LiveView, Update

LOG = logging.getLogger("stackwarden.serve.live")


@dataclass(frozen=True)
class Watched:
    """A profile to keep a live view of: its file (what ``audit`` names) and what it says."""

    path: Path
    profile: Profile


class Publisher:
    """A sink of one ``LiveView``: publishes the latest update in a thread of its own."""

    def __init__(self, profile: Profile, host: str, metrics: Path | None) -> None:
        self.profile = profile
        self.host = host
        self.metrics = metrics
        self._latest: queue.Queue[Update | None] = queue.Queue(maxsize=1)
        # the thread runs in a copy of this context: Prefect's settings (the server's URL and
        # secret that serve set for its runs) live in a context variable, and a thread started
        # bare would see none and start a temporary server of its own to publish to
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"live-publish-{profile.name}", daemon=True
        )
        self._thread.start()

    def __call__(self, update: Update) -> None:
        """Keep only the newest update waiting (older ones are superseded by it)."""
        with contextlib.suppress(queue.Empty):
            self._latest.get_nowait()
        self._latest.put(update)

    def stop(self) -> None:
        with contextlib.suppress(queue.Empty):
            self._latest.get_nowait()
        self._latest.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from tasks.diagnose import publish_finding_changes

        while (update := self._latest.get()) is not None:
            view = update.view
            if update.opened_or_resolved or update.first or update.coverage:
                try:
                    publish_finding_changes(view.effective, self.profile, self.host, LOG.warning, LOG.info)
                except Exception:
                    LOG.exception("live view of %s: finding events not published", self.profile.name)
            if self.metrics is not None:
                result = view.result.model_copy(update={"findings": view.effective})
                text = render_prometheus(
                    result, view.snapshot, self.profile, duration_seconds=0.0, finished_at=view.diagnosed_at
                )
                try:
                    write_textfile(self.metrics, text)
                except OSError as exc:
                    LOG.warning("live view of %s: metrics not written to %s: %s", self.profile.name, self.metrics, exc)


def remembered_open_set(profile: Profile, host: str) -> dict[str, dict[str, object]] | None:
    """The open set the last audit (or live view) stored, to start from: a finding that was
    open stays held while a runtime has not been seen yet. None when it cannot be read."""
    from prefect.variables import Variable

    from tasks.diagnose import open_findings_variable

    try:
        return previous_open_set(Variable.get(open_findings_variable(profile, host), default={}))
    except Exception as exc:
        LOG.warning("live view of %s: the stored open findings were not read (%s)", profile.name, exc)
        return None


@contextlib.contextmanager
def live_views(
    watched: Sequence[Watched],
    *,
    host: str,
    metrics: dict[str, Path] | None = None,
    socket_group: str | None = None,
) -> Iterator[list[LiveView]]:
    """Start a live view per profile and the audit socket; stop them all on the way out."""
    views: list[LiveView] = []
    publishers: list[Publisher] = []
    server: AnswerServer | None = None
    try:
        for item in watched:
            publisher = Publisher(item.profile, host, (metrics or {}).get(item.profile.name))
            publishers.append(publisher)
            remembered = remembered_open_set(item.profile, host)
            views.append(LiveView(item.profile, [publisher], remembered_open=remembered or {}).start())
        where = socket_path()
        if where is not None:
            server = AnswerServer(
                where,
                served_profiles({item.path: view.current for item, view in zip(watched, views, strict=True)}),
                group=socket_group,
            )
            if server.start():
                print(f"stackwarden serve: answering audits from the live view on {where}", flush=True)
            else:
                server = None
        yield views
    finally:
        if server is not None:
            server.stop()
        for view in views:
            view.stop()
        for publisher in publishers:
            publisher.stop()
