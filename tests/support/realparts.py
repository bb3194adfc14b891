"""Helpers for tests on real components: fail under CI=true, skip only on a developer's
machine that lacks the component, and start/stop real host processes."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

IMAGE = os.environ.get("STACKWARDEN_TEST_IMAGE", "stackwarden-test/busybox:1")
REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    """CI sets CI=true; there, a missing real component is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(ok: bool, what: str) -> None:
    """Fail under CI, skip elsewhere, when a real component the test needs is missing."""
    if ok:
        return
    message = f"{what} (run scripts/provision-docker.sh, or see README)"
    if in_ci():
        pytest.fail(f"required real component missing under CI=true: {message}")
    pytest.skip(message)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports in the high range (IPv4 and IPv6 loopback both free)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port < 20000 or port in ports:
            continue
        try:
            with socket.socket(socket.AF_INET6) as s6:
                s6.bind(("::1", port))
        except OSError:
            continue
        ports.append(port)
    return ports


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll ``predicate`` until true or fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


_LISTENER = """
import ctypes, signal, socket, sys, threading, time
name, host, port, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME: what ps and psutil show
def leave(signum, frame):
    time.sleep(slow)  # a server that takes its time to shut down cleanly
    sys.exit(0)
signal.signal(signal.SIGINT, leave)
signal.signal(signal.SIGTERM, leave)
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((host, port))
s.listen(16)
print("ready", flush=True)
def hold(conn):  # like a real server, wait for the client to speak (and close), never reply
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    finally:
        conn.close()
while True:
    conn, _ = s.accept()
    threading.Thread(target=hold, args=(conn,), daemon=True).start()
"""


_NAMED_DIR: list[Path] = []


def named_interpreter(name: str) -> str:
    """The path of this Python interpreter under the name ``name`` (a hard link, else a copy, in
    a private directory removed at exit).

    stackwarden identifies a host service by the file its process runs (/proc/PID/exe), never by
    its comm or argv[0], so a stand-in for "postgres" must really run a file called postgres:
    ``python -c`` with a changed comm is, rightly, not taken for it."""
    if "/" in name or name in {"", ".", ".."}:
        raise ValueError(f"{name!r} cannot be a file name")
    if not _NAMED_DIR:
        _NAMED_DIR.append(Path(tempfile.mkdtemp(prefix="stackwarden-exe-")))
        atexit.register(shutil.rmtree, _NAMED_DIR[0], True)
    path = _NAMED_DIR[0] / name
    if not path.exists():
        real = os.path.realpath(sys.executable)  # a venv's python is a symlink: /proc/PID/exe would name its target
        try:
            os.link(real, path)
        except OSError:
            shutil.copy2(real, path)
    return str(path)


@contextlib.contextmanager
def host_listener(name: str, host: str, port: int, slow_stop: float = 0.0) -> Iterator[subprocess.Popen[str]]:
    """A real process of an executable named ``name`` (so its exe, comm and argv[0] all say
    ``name``) listening on host:port; it exits ``slow_stop`` seconds after SIGINT/SIGTERM.

    Stands in for a host service (a local postgres) where the test needs only its socket.
    """
    argv = [named_interpreter(name), "-c", _LISTENER, name, host, str(port), str(slow_stop)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"listener {name} on {host}:{port} did not start (exit {proc.poll()})")
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def redis_server(port: int, bind: str = "::1") -> Iterator[subprocess.Popen[str]]:
    """A real Debian redis-server on ``bind``:``port`` with persistence off and its own dir."""
    exe = shutil.which("redis-server")
    require(exe is not None, "redis-server (apt package redis-server) is not installed")
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", bind, "--save", "", "--appendonly", "no", "--dir", "/tmp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(lambda: listening(port, bind), 10, f"redis-server on [{bind}]:{port}")
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate a test process and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run(argv: Sequence[str], check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command (never through a shell) and capture its output."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result  # type: ignore[no-any-return]


def docker_ready() -> tuple[bool, str]:
    """Whether the engine, Compose v2 and the test image are all there."""
    if shutil.which("docker") is None:
        return False, "docker CLI not installed"
    if run(["docker", "info"], check=False).returncode != 0:
        return False, "Docker engine not reachable"
    if run(["docker", "compose", "version"], check=False).returncode != 0:
        return False, "Docker Compose v2 plugin missing"
    if run(["docker", "image", "inspect", IMAGE], check=False).returncode != 0:
        return False, f"test image {IMAGE} missing"
    return True, ""
