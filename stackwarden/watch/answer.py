"""The local socket through which a running ``stackwarden serve`` answers ``stackwarden audit``
from its live view (the client is ``stackwarden.watch.ask``).

Who may ask: the socket is created owned by the serving user with mode 0600 (nobody else can
connect), or 0660 with the group ``--socket-group`` names; it is created under a 0177 umask, so
it is never open to others even for a moment. Each caller's credentials (``SO_PEERCRED``) are
checked again: root, the serving user, or a member of that group. A path that exists and is not
a socket is never removed; a socket another ``serve`` answers on is left to it.

What is answered: the report of a profile this ``serve`` watches, named by its resolved path
and the sha256 of its bytes (a profile edited since ``serve`` read it is not answered: the audit
then observes in process). The report is the one an audit renders from the same snapshot, with
one more line saying how old each runtime's observations are; it is rendered once per
diagnosis, not per question.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackwarden.model.base import Runtime
from stackwarden.report import render_markdown
from stackwarden.report.json import audit_document
from stackwarden.report.prometheus import render_prometheus
from stackwarden.sanitize import md_inline, one_line
from stackwarden.watch.ask import MAX_QUESTION, PROTOCOL, profile_identity
from stackwarden.watch.runner import View

LOG = logging.getLogger(__name__)

_MARK = "STACKWARDENOBSERVEDLINE"
"""Stands in the cached report for the observed line, which changes with every question."""
_NAMES = {Runtime.COMPOSE: "Docker", Runtime.HOST: "host", Runtime.KUBERNETES: "Kubernetes"}
_HOW = {Runtime.COMPOSE: "events stream", Runtime.HOST: "re-read every second", Runtime.KUBERNETES: "watches"}


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never heard from"
    return f"last word {max(0.0, (now - at).total_seconds()):.1f} s ago"


def observed_line(view: View, now: datetime) -> str:
    """How old the live view's observations are, per runtime, and what a gap holds open."""
    parts = []
    for runtime, heard in view.heard.items():
        gap = view.gaps.get(runtime)
        if gap is not None:
            parts.append(f"{_NAMES[runtime]} NOT observed since {gap[0]:%H:%M:%S} ({gap[1]})")
        else:
            parts.append(f"{_NAMES[runtime]} {_HOW[runtime]}, {_ago(heard, now)}")
    now_ids = {f.id for f in view.result.findings}
    held = sorted(f.id for f in view.effective if f.id not in now_ids)
    line = (
        f"live view of stackwarden serve (watching since {view.started_at:%Y-%m-%d %H:%M:%S %Z}, "
        f"diagnosed {max(0.0, (now - view.diagnosed_at).total_seconds()):.1f} s ago): " + "; ".join(parts)
    )
    if held:
        line += "; held open until the runtime is seen again: " + ", ".join(held)
    return line


@dataclass(frozen=True)
class Served:
    """A profile this ``serve`` answers for: its identity and its live view."""

    path: str
    sha256: str
    view: Callable[[], View | None]


class AnswerServer:
    """Accepts questions on ``path`` in a thread; ``start`` says whether it could."""

    def __init__(self, path: Path, served: list[Served], *, group: str | None = None) -> None:
        self.path = path
        self.served = {(s.path, s.sha256): s for s in served}
        self.group = group
        self._gid = grp.getgrnam(group).gr_gid if group else None
        self._sock: socket.socket | None = None
        self._rendered: dict[tuple[int, str], tuple[View, str]] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(8)

    # ---- the socket

    def start(self) -> bool:
        """Bind and listen (False, with the reason logged, when the path is not ours to use)."""
        if not self._clear():
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            LOG.warning("audit socket %s not opened: %s", self.path, exc)
            return False
        finally:
            os.umask(old)
        if self._gid is not None:
            os.chown(self.path, -1, self._gid)
            os.chmod(self.path, 0o660)
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._accept, name="audit-socket", daemon=True).start()
        LOG.info("answering audits on %s", self.path)
        return True

    def _clear(self) -> bool:
        """The path is free, or a stale socket nobody answers on (removed); anything else stays."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return True
        if not stat.S_ISSOCK(info.st_mode):
            LOG.warning("audit socket %s not opened: the path exists and is not a socket", self.path)
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # stale: its serve is gone
                return True
        LOG.warning("audit socket %s not opened: another stackwarden serve answers there", self.path)
        return False

    def stop(self) -> None:
        """Stop answering and remove the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                conn.close()  # more questions at once than anyone needs: refused, not queued
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _allowed(self, conn: socket.socket) -> bool:
        """Root, the serving user, or a member of the socket's group."""
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid in {0, os.geteuid()}:
            return True
        if self._gid is None:
            return False
        if gid == self._gid:
            return True
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Groups:"):
                    return str(self._gid) in line.split()[1:]
        return False

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            allowed = self._allowed(conn)
            data = b""  # read first, so a refused caller gets the refusal rather than a broken pipe
            while len(data) <= MAX_QUESTION and (chunk := conn.recv(4096)):
                data += chunk
                if b"\n" in data:
                    break
            answer = self.answer(data) if allowed else {"ok": False, "reason": "not allowed"}
            conn.sendall(json.dumps(answer).encode())
        except OSError as exc:
            LOG.info("audit socket: a question was not answered: %s", exc)
        finally:
            conn.close()
            self._slots.release()

    # ---- the answer

    def answer(self, raw: bytes) -> dict[str, Any]:
        """The answer to one question (``ok`` false with a reason when it cannot be answered)."""
        try:
            question = json.loads(raw.split(b"\n", 1)[0])
        except ValueError:
            return {"ok": False, "reason": "the question is not JSON"}
        if not isinstance(question, dict) or question.get("protocol") != PROTOCOL:
            return {"ok": False, "reason": f"unknown question (this serve speaks protocol {PROTOCOL})"}
        key = (str(question.get("profile_path", ""))[:4096], str(question.get("profile_sha256", ""))[:64])
        served = self.served.get(key)
        if served is None:
            known = {path for path, _ in self.served}
            why = "its file changed since serve read it" if key[0] in known else "it is not served here"
            return {"ok": False, "reason": f"profile {one_line(key[0])}: {why}"}
        view = served.view()
        if view is None:
            return {"ok": False, "reason": "the live view is still starting"}
        fmt = "json" if question.get("format") == "json" else "markdown"
        now = datetime.now(UTC)
        observed = observed_line(view, now)
        result, snapshot = view.result, view.snapshot
        doc: dict[str, Any] = {
            "ok": True,
            "profile": view.profile.name,
            "report": self._report(view, fmt, observed, now),
            "findings": [(str(f.severity), f.id, f.title) for f in result.findings],
            "unreachable": [(str(r.runtime), r.error or "") for r in snapshot.runtimes if not r.reachable],
            "observed": observed,
            "prometheus": None,
        }
        if question.get("prometheus") is True:
            doc["prometheus"] = render_prometheus(
                result, snapshot, view.profile, duration_seconds=0.0, finished_at=view.diagnosed_at
            )
        return doc

    def _report(self, view: View, fmt: str, observed: str, now: datetime) -> str:
        """The report of this diagnosis (rendered once, kept for the next questions), with the
        observed line of this moment."""
        key = (id(view.snapshot), fmt)
        with self._lock:
            cached = self._rendered.get(key)
        if cached is None or cached[0].snapshot is not view.snapshot:
            if fmt == "json":
                text = json.dumps(audit_document(view.result, view.snapshot), indent=2)
            else:
                text = render_markdown(view.result, view.snapshot, view.profile, observed=_MARK)
            with self._lock:
                self._rendered = {k: v for k, v in self._rendered.items() if v[0].snapshot is view.snapshot}
                self._rendered[key] = (view, text)
            cached = (view, text)
        text = cached[1]
        if fmt == "json":  # the document is an object: "observed" goes first
            stamp = {"source": "stackwarden serve", "line": observed, "at": now.isoformat()}
            return "{\n" + f'  "observed": {json.dumps(stamp)},\n' + text[2:]
        return text.replace(_MARK, md_inline(observed, 2000), 1)


def served_profiles(entries: Mapping[Path, Callable[[], View | None]]) -> list[Served]:
    """``Served`` for each profile file (its identity read now, as ``serve`` loads it)."""
    out = []
    for path, view in entries.items():
        resolved, digest = profile_identity(path)
        out.append(Served(path=resolved, sha256=digest, view=view))
    return out
