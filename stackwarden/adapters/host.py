"""Observe the host through psutil: listening TCP sockets and the processes behind them."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from stackwarden.model.base import Runtime
from stackwarden.model.snapshot import Listener, ProcessInfo, RuntimeStatus
from stackwarden.observe import systemd_unit_from_cgroup
from stackwarden.redact import redact_argv

LOG = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class HostObservation:
    """Listeners on the requested ports and the processes that own them."""

    status: RuntimeStatus
    listeners: tuple[Listener, ...] = ()
    processes: tuple[ProcessInfo, ...] = ()


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


def observe_host(ports: frozenset[int] | None = None) -> HostObservation:
    """Every listening TCP socket (IPv4 and IPv6 apart) on ``ports`` (all when None)."""
    listeners = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        if ports is not None and conn.laddr.port not in ports:
            continue
        listeners.append(Listener(address=conn.laddr.ip, port=conn.laddr.port, pid=conn.pid))
    unique = sorted(set(listeners), key=lambda item: (item.port, item.address, item.pid or 0))
    processes = [p for pid in sorted({item.pid for item in unique if item.pid}) if (p := process_info(pid))]
    return HostObservation(
        status=RuntimeStatus(runtime=Runtime.HOST, reachable=True, endpoint=socket.gethostname()),
        listeners=tuple(unique),
        processes=tuple(processes),
    )
