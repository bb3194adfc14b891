"""The switch journal on disk: one JSON-lines file per applying run, beside the switch locks.

Every record is one line, written with a single ``write`` and ``fsync``ed before the run goes on:
the ``intent`` of a step is on disk before the step touches anything, so a run killed at any
point (SIGKILL, a host crash) leaves a journal that says what it may have changed and how to undo
it. The live run holds an exclusive ``flock`` on its file for its whole life (the kernel drops it
when the run dies), so a reader tells a live journal from a dead one without guessing from PIDs.
A run that ends, whatever its status, writes ``end`` and removes its file.

Where: the lock directory (``stackwarden.adapters.lock``): private to its owner, never a shared
``/tmp``. A journal is read only from there, only if it is a regular file of this user with one
link (``O_NOFOLLOW``), so nobody else can plant one for the repair to act on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stackwarden.adapters.lock import existing_private_dir, lock_dir, lock_dir_location
from stackwarden.errors import LockedError, StackwardenError
from stackwarden.model.base import Mode
from stackwarden.model.journal import InterruptedSwitch, JournalEntry, Role, summarize
from stackwarden.model.plan import Plan, Step
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import InterruptedRun

LOG = logging.getLogger(__name__)
_STEP: TypeAdapter[Step] = TypeAdapter(Step)
MAX_JOURNAL_BYTES = 8 * 1024 * 1024
"""A journal bigger than this is not a switch's (a few hundred steps at most): it is not read."""


def _stem(profile: str) -> str:
    """The file-name prefix of a profile's journals (a safe file name, bounded)."""
    return "journal-" + re.sub(r"[^A-Za-z0-9._-]", "_", profile)[:80]


def _now() -> str:
    """A record's time stamp (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Journal:
    """The journal of a live run. Not thread-safe on its own: the run layer writes it from one
    thread (intents before a batch of steps, outcomes after)."""

    def __init__(self, path: Path, fd: int, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._fd = fd
        self._seq = 0

    @classmethod
    def begin(cls, plan: Plan, *, flow_run_id: str | None = None, directory: Path | None = None) -> Journal:
        """Create the run's journal (0600, no symlink followed), lock it and write ``begin`` with
        the whole plan: a reader can then tell which services the run meant to move."""
        where = directory or lock_dir()
        run_id = uuid.uuid4().hex[:12]
        path = where / f"{_stem(plan.profile)}-{run_id}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_APPEND
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise LockedError(f"cannot create switch journal {path}: {exc.strerror or exc}") from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        journal = cls(path, fd, run_id)
        _fsync_dir(where)
        journal._write(
            {
                "type": "begin",
                "run": run_id,
                "flow_run": flow_run_id,
                "pid": os.getpid(),
                "profile": plan.profile,
                "mode": str(plan.mode),
                "digest": plan.digest,
                "planned": [step.model_dump(mode="json") for step in plan.steps],
            }
        )
        return journal

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps({**record, "at": _now()}, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        os.fsync(self._fd)

    def intent(self, step: Step, role: Role) -> int:
        """Before a step: what it is about to change and how to undo it (the undo step and the
        commands a person would run). Returns the entry's number for its outcome."""
        self._seq += 1
        undo = step.undo()
        self._write(
            {
                "type": "intent",
                "seq": self._seq,
                "role": role,
                "step": step.model_dump(mode="json"),
                "undo": undo.model_dump(mode="json") if undo is not None else None,
                "undo_commands": [" ".join(argv) for argv in undo.commands()] if undo is not None else [],
            }
        )
        return self._seq

    def outcome(self, seq: int, status: str, error: str | None = None) -> None:
        """After a step: how it ended."""
        self._write({"type": "outcome", "seq": seq, "status": status, "error": (error or "")[:500] or None})

    def phase(self, name: str) -> None:
        """Where the run is: make, wait, break, start, verify, rollback, repair."""
        self._write({"type": "phase", "name": name})

    def end(self, status: str) -> None:
        """The run finished (whatever its status): say so, and remove the file."""
        try:
            self._write({"type": "end", "status": status})
        finally:
            self.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def close(self) -> None:
        """Release the file (and its flock) without ending the run: only for a run that dies."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(directory: Path) -> None:
    """Make the new file's directory entry durable too (a crash must not lose the journal)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_private(path: Path) -> int | None:
    """Open a journal for reading: a regular file of this user with one link, never through a
    symlink; None when it is not one (it is then left alone, and never acted on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.ENOENT}:
            return None
        raise
    info = os.fstat(fd)
    foreign = info.st_uid != os.geteuid() or info.st_mode & 0o022 or info.st_nlink != 1
    if not stat.S_ISREG(info.st_mode) or foreign or info.st_size > MAX_JOURNAL_BYTES:
        os.close(fd)
        return None
    return fd


def _parse(path: Path, text: str) -> InterruptedSwitch | None:
    """The records of one journal; None for one that ended (or has no begin). A last line cut
    short by the death is ignored."""
    begin: dict[str, Any] | None = None
    entries: dict[int, dict[str, Any]] = {}
    last_phase = None
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "begin":
            begin = record
        elif kind == "intent" and isinstance(record.get("seq"), int):
            entries[record["seq"]] = record
        elif kind == "outcome" and record.get("seq") in entries:
            entries[record["seq"]].update(status=record.get("status"), error=record.get("error"))
        elif kind == "phase":
            last_phase = str(record.get("name"))
        elif kind == "end":
            return None
    if begin is None:
        return None
    try:
        return InterruptedSwitch(
            path=str(path),
            run_id=str(begin.get("run")),
            flow_run_id=begin.get("flow_run"),
            pid=begin.get("pid"),
            profile=str(begin.get("profile")),
            mode=Mode(str(begin.get("mode"))),
            started=str(begin.get("at")),
            planned=tuple(_STEP.validate_python(s) for s in begin.get("planned") or ()),
            entries=tuple(
                JournalEntry(
                    seq=seq,
                    role=e.get("role", "forward"),
                    step=_STEP.validate_python(e["step"]),
                    status=e.get("status"),
                    error=e.get("error"),
                )
                for seq, e in sorted(entries.items())
            ),
            last_phase=last_phase,
        )
    except (ValidationError, ValueError, KeyError, TypeError):
        return None  # not a journal this version wrote: never acted on


def _dead(fd: int) -> bool:
    """True when no live run holds the file (its writer died): a shared flock is granted."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _journal_files(profile: str, directory: Path | None) -> Iterator[Path]:
    """The profile's journal files in the lock directory, which is never created by a reader."""
    where = directory
    if where is None:
        location = lock_dir_location()
        try:
            where = existing_private_dir(location) if location is not None else None
        except LockedError as exc:
            raise StackwardenError(f"switch journals not read: {exc}") from None
    if where is None:
        return
    yield from sorted(where.glob(f"{_stem(profile)}-*.jsonl"))


def read_interrupted(profile: str, directory: Path | None = None) -> list[InterruptedSwitch]:
    """The journals of ``profile`` left by runs that died before their end, oldest first. Never
    creates the directory; a journal that is not a private regular file is not read."""
    found = []
    for path in _journal_files(profile, directory):
        fd = _open_private(path)
        if fd is None:
            continue
        try:
            if not _dead(fd):
                continue  # a live run's
            text = os.read(fd, MAX_JOURNAL_BYTES).decode("utf-8", errors="replace")
        finally:
            os.close(fd)
        run = _parse(path, text)
        if run is not None and run.profile == profile:
            found.append(run)
    return sorted(found, key=lambda r: r.started)


def discard(runs: list[InterruptedSwitch]) -> None:
    """Remove journals whose runs have been repaired (or changed nothing)."""
    for run in runs:
        with contextlib.suppress(FileNotFoundError):
            Path(run.path).unlink()


def interrupted_runs(profile: Profile) -> tuple[InterruptedRun, ...]:
    """What the audit reports of the profile's interrupted switches (``rules.interrupted``); a
    journal directory that cannot be read is logged and reported as none."""
    try:
        runs = read_interrupted(profile.name)
    except (StackwardenError, OSError) as exc:
        LOG.warning("switch journals of %s not read: %s", profile.name, exc)
        return ()
    return summarize(runs, profile)
