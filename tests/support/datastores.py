"""Real PostgreSQL and redis-server (Debian packages) as plain host processes for tests.

Tests that send a signal to a datastore must prove that the signal made the server stop
*cleanly* and lose nothing. A mock cannot prove that, and a systemd unit or ``pg_ctl``
would put a manager between the test and the process it signals. So each server here is a
foreground child of the test: the PID the test reports is the server itself (the
postmaster; redis-server), it listens on a high port the test picked, keeps its data in
its own directory and logs to a known file. The machine's own 5432 and 6379 stay untouched.

Stdlib plus psutil only; every command is an argument list, never a shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

PG_OS_USER = "postgres"
RESERVED_PORTS = frozenset({5432, 6379})
PG_CLEAN_SHUTDOWN = "database system is shut down"
# What a postmaster logs when it starts on a data dir whose last stop was not clean.
PG_UNCLEAN_MARKERS = (
    "database system was not properly shut down",
    "database system was interrupted",
    "automatic recovery in progress",
)
REDIS_CLEAN_SHUTDOWN = "ready to exit, bye bye"
_PG_SERVER_BINARIES = ("initdb", "postgres", "pg_ctl")


class DatastoreUnavailable(RuntimeError):
    """A server binary is missing and could not be installed; tests turn this into require()."""


def _run(argv: Sequence[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command without a shell; raise with its stderr so a failing step explains itself."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {(result.stderr or result.stdout)[-2000:]}")
    return result


def _check_port(port: int) -> None:
    """Refuse the well-known ports: the machine's own services live there, ours never do."""
    if port in RESERVED_PORTS or port < 1024:
        raise ValueError(f"port {port} is reserved for the machine's own services; use a free high port")


def _tail(path: Path, chars: int = 3000) -> str:
    """The end of a log, for error messages that say why a server did not come up."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "<no log>"


# --------------------------------------------------------------------------- PostgreSQL


def find_postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<ver>/bin holding the server binaries, if any.

    Debian keeps server binaries off PATH (only client wrappers are there), so look where
    the packages put them rather than relying on PATH.
    """
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    candidates: list[tuple[int, Path]] = []
    for child in root.iterdir():
        bindir = child / "bin"
        if child.name.isdigit() and all((bindir / name).is_file() for name in _PG_SERVER_BINARIES):
            candidates.append((int(child.name), bindir))
    return max(candidates)[1] if candidates else None


def _online_clusters() -> set[tuple[str, str, int]]:
    """Debian clusters (version, name, port) that pg_lsclusters reports online."""
    if shutil.which("pg_lsclusters") is None:
        return set()
    result = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)
    online: set[tuple[str, str, int]] = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].startswith("online"):
            online.add((fields[0], fields[1], int(fields[2])))
    return online


def ensure_postgres_installed() -> Path:
    """The PostgreSQL server bin dir, installing Debian's ``postgresql`` package when missing.

    Debian's postinst creates a ``main`` cluster on 5432 and may start it. That cluster is
    not ours and must not hold 5432 afterwards, so any cluster the install brought online is
    stopped again (the machine's own clusters that were already running are left alone).
    """
    bindir = find_postgres_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DatastoreUnavailable("PostgreSQL server binaries missing (apt package postgresql); not root to install")
    before = _online_clusters()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "install", "-y", "-q", "postgresql"], timeout=900, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise DatastoreUnavailable(f"apt-get install postgresql failed: {exc}") from exc
    for version, name, _port in sorted(_online_clusters() - before):
        _run(["pg_ctlcluster", version, name, "stop"])
    bindir = find_postgres_bindir()
    if bindir is None:
        raise DatastoreUnavailable("apt-get installed postgresql but no server binaries were found")
    return bindir


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that drop root to the ``postgres`` OS user (PostgreSQL refuses root).

    Popen's own user/group switch happens in the child right before exec, so unlike
    ``runuser`` no helper process stays in between: the child PID *is* the server.
    Not root (a developer's machine): run as the current user, which PostgreSQL accepts.
    """
    if os.geteuid() != 0:
        return {}
    return {"user": PG_OS_USER, "group": PG_OS_USER, "extra_groups": []}


def postgres_os_user() -> str:
    """The OS user the test's postgres runs as (see ``_as_postgres``): a profile that is to stop
    it as root must name that user (services.NAME.host.user), as for a packaged server."""
    return PG_OS_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _owned_by_postgres(path: Path) -> None:
    """Hand a directory to the server's OS user: initdb and the postmaster write into it."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


class _ForegroundServer:
    """What the two servers share: a foreground child process stopped by its own signal and
    started again on the same data directory."""

    label = "server"
    proc: subprocess.Popen[bytes] | None

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        raise NotImplementedError

    def wait_exit(self, timeout: float) -> int:
        raise NotImplementedError

    def _stop_by(self, signum: signal.Signals, timeout: float) -> int | None:
        """Send ``signum`` and wait; the exit code, or None when it did not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self, timeout: float = 60) -> None:
        """Start again on the same data dir (after the previous process exited) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.label} {self.proc.pid} is still running; stop it first")
        self.start()
        self.wait_ready(timeout)


class PostgresServer(_ForegroundServer):
    """One real postmaster on ``127.0.0.1:port`` with data in ``datadir``.

    The unix socket goes to ``datadir.parent`` (handed to the postgres user, so keep it
    short: socket paths are limited to ~100 bytes), stderr goes to ``log_path``
    (default ``datadir.parent / "server.log"``, appended across restarts), and
    ``logging_collector`` is off so no extra logger process owns the log.
    """

    label = "postmaster"

    def __init__(self, datadir: Path, port: int, bindir: Path | None = None, log_path: Path | None = None) -> None:
        _check_port(port)
        found = bindir or find_postgres_bindir()
        if found is None:
            raise DatastoreUnavailable("PostgreSQL server binaries missing (apt package postgresql)")
        self.bindir: Path = found
        self.datadir: Path = datadir
        self.port: int = port
        self.host: str = "127.0.0.1"
        self.socket_dir: Path = datadir.parent
        self.log_path: Path = log_path or datadir.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _env(self) -> dict[str, str]:
        """A small, predictable environment: no PG* variables from the caller leak in."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
        env["HOME"] = str(self.socket_dir)
        return env

    def init(self) -> None:
        """initdb as the postgres OS user, trust auth: the server exists only for this test."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        _owned_by_postgres(self.socket_dir)
        _owned_by_postgres(self.datadir)
        argv = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust"]
        argv += ["-E", "UTF8", "--no-locale", "--no-instructions"]
        _run(argv, env=self._env(), cwd=self.socket_dir, **_as_postgres())

    def start(self) -> None:
        """Launch the ``postgres`` binary itself (not pg_ctl) so the test owns the postmaster PID."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"postmaster {self.proc.pid} is still running")
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        for setting in (
            f"listen_addresses={self.host}",
            f"unix_socket_directories={self.socket_dir}",
            "logging_collector=off",
            "log_destination=stderr",
        ):
            argv += ["-c", setting]
        self._close_log()
        self._log = self.log_path.open("ab")
        # New session: a Ctrl-C at the test's terminal must not reach the server behind our back.
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=self.socket_dir,
            start_new_session=True,
            **_as_postgres(),
        )

    @property
    def pid(self) -> int:
        """The postmaster's PID (the process a signal must reach), checked to really be it."""
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def postmaster_pid_file(self) -> int | None:
        """First line of ``postmaster.pid``: the PID PostgreSQL itself records as postmaster."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll ``pg_isready`` until the server accepts connections; fail fast if it died."""
        deadline = time.monotonic() + timeout
        isready = str(self.bindir / "pg_isready")
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"postmaster exited ({code}) before ready:\n{_tail(self.log_path)}")
            argv = [isready, "-q", "-h", self.host, "-p", str(self.port), "-t", "1"]
            if subprocess.run(argv, check=False, env=self._env()).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres on {self.host}:{self.port} not ready in {timeout}s:\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)
        recorded = self.postmaster_pid_file()
        name = psutil.Process(self.pid).name()
        if recorded != self.pid or name != "postgres":
            raise RuntimeError(f"pid {self.pid} ({name}) is not the postmaster (postmaster.pid says {recorded})")

    def psql(self, sql: str, variables: dict[str, str] | None = None) -> str:
        """Run SQL through the real ``psql`` over TCP as role postgres; stop on the first error.

        The SQL goes in on stdin so values travel as psql variables (``:name``), never
        pasted into the text.
        """
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for name, value in (variables or {}).items():
            argv += ["-v", f"{name}={value}"]
        argv += ["-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-f", "-"]
        result = _run(argv, timeout=60, input=sql, env=self._env(), cwd=self.socket_dir, **_as_postgres())
        return result.stdout.strip()

    def write_rows(self, n: int) -> None:
        """Commit ``n`` rows into the probe table (committed = in the WAL, fsynced)."""
        self.psql(
            "CREATE TABLE IF NOT EXISTS stackwarden_probe(id serial primary key, v text);\n"
            "INSERT INTO stackwarden_probe(v) SELECT 'row-' || g FROM generate_series(1, :n) AS g;\n",
            {"n": str(int(n))},
        )

    def count_rows(self) -> int:
        """Rows in the probe table: what must survive a stop and restart."""
        return int(self.psql("SELECT count(*) FROM stackwarden_probe;\n"))

    def wait_exit(self, timeout: float = 60) -> int:
        """Reap the postmaster after someone signalled it; its exit code (0 after a clean stop)."""
        if self.proc is None:
            raise RuntimeError("server not started")
        code = self.proc.wait(timeout)
        self._close_log()
        return code

    def stop_fast(self, timeout: float = 60) -> int | None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit); its exit code.

        None when it did not stop in time; cleanup() then escalates.
        """
        return self._stop_by(signal.SIGINT, timeout)

    def clean_shutdown_logged(self) -> bool:
        """The log shows a clean stop and no start that found the data dir unclean."""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return PG_CLEAN_SHUTDOWN in log and not any(marker in log for marker in PG_UNCLEAN_MARKERS)

    def cleanup(self) -> None:
        """Leave no process behind: fast stop, then SIGKILL the postmaster and its children.

        Backends orphaned by a postmaster someone SIGKILLed are found by their working
        directory: every PostgreSQL server process chdirs into its data dir.
        """
        if self.proc is not None and self.proc.poll() is None and self.stop_fast(30) is None:
            # Immediate shutdown: the postmaster still stops and reaps its own children.
            children = _children(self.proc.pid)
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _kill_all([self.proc.pid, *children])
                self.proc.wait(10)
        _kill_all(_procs_in(self.datadir))
        self._close_log()

    def _close_log(self) -> None:
        """Close our handle on the log; the server keeps its own until it exits."""
        if self._log is not None:
            self._log.close()
            self._log = None


def _children(pid: int) -> list[int]:
    """PIDs below ``pid`` now, taken before a kill so orphans can still be found."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _procs_in(directory: Path) -> list[int]:
    """PIDs whose working directory is ``directory`` (PostgreSQL processes sit in their data dir)."""
    target = str(directory.resolve())
    found: list[int] = []
    for proc in psutil.process_iter(["cwd"]):
        if proc.info["cwd"] == target and proc.pid != os.getpid():
            found.append(proc.pid)
    return found


def _kill_all(pids: Sequence[int]) -> None:
    """SIGKILL each PID that is still alive; last resort in cleanup only."""
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


@contextlib.contextmanager
def postgres_server(tmp: Path, port: int) -> Iterator[PostgresServer]:
    """An initialised, running PostgresServer, always stopped and removed afterwards.

    The data dir cannot live under ``tmp`` when that is pytest's root-only (0700) tmp tree:
    the postgres user could not reach it. So data and socket go to a fresh directory in the
    system temp dir (removed at exit), while ``server.log`` goes to ``tmp`` to outlive it.
    """
    bindir = ensure_postgres_installed()
    workdir = Path(tempfile.mkdtemp(prefix="sw-pg-"))
    tmp.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(workdir / "data", port, bindir=bindir, log_path=tmp / "server.log")
    try:
        server.init()
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


def ensure_redis_installed() -> Path:
    """Debian's redis-server, installing the ``redis-server`` package when missing."""
    exe = shutil.which("redis-server")
    if exe is not None and shutil.which("redis-cli") is not None:
        return Path(exe)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DatastoreUnavailable("redis-server missing (apt package redis-server); not root to install")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "install", "-y", "-q", "redis-server"], timeout=900, env=env)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise DatastoreUnavailable(f"apt-get install redis-server failed: {exc}") from exc
    exe = shutil.which("redis-server")
    if exe is None:
        raise DatastoreUnavailable("apt-get installed redis-server but the binary is not on PATH")
    return Path(exe)


class RedisServer(_ForegroundServer):
    """One real redis-server in the foreground, durable across SIGTERM.

    Persistence is the append-only file with ``appendfsync always``: every acknowledged
    write is on disk before the reply, and on SIGTERM Redis flushes the AOF and exits 0.
    RDB snapshots are off (``save ""``) so the AOF is the single source of truth.
    """

    label = "redis-server"

    def __init__(self, datadir: Path, port: int, bind: str = "127.0.0.1") -> None:
        _check_port(port)
        exe = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if exe is None or cli is None:
            raise DatastoreUnavailable("redis-server/redis-cli missing (apt package redis-server)")
        self.exe: Path = Path(exe)
        self.cli: Path = Path(cli)
        self.datadir: Path = datadir
        self.port: int = port
        self.bind: str = bind
        self.log_path: Path = datadir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch redis-server as a direct child so ``pid`` is the server itself."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"redis-server {self.proc.pid} is still running")
        self.datadir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.exe), "--port", str(self.port), "--bind", self.bind, "--dir", str(self.datadir)]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        argv += ["--daemonize", "no", "--supervised", "no", "--logfile", str(self.log_path)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.datadir,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The redis-server PID: what a graceful SIGTERM must reach."""
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def _cli(self, *args: str) -> str:
        """redis-cli over TCP with RESP2 JSON output, so nil and "" stay distinct."""
        argv = [str(self.cli), "-h", self.bind, "-p", str(self.port), "-2", "--json", *args]
        return _run(argv, timeout=30).stdout.strip()

    def wait_ready(self, timeout: float = 30) -> None:
        """PING until PONG (a server still loading its AOF answers LOADING); fail fast if it died."""
        deadline = time.monotonic() + timeout
        argv = [str(self.cli), "-h", self.bind, "-p", str(self.port), "PING"]
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"redis-server exited ({code}) before ready:\n{_tail(self.log_path)}")
            result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
            if result.stdout.strip() == "PONG":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"redis on [{self.bind}]:{self.port} not ready in {timeout}s:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def set(self, key: str, value: str) -> None:
        """SET through the real redis-cli; with appendfsync always, OK means on disk."""
        reply = json.loads(self._cli("SET", key, value))
        if reply != "OK":
            raise RuntimeError(f"SET {key} answered {reply!r}")

    def get(self, key: str) -> str | None:
        """GET through the real redis-cli; None for a missing key."""
        reply: str | None = json.loads(self._cli("GET", key))
        return reply

    def wait_exit(self, timeout: float = 30) -> int:
        """Reap redis-server after someone signalled it; its exit code (0 after a clean stop)."""
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30) -> int | None:
        """Graceful stop (SIGTERM: flush the AOF, exit); its exit code, None if it hung."""
        return self._stop_by(signal.SIGTERM, timeout)

    def clean_shutdown_logged(self) -> bool:
        """The log shows Redis finished its shutdown sequence (AOF flushed) at least once."""
        return self.log_path.exists() and REDIS_CLEAN_SHUTDOWN in self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        """Leave no process behind: SIGTERM, then SIGKILL as a last resort."""
        if self.proc is not None and self.proc.poll() is None and self.stop() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def redis_server_persistent(tmp: Path, port: int, bind: str = "127.0.0.1") -> Iterator[RedisServer]:
    """A running, durable RedisServer with data in ``tmp / "redis"``; always stopped afterwards."""
    ensure_redis_installed()
    server = RedisServer(tmp / "redis", port, bind=bind)
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.cleanup()
