"""A rollback restarts a host process as the user it ran as, with real processes: the host
observation records the uid and gid of a listener that runs as ``nobody``, and both the switch's
start (``start_process``) and the printed command (``setpriv ...``) start it as ``nobody``, not
as root, which runs stackwarden here."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from stackwarden.adapters.host import observe_host, start_process
from stackwarden.commands import step_commands
from stackwarden.model.base import Runtime
from stackwarden.model.plan import RunAs, StartProcess
from tests.support.builders import profile
from tests.support.realparts import free_ports, require, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's interpreter lives under /root, which nobody may not enter
_LISTEN = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); time.sleep(600)"
)


def _listener_on(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


@contextmanager
def _reaped(port: int) -> Iterator[None]:
    try:
        yield
    finally:
        process = _listener_on(port)
        if process is not None:
            process.kill()
            process.wait(10)


def test_a_rollback_start_runs_as_the_stopped_processes_user() -> None:
    require(os.geteuid() == 0, "needs root: it starts processes as another user")
    require(os.access(SYSTEM_PYTHON, os.X_OK), f"{SYSTEM_PYTHON} is not installed")
    nobody = pwd.getpwnam("nobody")
    seen_port, restarted_port, printed_port = free_ports(3)
    command = (SYSTEM_PYTHON, "-c", _LISTEN)
    with _reaped(seen_port), _reaped(restarted_port), _reaped(printed_port):
        first = subprocess.Popen(
            [*command, str(seen_port)], user=nobody.pw_uid, group=nobody.pw_gid, start_new_session=True
        )
        wait_for(lambda: _listener_on(seen_port) is not None, timeout=15, what="the listener running as nobody")
        observed = observe_host(frozenset({seen_port}))
        info = next(p for p in observed.processes if p.pid == first.pid)
        assert (info.uid, info.gid, info.user) == (nobody.pw_uid, nobody.pw_gid, "nobody")

        run_as = RunAs(uid=info.uid, gid=info.gid, user=info.user)
        assert "as nobody" in start_process(None, (*command, str(restarted_port)), run_as)
        wait_for(lambda: _listener_on(restarted_port) is not None, timeout=15, what="the restarted listener")
        restarted = _listener_on(restarted_port)
        assert restarted is not None
        assert (restarted.uids().real, restarted.gids().real) == (nobody.pw_uid, nobody.pw_gid)

        undo = StartProcess(
            id="undo",
            service="redis",
            runtime=Runtime.HOST,
            why="rollback",
            target="t",
            reversible=True,
            inverse="",
            start_command=(*command, str(printed_port)),
            run_as=run_as,
        )
        (line,) = step_commands(undo, profile())
        assert line.startswith("setpriv --reuid=65534 --regid=65534 --init-groups -- ")
        subprocess.Popen(shlex.split(line), start_new_session=True, stdout=subprocess.DEVNULL)
        wait_for(
            lambda: _listener_on(printed_port) is not None, timeout=15, what="the listener the printed line started"
        )
        printed = _listener_on(printed_port)
        assert printed is not None and printed.uids().real == nobody.pw_uid
