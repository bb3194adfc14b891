"""Observe the host through psutil: listening TCP sockets and the processes behind them."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from stackwarden.errors import RefusedError, StackwardenError
from stackwarden.model.base import Runtime
from stackwarden.model.plan import RunAs, Unchanged
from stackwarden.model.profile import HealthCheck, HostLookup
from stackwarden.model.snapshot import HealthResult, HostContext, Listener, ProcessInfo, RuntimeStatus
from stackwarden.observe import systemd_unit_from_cgroup
from stackwarden.preflight import unit_restart_problem
from stackwarden.sanitize import redact_argv

LOG = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class HostObservation:
    """Listeners on the requested ports and the processes that own them."""

    status: RuntimeStatus
    listeners: tuple[Listener, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()
    health: tuple[HealthResult, ...] = ()
    context: HostContext | None = None


def _systemd_unit(pid: int) -> str | None:
    try:
        return systemd_unit_from_cgroup(Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8"))
    except OSError:
        return None


def process_info(pid: int) -> ProcessInfo | None:
    """A process's identity and description; None if it is gone (PIDs are reused, so callers
    compare ``create_time`` and ``exe`` before acting)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            info = ProcessInfo(
                pid=pid,
                create_time=proc.create_time(),
                name=proc.name(),
                exe=_safe(proc.exe),
                cmdline=redact_argv(_safe(proc.cmdline) or []),
                user=_safe(proc.username),
                uid=_safe(lambda: proc.uids().real),
                gid=_safe(lambda: proc.gids().real),
                uids=tuple(_safe(proc.uids) or ()),
                mount_namespace=mount_namespace(pid),
                ppid=proc.ppid(),
                systemd_unit=_systemd_unit(pid),
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return info


def _safe(getter: Callable[[], T]) -> T | None:
    """A psutil attribute, or None where the kernel will not tell us (permissions, zombies)."""
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


def mount_namespace(pid: int | str) -> str | None:
    """``mnt:[N]`` of a process (``"self"`` for ours); None when the kernel will not say (another
    user's process, seen by a non-root user)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
"""Where a profile's bare executable name is looked up: the system's directories, which only
root can write. Never ``$PATH``: whoever starts stackwarden chooses it, and a directory of
theirs on it could make any file "the service's"."""


def resolve_executable(name_or_path: str) -> tuple[str, ...]:
    """The executable files a profile entry names on this host, symlinks resolved: a path
    through its links, a bare name in each of ``SYSTEM_BIN_DIRS`` (``redis-server`` ->
    ``/usr/bin/redis-check-rdb`` on Debian). Empty when nothing is installed there."""
    if name_or_path.startswith("/"):
        candidates = [name_or_path]
    else:
        candidates = [os.path.join(directory, name_or_path) for directory in SYSTEM_BIN_DIRS]
    found = []
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isfile(real) and os.access(real, os.X_OK):
            found.append(real)
    return tuple(dict.fromkeys(found))


def host_context(lookup: HostLookup) -> HostContext:
    """Who observes (and will act): our effective uid, user name and mount namespace, and where
    each of the profile's executable names and paths is installed here."""
    uid = os.geteuid()
    try:
        user: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = None
    return HostContext(
        uid=uid,
        user=user,
        mount_namespace=mount_namespace("self"),
        executables={entry: resolve_executable(entry) for entry in lookup.resolve},
    )


def _searched_pids(search: tuple[str, ...], context: HostContext) -> set[int]:
    """PIDs of processes answering to one of ``search`` (a name as comm, argv[0] or executable
    base name; a path as the executable, or what it resolves to): a service without ports has no
    socket that leads to it. These are candidates only; stackwarden.identity decides."""
    if not search:
        return set()
    names = {entry for entry in search if not entry.startswith("/")}
    paths = {path for entry in search for path in (entry, *context.executables.get(entry, ())) if path.startswith("/")}
    found = set()
    for proc in psutil.process_iter(["name", "cmdline", "exe"]):
        info = proc.info
        argv = info.get("cmdline") or []
        argv0 = argv[0].split(" ", 1)[0].rsplit("/", 1)[-1] if argv else ""
        exe = info.get("exe") or ""
        if {info.get("name") or "", argv0, exe.rsplit("/", 1)[-1]} & names or exe in paths:
            found.add(proc.pid)
    return found


def observe_host(
    ports: frozenset[int] | None = None,
    lookup: HostLookup | None = None,
    known_replies: Mapping[Listener, str | None] | None = None,
) -> HostObservation:
    """Every listening TCP socket (IPv4 and IPv6 apart) on ``ports`` (all when None), the
    processes behind them plus those ``lookup`` searches for (port-less services), and the
    context their identity is judged in (stackwarden.identity). ``known_replies``: docker-proxy
    listeners already probed (the live view re-reads the host every second and probes only a
    proxy it has not seen)."""
    lookup = lookup or HostLookup()
    context = host_context(lookup)
    listeners = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        if ports is not None and conn.laddr.port not in ports:
            continue
        listeners.append(Listener(address=conn.laddr.ip, port=conn.laddr.port, pid=conn.pid))
    unique = sorted(set(listeners), key=lambda item: (item.port, item.address, item.pid or 0))
    pids = {item.pid for item in unique if item.pid} | _searched_pids(lookup.search, context)
    processes = [p for pid in sorted(pids) if (p := process_info(pid))]
    if ports is not None:  # profile ports only: never probe every port of the host
        unique = _probe_proxies(
            unique, {p.pid for p in processes if p.exe_basename == "docker-proxy"}, known_replies or {}
        )
    return HostObservation(
        status=RuntimeStatus(runtime=Runtime.HOST, reachable=True, endpoint=socket.gethostname()),
        listeners=tuple(unique),
        processes=tuple(processes),
        context=context,
    )


PROXY_PROBE_SECONDS = 0.3
"""How long a probe through a docker-proxy waits: the proxy closes a connection it cannot
forward within milliseconds (the container is on a local bridge); a live service that waits
for its client to speak first (HTTP, PostgreSQL) just holds it open until then."""


def forwarded_reply(
    host: str, port: int, timeout: float = PROXY_PROBE_SECONDS, connect_timeout: float | None = None
) -> str | None:
    """None when a connection to host:port stays open or answers; else how it failed.

    A docker-proxy accepts every connection and closes it at once when nothing listens behind
    it in the container (the app bound to the container's loopback, or to another port), so a
    bare connect succeeds there: only reading tells. Nothing is sent. ``timeout`` bounds the
    wait for a reply, ``connect_timeout`` (default: the same) the connect."""
    try:
        with socket.create_connection((host, port), timeout=connect_timeout or timeout) as conn:
            conn.settimeout(timeout)
            try:
                data = conn.recv(1)
            except TimeoutError:
                return None
            except ConnectionResetError:
                return f"tcp {host}:{port}: accepted, then reset with no reply"
            return None if data else f"tcp {host}:{port}: accepted, then closed at once with no reply"
    except OSError as exc:
        return f"tcp {host}:{port}: {exc}"


def _probe_address(listener: Listener) -> str:
    """Where to connect to reach ``listener``: its loopback when it listens on every address."""
    if listener.address in {"0.0.0.0", "::"}:
        return "127.0.0.1" if listener.family == "ipv4" else "::1"
    return listener.address


def _probe_proxies(
    listeners: list[Listener], proxy_pids: set[int], known: Mapping[Listener, str | None]
) -> list[Listener]:
    """Probe each docker-proxy listener once, concurrently (a live service costs the probe's
    wait, a dead one milliseconds), and record the ones that close at once; a listener in
    ``known`` keeps its earlier answer."""
    proxied = [item for item in listeners if item.pid in proxy_pids and item not in known]
    replies = {item: known[item] for item in listeners if item in known}
    if proxied:
        with ThreadPoolExecutor(max_workers=min(8, len(proxied)), thread_name_prefix="probe") as pool:
            replies.update(
                zip(
                    proxied,
                    pool.map(lambda item: forwarded_reply(_probe_address(item), item.port), proxied),
                    strict=True,
                )
            )
    return [item.model_copy(update={"no_reply": replies[item]}) if replies.get(item) else item for item in listeners]


def _verified(pid: int, create_time: float, exe: str | None) -> psutil.Process | None:
    """The process, if it is still the one planned; None if it is gone. PIDs are reused, so a
    different start time or executable means a different process: refuse."""
    try:
        proc = psutil.Process(pid)
        started, current_exe = proc.create_time(), _safe(proc.exe)
        if abs(started - create_time) <= 0.05 and proc.status() == psutil.STATUS_ZOMBIE:
            return None  # the planned process has exited (a zombie has no exe to compare); only its parent reaps it
    except psutil.NoSuchProcess:
        return None
    if abs(started - create_time) > 0.05 or (exe is not None and current_exe != exe):
        raise RefusedError(
            f"PID {pid} is now a different process (started {started:.2f}, exe {current_exe}); "
            f"the plan saw one started {create_time:.2f} with exe {exe}; nothing was signalled"
        )
    return proc


def _systemctl(verb: str, unit: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``systemctl VERB -- UNIT``: the unit name after ``--`` can never be read as an option."""
    return _systemctl_argv([verb, "--", unit], verb, unit, timeout)


def _systemctl_argv(args: list[str], verb: str, unit: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``systemctl ARGS`` (which end in ``-- UNIT``), bounded by ``timeout``."""
    try:
        return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackwardenError(f"systemctl {verb} {unit}: {exc}") from exc


def unit_restart_setting(unit: str) -> str:
    """The unit's ``Restart=`` setting (``no``, ``on-failure``, ``always`` ...)."""
    try:
        result = subprocess.run(
            ["systemctl", "show", "--property=Restart", "--value", "--", unit],
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackwardenError(f"systemctl show {unit}: {exc}") from exc
    if result.returncode != 0:
        raise StackwardenError(f"systemctl show {unit} failed: {result.stderr.strip()[-300:]}")
    return result.stdout.strip() or "no"


def _held_by(pid: int, unit: str) -> None:
    """Re-read right before acting: the unit must still hold the PID."""
    holder = _systemd_unit(pid)
    if holder != unit:
        raise RefusedError(
            f"PID {pid} is no longer in system unit {unit} (now: {holder or 'no system unit'}); "
            "nothing was stopped; replan"
        )


def _checked(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise StackwardenError(f"{what} failed: {result.stderr.strip()[-500:]}")


def _stop_stateful_unit(proc: psutil.Process, unit: str, signal_name: str, grace_seconds: float, force: bool) -> str:
    """A stateful service's unit: its clean signal to the main process through ``systemctl kill``
    and this function's own wait. ``systemctl stop`` would SIGKILL it after TimeoutStopSec, and
    under ``Restart=always`` systemd would start it again after the clean exit: refused. Only
    ``force`` hands a process still running after the grace period to ``systemctl stop``."""
    problem = unit_restart_problem(unit, unit_restart_setting(unit))
    if problem:
        raise RefusedError(f"{problem}; nothing was stopped")
    how = f"systemctl kill --signal={signal_name}"
    _checked(
        _systemctl_argv(["kill", "--kill-whom=main", f"--signal={signal_name}", "--", unit], "kill", unit, 30), how
    )
    if _wait_gone(proc, grace_seconds):
        return f"stopped by {how}"
    if not force:
        raise StackwardenError(
            f"PID {proc.pid} ({proc.name()}) of {unit} did not stop within {grace_seconds:g}s after {signal_name}; "
            "it is stateful, so it is not stopped with systemctl stop (which SIGKILLs after TimeoutStopSec) "
            "without --force"
        )
    _checked(_systemctl("stop", unit, 120), f"systemctl stop {unit}")
    _wait_gone(proc, 10)
    return f"stopped by systemctl stop after {grace_seconds:g}s (forced)"


def stop_process(
    *,
    pid: int,
    create_time: float,
    exe: str | None,
    signal_name: str,
    grace_seconds: float,
    systemd_unit: str | None,
    stateful: bool,
    force: bool,
) -> str:
    """Stop a host process gracefully; idempotent (a process already gone is fine).

    A systemd unit is stopped through systemctl (a signal would be answered by a restart): a
    stateful one as ``_stop_stateful_unit`` says, any other by ``systemctl stop``. A stateful
    service that outlives its grace period is never SIGKILLed without ``force``.
    """
    proc = _verified(pid, create_time, exe)
    if proc is None:
        return Unchanged("already stopped")
    if systemd_unit:
        _held_by(pid, systemd_unit)
        if stateful:
            return _stop_stateful_unit(proc, systemd_unit, signal_name, grace_seconds, force)
        _checked(_systemctl("stop", systemd_unit, grace_seconds + 30), f"systemctl stop {systemd_unit}")
        how = "systemctl stop"
    else:
        proc.send_signal(signal.Signals[signal_name])
        how = signal_name
    if _wait_gone(proc, grace_seconds):
        return f"stopped by {how}"
    if stateful and not force:
        raise StackwardenError(
            f"PID {pid} ({proc.name()}) did not stop within {grace_seconds:g}s after {signal_name}; it is "
            "stateful, so it is not SIGKILLed without --force"
        )
    proc.kill()
    _wait_gone(proc, 10)
    return f"killed after {grace_seconds:g}s (SIGKILL{' forced' if stateful else ''})"


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until the process has exited. A zombie has exited too: only its parent can reap it,
    and psutil's own wait would keep polling a non-child zombie until the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
            proc.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            return True
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            if time.monotonic() >= deadline:
                return False


def start_process(
    systemd_unit: str | None,
    start_command: tuple[str, ...] | None,
    run_as: RunAs | None = None,
    *,
    replaces: tuple[int, float] | None = None,
) -> str:
    """Start a host service again (rollback, repair): its unit, else the profile's start_command,
    detached, as the user the stopped process ran as (its uid, gid and that user's groups).
    While the process it replaces still runs (a stop that never happened, a repair run twice),
    nothing is started: a second copy would fight the first for its port and data."""
    if replaces is not None:
        with contextlib.suppress(RefusedError):
            if _verified(replaces[0], replaces[1], None) is not None:
                return Unchanged(f"PID {replaces[0]} still runs; nothing started")
    if systemd_unit:
        result = _systemctl("start", systemd_unit, 120)
        if result.returncode != 0:
            raise StackwardenError(f"systemctl start {systemd_unit} failed: {result.stderr.strip()[-500:]}")
        return f"started {systemd_unit}"
    if not start_command:
        raise StackwardenError("no systemd unit and no start_command: cannot start it again")
    identity: dict[str, Any] = {}
    if run_as is not None and (run_as.uid, run_as.gid) != (os.getuid(), os.getgid()):
        identity = {"user": run_as.uid, "group": run_as.gid}
        if os.geteuid() == 0:
            identity["extra_groups"] = _groups_of(run_as)
    try:
        subprocess.Popen(
            list(start_command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **identity,
        )
    except (OSError, ValueError) as exc:
        who = f" as uid {run_as.uid}" if identity and run_as is not None else ""
        raise StackwardenError(f"cannot start {start_command[0]}{who}: {exc}") from exc
    return "started: " + " ".join(start_command) + (f" as {run_as.user or run_as.uid}" if identity and run_as else "")


def _groups_of(run_as: RunAs) -> list[int]:
    """The supplementary groups of the user (as login would give them); none for a bare uid."""
    if not run_as.user:
        return []
    try:
        return [g for g in os.getgrouplist(run_as.user, run_as.gid) if g != run_as.gid]
    except (KeyError, OSError):
        return []


def unit_exists(unit: str) -> bool:
    """Whether the system manager knows ``unit`` (LoadState other than not-found)."""
    try:
        result = subprocess.run(
            ["systemctl", "show", "--property=LoadState", "--value", "--", unit],
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackwardenError(f"systemctl show {unit}: {exc}") from exc
    state = result.stdout.strip()
    return result.returncode == 0 and bool(state) and state != "not-found"


def executable_exists(argv0: str) -> bool:
    """Whether ``argv0`` (a path, or a name looked up on PATH) is an executable file."""
    if "/" in argv0:
        path = Path(argv0)
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(argv0) is not None


def check_tcp(port: int, timeout: float, host: str = "127.0.0.1") -> str | None:
    """None when host:port accepts a connection and keeps it open (or answers), else why not.

    A bare connect is no health check: a container's docker-proxy accepts every connection even
    when nothing listens behind it, so verify would pass a switch to a service no client can
    reach. The connect gets the profile's ``timeout``; then, as for the audit's probe, a peer
    that closes at once without a word is not serving."""
    return forwarded_reply(host, port, timeout=min(timeout, PROXY_PROBE_SECONDS), connect_timeout=timeout)


def run_health_checks(checks: Sequence[tuple[str, HealthCheck]]) -> tuple[HealthResult, ...]:
    """The profile's checks, concurrently (each bounded by its own timeout): the audit costs the
    slowest check, not the sum."""
    if not checks:
        return ()

    def one(item: tuple[str, HealthCheck]) -> HealthResult:
        service, check = item
        if check.tcp is not None:
            return HealthResult(
                service=service, target=f"tcp 127.0.0.1:{check.tcp}", error=check_tcp(check.tcp, check.timeout_seconds)
            )
        url = check.http or ""
        return HealthResult(service=service, target=f"GET {url}", error=check_http(url, check.timeout_seconds))

    with ThreadPoolExecutor(max_workers=min(8, len(checks)), thread_name_prefix="health") as pool:
        return tuple(pool.map(one, checks))


def check_http(url: str, timeout: float) -> str | None:
    """None when ``url`` answers below 400, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - profile-given http(s) URL
            return None if response.status < 400 else f"{url}: HTTP {response.status}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
