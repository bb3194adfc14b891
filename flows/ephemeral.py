"""Prefect's temporary server for one CLI run, owned by that run.

Prefect starts its own ephemeral server when no API is configured and stops it at exit; a CLI
killed with SIGKILL (or by the OOM killer) runs no exit handler, and that server stayed behind
for good. Here the CLI starts the same server itself (``uvicorn prefect.server.api.server:
create_app``, the database under ``PREFECT_HOME`` as before) as a child that the kernel sends
SIGTERM when the CLI dies, however it dies, and points ``PREFECT_API_URL`` at it. Nothing here
imports Prefect: the environment must be set before Prefect reads its settings.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from flows.local_server import ServerError, _stop, dies_with_this_process

ADDRESS_IN_USE_EXIT = 3
"""uvicorn's exit status when its port was taken between our choice and its bind."""


def _free_port() -> int:
    """A free loopback port (uvicorn may still lose it: then it exits 3 and another is drawn)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(api_url: str) -> bool:
    """The server's health endpoint says 200."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 (http to our child)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start(port: int) -> subprocess.Popen[bytes]:
    """The server as Prefect starts its ephemeral one, in a process that dies with this one."""
    env = {k: v for k, v in os.environ.items() if k not in {"PREFECT_API_URL", "PREFECT_API_KEY"}}
    env.update(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
    argv = dies_with_this_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]
    )
    return subprocess.Popen(  # a list argv, no shell
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # stopped as a group; a terminal's Ctrl-C reaches the CLI, which stops it
    )


@dataclass
class TemporaryServer:
    """A running temporary server and its process."""

    process: subprocess.Popen[bytes]
    api_url: str

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL what is left after 10 s."""
        _stop(self.process, grace_seconds=10)


def start_temporary_server(allowance_seconds: float) -> TemporaryServer:
    """Start the temporary server, wait (up to ``allowance_seconds``) until it answers, and set
    ``PREFECT_API_URL`` to it for this process. It is stopped at interpreter exit, after Prefect
    has drained its log and event workers (those drain at thread shutdown, before ``atexit``),
    and by the kernel if this process dies first."""
    port = _free_port()
    process = _start(port)
    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + allowance_seconds
    try:
        while not _answers(api_url):
            if process.poll() == ADDRESS_IN_USE_EXIT:
                port = _free_port()
                process = _start(port)
                api_url = f"http://127.0.0.1:{port}/api"
            elif process.poll() is not None:
                raise ServerError(f"Prefect's temporary server exited with code {process.returncode}")
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"Prefect's temporary server did not start within its {allowance_seconds:g} s start-up allowance "
                    "(a heavily loaded machine?)"
                )
            time.sleep(0.2)
    except BaseException:
        _stop(process, grace_seconds=10)
        raise
    server = TemporaryServer(process, api_url)
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = api_url
    return server
