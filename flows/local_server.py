"""A local Prefect server that ``stackwarden serve`` starts, keeps and stops itself.

Used only when ``PREFECT_API_URL`` is not set: the server runs as a child process group with its
SQLite database under a stackwarden-owned ``PREFECT_HOME`` (so it never touches the user's
``~/.prefect``), and it is stopped with the serve process, Ctrl-C or SIGTERM alike. This module
imports no Prefect: it must run before Prefect reads its settings from the environment.

The server runs flows as root on this host, so it is closed by default: every API call needs
the secret (Prefect's ``PREFECT_SERVER_API_AUTH_STRING``, generated on first start and kept in
the home), CSRF protection is on, the home is 0700 and everything in it 0600. A local operator
finds the client settings in ``client.env`` there (readable by the home's owner only).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import stat
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
AUTH_FILE = "api-auth-string"
"""The secret every API call needs, in the home (0600); generated once, kept across restarts so
the UI login and ``client.env`` stay valid."""
CLIENT_ENV_FILE = "client.env"
"""What a local operator (or a worker on this host) sources to talk to the server."""
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


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
    auth_string: str

    @property
    def api_url(self) -> str:
        """What clients put in ``PREFECT_API_URL``."""
        return f"http://{self.host}:{self.port}/api"

    @property
    def client_env(self) -> dict[str, str]:
        """The environment a Prefect client needs to talk to this server (what ``client.env`` holds)."""
        return {"PREFECT_API_URL": self.api_url, "PREFECT_API_AUTH_STRING": self.auth_string}

    @property
    def client_env_file(self) -> Path:
        """``client.env`` in the home: the same settings, for ``set -a; . FILE`` or systemd's EnvironmentFile."""
        return self.home / CLIENT_ENV_FILE

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
    """True when nothing listens on ``host:port`` (we only bind to check, then release).

    With SO_REUSEADDR, as the server itself binds: the connections of a server that just stopped
    linger in TIME_WAIT for a minute, and must not make a restart (systemd's ``Restart=``) fail;
    a socket that still listens makes the bind fail all the same."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, wanted: int | None) -> int:
    """``wanted`` when given, else 4200; either must be free. A busy default is an error, not a
    random port: the operator's bookmark, tunnel and ``client.env`` name the port."""
    port = DEFAULT_PORT if wanted is None else wanted
    if not port_is_free(host, port):
        how = f"--port {port}" if wanted is not None else f"the default port {port}"
        raise ServerError(f"{how}: {host}:{port} is already in use; stop what holds it or pass --port PORT")
    return port


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 (http to ourselves)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def private_home(home: Path) -> None:
    """Create ``home`` 0700 (or make it so), and every file already in it 0600: the database holds
    every run, parameter, log and artifact, the home the API secret. A home owned by someone else
    is refused: whoever owns it could read or replace what this server keeps there."""
    home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    info = os.lstat(home)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ServerError(f"{home}: the Prefect home must be a directory, not a link or a file")
    if info.st_uid != os.geteuid():
        raise ServerError(
            f"{home}: owned by uid {info.st_uid}, not by this user (uid {os.geteuid()}); choose another home"
        )
    os.chmod(home, PRIVATE_DIR_MODE)
    for entry in home.iterdir():
        entry_info = os.lstat(entry)
        if stat.S_ISREG(entry_info.st_mode) and entry_info.st_mode & 0o077:
            os.chmod(entry, PRIVATE_FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write ``path`` with mode 0600 from its first byte (a temporary file renamed over it): a
    secret is never readable by others, not even for an instant."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def auth_string(home: Path) -> str:
    """The server's API secret: read from the home, or generated (256 bits) on first start."""
    path = home / AUTH_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        # user:password form, as Prefect's UI login suggests and ``curl -u "$PREFECT_API_AUTH_STRING"`` sends it
        secret = f"stackwarden:{secrets.token_urlsafe(32)}"
        write_private(path, secret + "\n")
        return secret
    with os.fdopen(fd, encoding="utf-8") as stored:
        secret = stored.read().strip()
    if len(secret) < 16:
        raise ServerError(
            f"{path}: the stored API secret is shorter than 16 characters; remove the file to make a new one"
        )
    return secret


def client_env_text(server: LocalServer) -> str:
    """``client.env``: KEY=VALUE lines a shell (``set -a; . client.env``) and systemd both read."""
    return "".join(f"{key}={value}\n" for key, value in server.client_env.items())


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """One embedded server per home: two servers on one SQLite file would corrupt each other's
    view. A second ``serve`` gets a clear message instead."""
    private_home(home)
    fd = os.open(home / "serve.lock", os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "a+", encoding="utf-8") as lock:
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
    home: Path,
    database_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    secret: str | None = None,
) -> dict[str, str]:
    """The environment of the server process: our home, no inherited API URL (it would make the
    server a client of another one), no telemetry; PostgreSQL instead of SQLite when
    ``database_url`` (or an inherited ``PREFECT_SERVER_DATABASE_CONNECTION_URL``) names it.
    The UI is told its API's address: by default it would call port 4200 whatever ``--port`` says.
    With ``secret`` every API call must carry it (HTTP Basic, as Prefect's client and UI send it),
    and CSRF protection is on, so a web page the operator visits cannot drive the API either."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING"}
    }
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="true",
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_API_URL=f"http://{host}:{port}/api",
        PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
    )
    if secret is not None:
        env["PREFECT_SERVER_API_AUTH_STRING"] = secret
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
    yield it, and stop it on the way out (normal return, Ctrl-C, SIGTERM or an error).

    The server requires the home's API secret on every call; ``client.env`` (0600) names the
    URL and the secret. It runs with umask 077, so its database and log are 0600 from birth."""
    with _home_lock(home):
        chosen = choose_port(host, port)
        secret = auth_string(home)
        log = home / "server.log"
        # no orphan server if serve itself is SIGKILLed
        command = dies_with_this_process(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(chosen)]
        )
        handle: IO[bytes]
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "ab") as handle:
            process = subprocess.Popen(  # a list argv, no shell; the secret is in its environment only
                command,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=server_environment(home, database_url, host, chosen, secret),
                start_new_session=True,
                umask=0o077,
            )
        server = LocalServer(home=home, host=host, port=chosen, pid=process.pid, log=log, auth_string=secret)
        try:
            deadline = time.monotonic() + timeout_seconds
            while not _healthy(server.api_url):
                if process.poll() is not None:
                    raise ServerError(f"the Prefect server exited with code {process.returncode}; see {log}")
                if time.monotonic() >= deadline:
                    raise ServerError(f"the Prefect server did not answer within {timeout_seconds:.0f}s; see {log}")
                time.sleep(0.5)
            write_private(server.client_env_file, client_env_text(server))
            yield server
        finally:
            _stop(process)
