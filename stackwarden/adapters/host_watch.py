"""The host part of the live view: the listening sockets on the profile's ports and the
processes behind them, re-read every second.

Re-reading the host the audit's way every second would cost a few percent of a core on a busy
host (``psutil.net_connections`` walks every process's file descriptors to find a socket's
owner). So each second asks the kernel only for the TCP sockets in LISTEN state, through the
``sock_diag`` netlink interface ``ss -ltn`` uses (a few hundred microseconds even with a
thousand listeners), and lists ``/proc`` for new processes of the profile's port-less
executables. Only when one of those changed, and every ``FULL_SECONDS`` anyway, is the host
observed exactly as the audit observes it (``observe_host``): owners, processes, systemd
units. A docker-proxy is probed once when it appears (not every second: each probe is a
connection to the service behind it); the profile's health checks run every ``HEALTH_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from stackwarden.adapters.host import HostObservation, observe_host, run_health_checks
from stackwarden.adapters.watching import Emit, now, why
from stackwarden.live.state import Heard, HostSeen, Lost
from stackwarden.model.base import Runtime
from stackwarden.model.profile import HealthCheck, HostLookup
from stackwarden.model.snapshot import HealthResult, Listener

LOG = logging.getLogger(__name__)

POLL_SECONDS = 1.0
FULL_SECONDS = 60.0
"""How often the host is observed whole even when no socket changed (a process renamed, a
proxy whose container stopped answering behind it)."""
HEALTH_SECONDS = 10.0
"""How often the profile's health checks run (each is a real request to the service)."""

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_HEADER = struct.Struct("=IHHII")

Socket = tuple[str, int, int]
"""(address, port, inode) of one listening socket: a new inode on the same port is a new owner."""


def _diag_request(family: int, seq: int) -> bytes:
    """inet_diag_req_v2 for every TCP socket of ``family`` in LISTEN state."""
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN) + bytes(48)
    return _HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0) + body


def _diag_dump(sock: socket.socket, family: int, seq: int) -> Iterator[Socket]:
    """The kernel's answer to one request: (address, port, inode) per listening socket."""
    sock.send(_diag_request(family, seq))
    width = 4 if family == socket.AF_INET else 16
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                raise OSError(-code, "sock_diag answered with an error")
            body = offset + _HEADER.size
            port = struct.unpack_from(">H", data, body + 4)[0]
            address = socket.inet_ntop(family, data[body + 8 : body + 8 + width])
            inode = struct.unpack_from("=I", data, body + 68)[0]
            yield address, port, inode
            offset += (length + 3) & ~3
        if not data:
            return


def netlink_listeners(ports: frozenset[int]) -> frozenset[Socket]:
    """Every TCP socket in LISTEN state on one of ``ports``, IPv4 and IPv6, from the kernel."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as sock:
        sock.bind((0, 0))
        found = [s for family in (socket.AF_INET, socket.AF_INET6) for s in _diag_dump(sock, family, family)]
    return frozenset(s for s in found if s[1] in ports)


def proc_listeners(ports: frozenset[int]) -> frozenset[Socket]:
    """The same as ``netlink_listeners`` from /proc/net/tcp and tcp6 (where netlink is not
    allowed); the addresses stay in the kernel's hex, which is enough to see a change."""
    out = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/net/{name}", encoding="ascii") as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                    address, _, port = fields[1].partition(":")
                    if int(port, 16) in ports:
                        out.add((address, int(port, 16), int(fields[9])))
    return frozenset(out)


def _searched(pid: str, names: frozenset[str], paths: frozenset[str]) -> bool:
    """The process answers to one of ``names`` (comm, argv[0] or the executable's base name) or
    runs one of ``paths``: a candidate the host observation searches for (as ``observe_host``
    searches; stackwarden.identity decides whether it is the service)."""
    base = Path("/proc") / pid
    seen = set()
    with contextlib.suppress(OSError):
        seen.add((base / "comm").read_text(encoding="utf-8", errors="replace").strip())
    with contextlib.suppress(OSError):
        argv0 = (base / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        seen.add(argv0.split(" ", 1)[0].rsplit("/", 1)[-1])
    exe = ""
    with contextlib.suppress(OSError):
        exe = os.readlink(base / "exe")
        seen.add(exe.rsplit("/", 1)[-1])
    return bool(seen & names) or exe in paths


class HostWatch:
    """Runs until ``stop`` is set; a re-read that differs from the last goes to ``emit``."""

    def __init__(
        self,
        emit: Emit,
        stop: threading.Event,
        *,
        ports: frozenset[int],
        lookup: HostLookup | None = None,
        checks: tuple[tuple[str, HealthCheck], ...] = (),
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._emit = emit
        self._stop = stop
        self._ports = ports
        self._lookup = lookup or HostLookup()
        self._checks = checks
        self._poll = poll_seconds
        self._sockets: frozenset[Socket] | None = None
        self._named: dict[str, bool] = {}
        self._observed: HostObservation | None = None
        self._health: tuple[HealthResult, ...] = ()
        self._full_at = 0.0
        self._health_at = 0.0
        self._lost = False
        self._read_sockets = netlink_listeners

    def run(self) -> None:
        """Re-read every ``poll_seconds`` until stopped."""
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._once(started)
            except Exception as exc:  # the host itself could not be read: a gap, retried next second
                if not self._lost:
                    LOG.warning("host not observed: %s", exc)
                    self._emit(Lost(runtime=Runtime.HOST, reason=why(exc), at=now(), endpoint=socket.gethostname()))
                self._lost, self._observed = True, None
            self._stop.wait(max(0.0, self._poll - (time.monotonic() - started)))

    def _listening(self) -> frozenset[Socket]:
        try:
            return self._read_sockets(self._ports)
        except OSError as exc:  # no netlink here (a restricted container): the /proc files
            LOG.info("sock_diag unavailable (%s); reading /proc/net/tcp instead", exc)
            self._read_sockets = proc_listeners
            return proc_listeners(self._ports)

    def _named_changed(self) -> bool:
        """A process the observation searches for (a port-less service's) started or ended
        since the last look; only new PIDs are read."""
        search = self._lookup.search
        if not search:
            return False
        resolved = self._observed.context.executables if self._observed and self._observed.context else {}
        names = frozenset(e for e in search if not e.startswith("/"))
        paths = frozenset(p for e in search for p in (e, *resolved.get(e, ())) if p.startswith("/"))
        pids = {p for p in os.listdir("/proc") if p.isdigit()}
        changed = any(self._named.pop(p) for p in set(self._named) - pids)
        for pid in pids - set(self._named):
            self._named[pid] = _searched(pid, names, paths)
            changed = changed or self._named[pid]
        return changed

    def _once(self, started: float) -> None:
        sockets = self._listening()
        named = self._named_changed()
        full = started - self._full_at >= FULL_SECONDS
        changed = False
        if self._observed is None or sockets != self._sockets or named or full:
            before = self._observed
            known = (
                {unprobed(item): item.no_reply for item in before.listeners}
                if before is not None and not full
                else None
            )
            seen = observe_host(self._ports, self._lookup, known_replies=known)
            changed = before is None or (seen.listeners, seen.processes) != (before.listeners, before.processes)
            self._observed, self._sockets = seen, sockets
            if full:
                self._full_at = started
        if self._checks and started - self._health_at >= HEALTH_SECONDS:
            health = run_health_checks(self._checks)
            self._health_at = started
            changed = changed or health != self._health
            self._health = health
        if (changed or self._lost) and (seen := self._observed) is not None:
            self._emit(
                HostSeen(
                    status=seen.status,
                    listeners=seen.listeners,
                    processes=seen.processes,
                    health=self._health,
                    at=now(),
                    context=seen.context,
                )
            )
            self._lost = False
        else:
            self._emit(Heard(runtime=Runtime.HOST, at=now()))


def unprobed(listener: Listener) -> Listener:
    """A listener as the host reports it before any probe (the key of an earlier answer)."""
    return listener.model_copy(update={"no_reply": None})
