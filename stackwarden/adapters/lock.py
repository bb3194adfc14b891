"""One switch at a time per resource: flock'ed files that name their holder.

A switch locks every resource its profile can change: the profile itself, each declared port,
each compose project, each Kubernetes workload and each executable its port-less host services
run. Two profiles that overlap (a shared port, a shared project, a port-less service both could
stop) therefore cannot switch at once, and the second is told who holds what.

Where: ``$STACKWARDEN_LOCK_DIR`` (tests), else ``/run/stackwarden`` when running as root, else
``$XDG_RUNTIME_DIR/stackwarden``: directories that only their owner can write, never a shared
``/tmp`` where anyone can plant a symlink. The directory is checked (a real directory, ours, not
writable by others) and each lock file is opened with ``O_NOFOLLOW`` and mode 0600: a symlink at
the lock path is refused and its target never opened, let alone truncated.

The kernel drops an flock when its holder dies, so a run killed with SIGKILL never wedges a
resource; whatever it left in the file (half-written, not JSON) is stale once the flock is won
and is simply overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import posixpath
import re
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from stackwarden.adapters.host import resolve_executable
from stackwarden.errors import LockedError
from stackwarden.model.profile import Profile

RUN_DIR = Path("/run/stackwarden")
_INFO_MAX = 4096


def lock_resources(profile: Profile) -> list[str]:
    """Every resource a switch of ``profile`` may change, as lock keys (sorted, so that two runs
    take shared locks in the same order and cannot deadlock while waiting)."""
    keys = {f"profile:{profile.name}"}
    keys |= {f"port:{port}" for port in profile.all_ports()}
    keys |= {f"process:{name}" for name in portless_process_names(profile)}
    keys |= {f"compose:{spec.project}" for spec in profile.compose_projects}
    if profile.kubernetes is not None:
        ns = profile.kubernetes.namespace
        keys |= {
            f"workload:{ns}/{spec.kubernetes.kind}/{spec.kubernetes.name}"
            for spec in profile.services.values()
            if spec.kubernetes is not None
        }
    return sorted(keys)


def portless_process_names(profile: Profile) -> set[str]:
    """Executable base names whose processes a switch of ``profile`` may stop without a port
    leading to them (port-less host services).

    A ported service's process is only ever found through its port, so the port's lock covers
    it. A port-less one is found by what it runs: two profiles can stop the same process exactly
    when its resolved executable satisfies both, and then its base name is in both sets: each
    name the profile gives, each ``exe`` path's and its resolved file's base name, and the base
    name of the file each name leads to in the bin directories (``redis-server`` ->
    ``redis-check-rdb``). Sharing a name locks more than needed, never less."""
    names: set[str] = set()
    for spec in profile.services.values():
        if spec.ports or spec.host is None:
            continue
        for entry in (*spec.host.executables, *(spec.host.exe or ())):
            names.add(posixpath.basename(entry))
            names.update(posixpath.basename(path) for path in resolve_executable(entry))
    return names


def _describe(key: str) -> str:
    """``port:5432`` -> ``port 5432`` for messages."""
    kind, _, rest = key.partition(":")
    return f"{kind} {rest}" if rest else key


def _file_name(key: str) -> str:
    """A safe, unique file name for a lock key (readable part + a short digest)."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:80]
    return f"{readable}.{hashlib.sha256(key.encode()).hexdigest()[:10]}.lock"


def _private_dir(path: Path) -> Path:
    """Create ``path`` (0700) if needed and check it is a real directory owned by this user that
    no one else can write; anything else is refused (exit 4, before any change)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise LockedError(f"cannot use lock directory {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise LockedError(f"lock directory {path} is not a directory (a symlink?); refusing to use it")
    if info.st_uid != os.geteuid():
        raise LockedError(f"lock directory {path} belongs to uid {info.st_uid}, not to this user; refusing to use it")
    if info.st_mode & 0o022:
        raise LockedError(f"lock directory {path} is writable by other users; refusing to use it")
    return path


def lock_dir_location() -> Path | None:
    """Where locks (and switch journals) live, without creating or checking anything: None when
    there is no private place (not root, no ``XDG_RUNTIME_DIR``, no ``STACKWARDEN_LOCK_DIR``)."""
    env = os.environ.get("STACKWARDEN_LOCK_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return RUN_DIR
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "stackwarden" if runtime else None


def lock_dir() -> Path:
    """Where locks live (see the module docstring), created and checked."""
    location = lock_dir_location()
    if location is None:
        raise LockedError(
            "no private directory for switch locks: XDG_RUNTIME_DIR is not set; set it (or STACKWARDEN_LOCK_DIR) "
            "to a directory only you can write"
        )
    return _private_dir(location)


def existing_private_dir(path: Path) -> Path | None:
    """``path`` if it exists and passes the checks of a lock directory (ours, a real directory,
    not writable by others); None if it does not exist. Readers (the audit) never create it."""
    if not os.path.lexists(path):
        return None
    return _private_dir(path)


def _open(directory: Path, key: str) -> int:
    """Open (or create, 0600) the lock file of ``key`` without following a symlink, and check
    it is a regular file of ours with one link (no hard link to someone else's file)."""
    path = directory / _file_name(key)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockedError(
                f"lock file {path} is a symlink; refusing to follow it (remove it if nobody should have put it there)"
            ) from None
        raise LockedError(f"cannot open lock file {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
        os.close(fd)
        raise LockedError(f"lock file {path} is not a private regular file of this user; refusing to use it")
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def _holder(fd: int) -> dict[str, object]:
    """What the file says about its holder; unreadable content (a run killed mid-write, junk)
    is reported as unknown, never raised."""
    try:
        raw = os.pread(fd, _INFO_MAX, 0).decode("utf-8")
        info = json.loads(raw)
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _try_all(fds: list[tuple[str, int]]) -> tuple[str, int] | None:
    """Take every flock or none: the first one held elsewhere is returned, the ones already
    taken are released so a waiting run never holds half of a set."""
    taken: list[int] = []
    for key, fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for held in taken:
                fcntl.flock(held, fcntl.LOCK_UN)
            return key, fd
        taken.append(fd)
    return None


def _locked_message(key: str, fd: int, directory: Path) -> str:
    info = _holder(fd)
    if not info:
        who = "an unknown holder (its lock content is unreadable)"
    else:
        who = f"{info.get('holder', 'unknown')} (PID {info.get('pid', '?')}, since {info.get('since', '?')})"
    profile = info.get("profile", "?")
    return f"another switch of profile {profile!r} holds {_describe(key)}: {who}; locks in {directory}"


@contextlib.contextmanager
def switch_lock(
    resources: str | Sequence[str], holder: str, wait_seconds: float = 0.0, *, profile: str | None = None
) -> Iterator[None]:
    """Hold the locks of ``resources`` (lock keys, see ``lock_resources``; a bare string is a
    profile name). Fails fast, or after ``wait_seconds``, with ``LockedError`` naming the
    resource and its holder."""
    if not math.isfinite(wait_seconds) or wait_seconds < 0:
        raise ValueError(f"wait_seconds must be a finite number >= 0, not {wait_seconds!r}")
    if isinstance(resources, str):
        profile = profile or resources
        keys = [f"profile:{resources}"]
    else:
        keys = sorted(set(resources))
    directory = lock_dir()
    fds: list[tuple[str, int]] = []
    try:
        for key in keys:
            fds.append((key, _open(directory, key)))
        deadline = time.monotonic() + wait_seconds
        while (blocked := _try_all(fds)) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockedError(_locked_message(*blocked, directory))
            time.sleep(min(0.25, remaining))
        info = json.dumps(
            {
                "holder": holder,
                "profile": profile or "?",
                "pid": os.getpid(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resources": keys[:20],
            }
        ).encode()[:_INFO_MAX]
        for _, fd in fds:  # the flock is ours: whatever was in the file is stale
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        yield
    finally:
        for _, fd in fds:
            os.close(fd)  # closing releases the flock
