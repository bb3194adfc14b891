"""A local Prefect server that ``stackwarden serve`` starts, keeps and stops itself.

Used only when ``PREFECT_API_URL`` is not set: the server runs as a child process group with its
SQLite database under a stackwarden-owned ``PREFECT_HOME`` (so it never touches the user's
``~/.prefect``), and it is stopped with the serve process, Ctrl-C or SIGTERM alike. This module
imports no Prefect: it must run before Prefect reads its settings from the environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stackwarden.errors import StackwardenError

DEFAULT_PORT = 4200


class ServerError(StackwardenError):
    """The local Prefect server could not be started or is already in use."""


@dataclass(frozen=True)
class LocalServer:
    """A running local Prefect server."""

    home: Path
    host: str
    port: int
    pid: int
    log: Path

    @property
    def api_url(self) -> str:
        """What clients put in ``PREFECT_API_URL``."""
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """Where a person opens the Prefect UI."""
        return f"http://{self.host}:{self.port}"


def stackwarden_prefect_home() -> Path:
    """``$STACKWARDEN_PREFECT_HOME``, else ``$XDG_DATA_HOME/stackwarden/prefect``, else
    ``~/.local/share/stackwarden/prefect``: runs, artifacts and events of the embedded server
    survive a restart of ``stackwarden serve`` there."""
    env = os.environ.get("STACKWARDEN_PREFECT_HOME")
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "stackwarden" / "prefect"


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (we only bind to check, then release)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, wanted: int | None) -> int:
    """``wanted`` when given (it must be free), else 4200 when free, else any free port."""
    if wanted is not None:
        if not port_is_free(host, wanted):
            raise ServerError(f"--port {wanted}: {host}:{wanted} is already in use")
        return wanted
    if port_is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 (http to ourselves)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One embedded server per home: two servers on one SQLite file would corrupt each other's
    view. A second ``serve`` gets a clear message instead."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "serve.lock", "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ServerError(
                f"{home} is in use by {holder}; point PREFECT_API_URL at that server, "
                "or set STACKWARDEN_PREFECT_HOME to another directory"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"stackwarden serve (PID {os.getpid()})\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)  # the parent died before the setting took effect\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def dies_with_this_process(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel sends it SIGTERM when this process dies, however it dies
    (SIGKILL included: no ``finally`` or ``atexit`` runs then). A tiny Python prologue sets
    PR_SET_PDEATHSIG in the child itself and ``exec``s ``argv`` (the setting survives ``exec``),
    so no ``preexec_fn`` runs between fork and exec."""
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def _stop(process: subprocess.Popen[bytes], grace_seconds: float = 20.0) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL what is left."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def server_environment(
    home: Path, database_url: str | None = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> dict[str, str]:
    """The environment of the server process: our home, no inherited API URL (it would make the
    server a client of another one), no telemetry; PostgreSQL instead of SQLite when
    ``database_url`` (or an inherited ``PREFECT_SERVER_DATABASE_CONNECTION_URL``) names it.
    The UI is told its API's address: by default it would call port 4200 whatever ``--port`` says."""
    env = {k: v for k, v in os.environ.items() if k not in {"PREFECT_API_URL", "PREFECT_API_KEY"}}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="true",
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_API_URL=f"http://{host}:{port}/api",
    )
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    return env


@contextlib.contextmanager
def local_server(
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout_seconds: float = 120.0,
    database_url: str | None = None,
) -> Iterator[LocalServer]:
    """Start ``prefect server start`` in its own process group, wait until its API answers,
    yield it, and stop it on the way out (normal return, Ctrl-C, SIGTERM or an error)."""
    with _home_lock(home):
        chosen = choose_port(host, port)
        log = home / "server.log"
        # no orphan server if serve itself is SIGKILLed
        command = dies_with_this_process(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(chosen)]
        )
        handle: IO[bytes]
        with open(log, "ab") as handle:
            process = subprocess.Popen(  # a list argv, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=server_environment(home, database_url, host, chosen),
                start_new_session=True,
            )
        server = LocalServer(home=home, host=host, port=chosen, pid=process.pid, log=log)
        try:
            deadline = time.monotonic() + timeout_seconds
            while not _healthy(server.api_url):
                if process.poll() is not None:
                    raise ServerError(f"the Prefect server exited with code {process.returncode}; see {log}")
                if time.monotonic() >= deadline:
                    raise ServerError(f"the Prefect server did not answer within {timeout_seconds:.0f}s; see {log}")
                time.sleep(0.5)
            yield server
        finally:
            _stop(process)
