"""``stackwarden watch --json`` as a real process for tests: its JSON lines collected in a
thread, and a wait for the first line a predicate accepts."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.realparts import REPO

Line = dict[str, Any]


@dataclass
class Watching:
    """A running ``stackwarden watch --json`` and every line it printed so far."""

    process: subprocess.Popen[str]
    lines: queue.Queue[Line] = field(default_factory=queue.Queue)
    seen: list[Line] = field(default_factory=list)

    def wait(self, accept: Callable[[Line], bool], timeout: float, what: str) -> Line:
        """The first line (already printed, or still to come) that ``accept`` accepts."""
        for line in self.seen:
            if accept(line):
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.process.poll() is not None:
                    raise AssertionError(f"stackwarden watch exited {self.process.returncode} before {what}") from None
                continue
            self.seen.append(line)
            if accept(line):
                return line
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; lines: {self.seen[-20:]}")

    def event(self, event: str, finding_id: str, timeout: float = 90) -> Line:
        """The line of ``event`` (open, opened, resolved) about ``finding_id``."""
        return self.wait(
            lambda line: line.get("event") == event and line.get("id") == finding_id, timeout, f"{event} {finding_id}"
        )


@contextlib.contextmanager
def stackwarden_watch(
    profiles: Sequence[Path], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[Watching]:
    """Run ``stackwarden watch --json`` on ``profiles`` until the block ends (then SIGTERM)."""
    argv = [sys.executable, "-m", "flows.cli", "watch", "--json", "-v"]
    for profile in profiles:
        argv += ["--profile", str(profile)]
    stderr = log.open("w") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    watching = Watching(process)

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with contextlib.suppress(ValueError):
                watching.lines.put(json.loads(raw))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield watching
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if log is not None and not isinstance(stderr, int):
            stderr.close()
