"""What the CLI shows on a terminal, and how it chooses between a recorded and an in-process run.

Nothing here imports Prefect: the choice is made before Prefect is loaded (and Prefect is not
loaded at all when the run is not recorded), and Prefect's console logging is quieted through
its own settings, in the environment, before its logging is configured.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

SLOW_STEP_SECONDS = 1.0


def prefect_api_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Prefect would talk to a server: ``PREFECT_API_URL`` in the environment, or in
    the active profile of ``$PREFECT_HOME/profiles.toml`` (read without importing Prefect)."""
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL"):
        return True
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    active = env.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profiles: Any = data.get("profiles", {})
    settings = profiles.get(active, {}) if isinstance(profiles, dict) else {}
    return bool(isinstance(settings, dict) and settings.get("PREFECT_API_URL"))


def prepare_prefect(*, verbose: bool, environ: dict[str, str] | None = None) -> None:
    """Environment for a recorded run, set before Prefect is imported: without ``-v`` Prefect's
    console handler shows nothing below CRITICAL (a failed observe task is an
    unreachable runtime the report already names); its records still go to the server with the run (the API
    handler is untouched). (The ephemeral server's start-up allowance is set in ``main``.)"""
    env = os.environ if environ is None else environ
    if not verbose:
        env.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def configure_logging(*, verbose: bool, stream: TextIO) -> None:
    """stackwarden's own log lines on stderr: INFO with ``-v``, errors only otherwise (the
    report already says what could not be seen)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("stackwarden")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)
    logger.propagate = False


class LiveProgress:
    """A live line on ``stream`` (stderr) for a step that runs longer than ``after`` seconds.

    Fast steps print nothing, and nothing is printed where ``stream`` is not a terminal, so
    pipes and CI logs get the report alone. rich is imported only when a line is shown."""

    def __init__(self, stream: TextIO, after: float = SLOW_STEP_SECONDS) -> None:
        self._stream = stream
        self._after = after
        self._lock = threading.Lock()
        self._status: Any = None

    def _show(self, name: str) -> None:
        from rich.console import Console

        with self._lock:
            if self._status is None:
                self._status = Console(file=self._stream, force_terminal=True).status(f"{name}…")
                self._status.start()

    def _hide(self) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Show ``name`` with a spinner if the step is still running after the delay."""
        if not self._stream.isatty():
            yield
            return
        timer = threading.Timer(self._after, self._show, [name])
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
            self._hide()
