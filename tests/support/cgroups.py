"""A process moved into a cgroup v2 directory named like a systemd unit, so that
``/proc/PID/cgroup`` shows that unit (no systemd runs on the test machines)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from tests.support.realparts import require


def cgroup2_root() -> Path | None:
    """Where the unified (v2) hierarchy is mounted: /sys/fs/cgroup or /sys/fs/cgroup/unified."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


@contextlib.contextmanager
def unit_cgroup(unit_path: str) -> Iterator[Path]:
    """A leaf directory ``<test top>/<unit_path>`` to write PIDs into (``cgroup.procs``); removed
    afterwards. Needs a writable cgroup v2 hierarchy (root)."""
    root = cgroup2_root()
    require(root is not None and os.access(root, os.W_OK), "a writable cgroup v2 hierarchy (run as root)")
    assert root is not None
    top = root / f"stackwarden-test-{secrets.token_hex(3)}"
    leaf = top / unit_path
    leaf.mkdir(parents=True)
    try:
        yield leaf
    finally:
        for directory in [leaf, *leaf.relative_to(top).parents]:
            path = top / directory if directory != Path(".") else top
            with contextlib.suppress(OSError):
                path.rmdir()
