"""``stackwarden audit`` asking a running ``stackwarden serve`` for its live view.

Only the standard library is loaded here (no pydantic, no models, no adapters): an audit
answered by ``serve`` is a question on a local socket and the report printed, and the whole
process should cost little more than Python's own start. When no ``serve`` answers for this
very profile (no socket, a stale one, another profile, a profile file changed since ``serve``
read it, an old ``serve``), the caller observes in process as before.

The socket: ``$STACKWARDEN_SOCKET``, else ``/run/stackwarden.sock`` for root, else
``$XDG_RUNTIME_DIR/stackwarden.sock``. ``serve`` creates it owned by its user with mode 0600 (or
0660 and the group ``--socket-group`` names) and checks each caller's credentials again.

The question is one JSON line; the answer one JSON document. The profile is named by its
resolved path *and* the sha256 of its bytes: ``serve`` never opens a path a caller sends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOCKET_ENV = "STACKWARDEN_SOCKET"
PROTOCOL = 1
MAX_QUESTION = 64 * 1024
ROOT_SOCKET = Path("/run/stackwarden.sock")


def socket_path(environ: dict[str, str] | None = None) -> Path | None:
    """Where ``serve`` answers on this host for this user (None: nowhere to look)."""
    env = os.environ if environ is None else environ
    if env.get(SOCKET_ENV):
        return Path(env[SOCKET_ENV])
    if os.geteuid() == 0:
        return ROOT_SOCKET
    runtime = env.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "stackwarden.sock" if runtime else None


def profile_identity(path: Path) -> tuple[str, str]:
    """(resolved path, sha256 of the file's bytes): the profile ``serve`` must be serving."""
    resolved = path.resolve()
    return str(resolved), hashlib.sha256(resolved.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What ``serve`` answered: the report as the CLI prints it, and what the exit code and the
    hints need (findings as severity, id, title; unreachable runtimes with their error)."""

    profile: str
    report: str
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    unreachable: list[tuple[str, str]] = field(default_factory=list)
    prometheus: str | None = None
    observed: str = ""


@dataclass(frozen=True)
class NoAnswer:
    """Why no ``serve`` answered (said on stderr with ``-v``; the audit then runs in process)."""

    reason: str


def _receive(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def ask(
    profile_path: Path, *, as_json: bool = False, prometheus: bool = False, timeout: float = 10.0
) -> Answer | NoAnswer:
    """Ask the running ``serve`` for the report of ``profile_path`` (markdown, or JSON)."""
    where = socket_path()
    if where is None or not where.exists():
        return NoAnswer("no stackwarden serve socket on this host")
    try:
        path, digest = profile_identity(profile_path)
    except OSError as exc:
        return NoAnswer(f"cannot read {profile_path}: {exc.strerror or exc}")
    question = {
        "protocol": PROTOCOL,
        "profile_path": path,
        "profile_sha256": digest,
        "format": "json" if as_json else "markdown",
        "prometheus": prometheus,
    }
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(where))
            conn.sendall(json.dumps(question).encode() + b"\n")
            conn.shutdown(socket.SHUT_WR)
            raw = _receive(conn)
    except OSError as exc:
        return NoAnswer(f"stackwarden serve at {where} did not answer: {exc.strerror or exc}")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        return NoAnswer(f"stackwarden serve at {where} answered something other than JSON")
    if not isinstance(doc, dict) or not doc.get("ok"):
        reason = doc.get("reason") if isinstance(doc, dict) else None
        return NoAnswer(f"stackwarden serve at {where}: {reason or 'no answer for this profile'}")
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return Answer(
            profile=str(doc["profile"]),
            report=str(doc["report"]),
            findings=[(str(s), str(i), str(t)) for s, i, t in doc.get("findings", [])],
            unreachable=[(str(r), str(e)) for r, e in doc.get("unreachable", [])],
            prometheus=str(doc["prometheus"]) if doc.get("prometheus") is not None else None,
            observed=str(doc.get("observed", "")),
        )
    return NoAnswer(f"stackwarden serve at {where} answered in an unknown shape")
