"""A port that accepts connections and never answers, as the apiserver: the audit completes
within the bound (each call's connect/read timeout, no retry of a timeout), the cluster is
reported unobserved with the reason "timeout", and a switch refuses rather than guess."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stackwarden.model.base import Mode, Runtime
from stackwarden.pipeline import run_audit
from stackwarden.planner import plan
from stackwarden.profiles import load_profile
from tests.support.compose import unique_name
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.docker]

BOUND_SECONDS = 10.0


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """Accepts every connection and never sends a byte (a hung apiserver)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def _profile(tmp: Path, kubeconfig: Path | None) -> Path:
    (port,) = free_ports(1)
    data: dict[str, object] = {
        "name": "swfault-hung",
        "compose": {"project": unique_name("swfault-hung"), "files": ["/nonexistent.yml"]},
        "services": {"web": {"ports": [port]}},
    }
    if kubeconfig is not None:
        data["kubernetes"] = {
            "namespace": "hung",
            "kubeconfig": str(kubeconfig),
            "allowed_contexts": ["hung"],
        }
    path = tmp / ("with-cluster.yaml" if kubeconfig else "without-cluster.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def _kubeconfig(tmp: Path, port: int) -> Path:
    path = tmp / "kubeconfig"
    server = f"https://127.0.0.1:{port}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "hung",
                        "cluster": {"server": server, "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "hung", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "hung", "context": {"cluster": "hung", "user": "hung"}}],
                "current-context": "hung",
            }
        )
    )
    return path


def test_a_hung_apiserver_adds_at_most_the_bound_to_an_audit(tmp_path: Path, docker_engine: None) -> None:
    baseline_profile = load_profile(_profile(tmp_path, None))
    started = time.monotonic()
    run_audit(baseline_profile)
    baseline = time.monotonic() - started
    with _silent_server() as port:
        profile = load_profile(_profile(tmp_path, _kubeconfig(tmp_path, port)))
        started = time.monotonic()
        outcome = run_audit(profile)
        elapsed = time.monotonic() - started
    assert elapsed - baseline <= BOUND_SECONDS, (elapsed, baseline)
    status = outcome.snapshot.runtime_status(Runtime.KUBERNETES)
    assert status is not None and not status.reachable
    (gap,) = outcome.snapshot.gaps(Runtime.KUBERNETES)
    assert (gap.kind, gap.state, gap.reason) == ("*", "unobserved", "timeout"), gap
    assert "kubernetes could not be observed" in " ".join(plan(outcome.snapshot, profile, Mode.COMPOSE_ONLY).refusals)
