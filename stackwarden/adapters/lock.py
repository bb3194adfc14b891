"""One switch at a time per profile (DESIGN.md §5.6): an flock'ed file naming its holder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from stackwarden.errors import LockedError


def lock_dir() -> Path:
    """Where locks live: $STACKWARDEN_LOCK_DIR, else /run/stackwarden (tmpfs: gone at reboot,
    as a lock should be), else the temp dir."""
    env = os.environ.get("STACKWARDEN_LOCK_DIR")
    if env:
        return Path(env)
    run = Path("/run")
    return run / "stackwarden" if os.access(run, os.W_OK) else Path("/tmp") / "stackwarden-locks"  # noqa: S108


@contextlib.contextmanager
def switch_lock(profile: str, holder: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the profile's switch lock. Fails fast (or waits ``wait_seconds``) naming the holder.
    The kernel drops an flock when its holder dies, so a killed run never wedges the profile."""
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raw = path.read_text(encoding="utf-8") or "{}"
                    info = json.loads(raw) if raw.strip().startswith("{") else {}
                    raise LockedError(
                        f"another switch of profile {profile!r} is running: {info.get('holder', 'unknown')} "
                        f"(PID {info.get('pid', '?')}, since {info.get('since', '?')}); lock file {path}"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps({"holder": holder, "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode(),
        )
        yield
    finally:
        os.close(fd)  # closing releases the flock
