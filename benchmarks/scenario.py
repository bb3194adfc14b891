"""Scenario generator on the real engines of the tests: a Docker Compose project, a namespace on
the real kube-apiserver (pods played by the fake kubelet) and real listening sockets on the host.

Every size contains the seed scenario (crash-looping backend in Compose and Kubernetes, a host
"postgres" holding a port Compose wants, redis shadowed on ::1 by a real redis-server, ClusterIP
services); the larger sizes add filler of each kind around it, so the audit has to read more
while the conflicts stay the same:

    size    compose containers   pods    host listeners
    seed    4                    9       2
    medium  50                   500     200
    large   200                  5,000   1,000
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import write_profile
from tests.support.compose import Project, compose_project, panic_backend, tcp_service, unique_name, wait_restarts
from tests.support.realparts import IMAGE, free_ports, host_listener, redis_server


@dataclass(frozen=True)
class Size:
    """How many of each kind a scenario holds (the seed's own included)."""

    name: str
    containers: int
    pods: int
    listeners: int


SIZES = {
    "seed": Size("seed", containers=4, pods=9, listeners=2),
    "medium": Size("medium", containers=50, pods=500, listeners=200),
    "large": Size("large", containers=200, pods=5000, listeners=1000),
}
SEED_CONTAINERS, SEED_PODS, SEED_LISTENERS = 4, 9, 2
EXECUTABLES = ("reconciliation-backend", "backend", "node", "postgres", "redis-server")

# Opens N listening sockets on 127.0.0.1 (kernel-chosen ports), says "ready", waits for SIGTERM.
_MANY_LISTENERS = """
import signal, socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    socks.append(s)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


@dataclass(frozen=True)
class Scenario:
    """A built scenario: what the audit and the baseline commands need to find it."""

    size: Size
    profile_path: Path  # read-only identity (viewer): what an audit needs
    switch_profile_path: Path  # the admin identity: a switch scales workloads
    project: Project
    namespace: str
    kubeconfig: Path
    context: str
    ports: dict[str, int]
    control_plane: Any


@contextlib.contextmanager
def _listeners(count: int) -> Iterator[None]:
    """``count`` real listening sockets held by one helper process (filler on the host)."""
    if count <= 0:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", _MANY_LISTENERS, str(count)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the filler listeners did not start (exit {proc.poll()})")
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def _compose_services(size: Size, ports: dict[str, int]) -> dict[str, Any]:
    """The seed's four services plus ``containers - 4`` running filler containers."""
    services: dict[str, Any] = {
        "backend": panic_backend(),
        "frontend": tcp_service(1000, f"0.0.0.0:{ports['frontend']}:1000"),
        "postgres": tcp_service(5432, f"0.0.0.0:{ports['postgres']}:5432"),
        "redis": tcp_service(6379, f"127.0.0.1:{ports['redis']}:6379"),
    }
    filler = size.containers - SEED_CONTAINERS
    if filler > 0:
        services["filler"] = {
            "image": IMAGE,
            "command": ["sleep", "86400"],
            "init": True,
            "deploy": {"replicas": filler},
        }
    return services


def _wait_pods(api: Any, ns: str, expected: int, timeout: float) -> None:
    """Until ``expected`` pods exist in ``ns`` and each has a phase or waiting reason."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns).items
        seen = sum(1 for p in pods if p.status and p.status.container_statuses)
        if seen >= expected:
            return
        time.sleep(2)
    raise RuntimeError(f"only {seen} of {expected} pods got a status in {timeout:.0f} s")


@contextlib.contextmanager
def cluster_side(control_plane: Any, kubelet: Any, size: Size) -> Iterator[str]:
    """The seed's cluster half (4 backend pods crash-looping, 5 frontend running, 4 ClusterIP
    services) plus ``pods - 9`` running filler pods of one Deployment."""
    from kubernetes import client as k8s

    from tests.support.compose import PANIC_LINE
    from tests.support.kube import (
        CrashLoopBackOff,
        bind_read_only,
        cluster_ip_service,
        delete_namespace,
        deployment,
        new_namespace,
    )

    api = control_plane.admin_api_client()
    ns = new_namespace(api, f"swbench-{size.name}")
    logs = f"Starting reconciliation backend\n{PANIC_LINE}\nnote: run with `RUST_BACKTRACE=1`\n"
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=101, restart_count=7, logs=logs), selector="app=backend", namespace=ns
    )
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    try:
        # audits read as "viewer": their requests are told apart in the audit log; serve's live
        # view follows the namespace as "viewer" too, so it may watch what it may list
        bind_read_only(api, ns, verbs=("get", "list", "watch"))
        apps.create_namespaced_deployment(ns, deployment("backend", 4))
        apps.create_namespaced_deployment(ns, deployment("frontend", 5))
        if size.pods > SEED_PODS:
            apps.create_namespaced_deployment(ns, deployment("filler", size.pods - SEED_PODS))
        for name, app, port in (
            ("backend-service", "backend", 2000),
            ("frontend-service", "frontend", 1000),
            ("postgres-service", "postgres", 5432),
            ("redis-service", "redis", 6379),
        ):
            core.create_namespaced_service(ns, cluster_ip_service(name, app, port))
        _wait_pods(api, ns, size.pods, timeout=120 + size.pods * 0.2)
        yield ns
    finally:
        delete_namespace(api, ns)


@contextlib.contextmanager
def build(size: Size, workdir: Path, control_plane: Any, kubelet: Any) -> Iterator[Scenario]:
    """Build the scenario of ``size`` on the real engines; everything is removed on the way out."""
    names = ("backend", "frontend", "postgres", "redis")
    ports = dict(zip(names, free_ports(4), strict=True))
    name = unique_name(f"swbench-{size.name}")
    with contextlib.ExitStack() as stack:
        stack.enter_context(host_listener("postgres", "0.0.0.0", ports["postgres"]))
        stack.enter_context(redis_server(ports["redis"], "::1"))
        stack.enter_context(_listeners(size.listeners - SEED_LISTENERS))
        project = stack.enter_context(compose_project(workdir, name, _compose_services(size, ports)))
        ns = stack.enter_context(cluster_side(control_plane, kubelet, size))
        wait_restarts(project, "backend", at_least=2)
        profiles = {
            who: write_profile(
                workdir / f"{name}.{who}.yaml",
                name,
                ports,
                [str(project.file)],
                kubernetes={
                    "namespace": ns,
                    "kubeconfig": str(kubeconfig),
                    "allowed_contexts": ["stackwarden-test"],
                },
            )
            for who, kubeconfig in (
                ("viewer", control_plane.viewer_kubeconfig),
                ("admin", control_plane.admin_kubeconfig),
            )
        }
        yield Scenario(
            size=size,
            profile_path=profiles["viewer"],
            switch_profile_path=profiles["admin"],
            project=project,
            namespace=ns,
            kubeconfig=Path(control_plane.viewer_kubeconfig),
            context="stackwarden-test",
            ports=ports,
            control_plane=control_plane,
        )
