"""Shared fixtures: the real Docker engine and the seed scenario on high ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.compose import Project, compose_project, panic_backend, tcp_service, unique_name, wait_restarts
from tests.support.realparts import docker_ready, free_ports, host_listener, redis_server, require


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``session_first`` run first and ``session_last`` last, whatever their files
    and whatever order the shuffle (pytest-randomly) chose for the rest.

    A few checks need real time to pass (a switch paused for approval must still be waiting,
    and then apply, after six minutes on a real server): the first test starts them, the suite
    runs meanwhile, the last test checks them, so the wait costs the suite nothing."""
    first = [item for item in items if item.get_closest_marker("session_first")]
    last = [item for item in items if item.get_closest_marker("session_last")]
    items[:] = first + [item for item in items if item not in first and item not in last] + last


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """The real engine, Compose v2 and the test image; fails under CI=true when missing."""
    ok, why = docker_ready()
    require(ok, why)


@dataclass(frozen=True)
class SeedScenario:
    """The seed's Docker-and-host half, running for real."""

    project: Project
    profile_path: Path
    ports: dict[str, int]
    host_postgres_pid: int
    host_redis_pid: int


KUBE_WORKLOADS = {
    "backend": {"name": "backend", "service": "backend-service", "replicas": 4},
    "frontend": {"name": "frontend", "service": "frontend-service", "replicas": 5},
    "postgres": {"name": "postgres", "service": "postgres-service"},
    "redis": {"name": "redis", "service": "redis-service"},
}


def write_profile(
    path: Path,
    project: str,
    ports: dict[str, int],
    files: list[str],
    kubernetes: dict[str, object] | None = None,
    **extra: object,
) -> Path:
    """A test profile of the seed stack on the given ports (with a cluster side if given)."""
    data: dict[str, Any] = {
        "name": project,
        "default_mode": "compose-only",
        "compose": {"project": project, "files": files, "network": f"{project}-network"},
        "services": {
            "backend": {"ports": [ports["backend"]], "host": {"executables": ["reconciliation-backend", "backend"]}},
            "frontend": {"ports": [ports["frontend"]], "host": {"executables": ["node"]}},
            "postgres": {
                "ports": [ports["postgres"]],
                "stateful": True,
                "host": {"executables": ["postgres"], "stop_signal": "SIGINT"},
            },
            "redis": {"ports": [ports["redis"]], "stateful": True, "host": {"executables": ["redis-server"]}},
        },
        **extra,
    }
    if kubernetes is not None:
        data["kubernetes"] = kubernetes
        for name, workload in KUBE_WORKLOADS.items():
            data["services"][name]["kubernetes"] = workload
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def seed_scenario(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedScenario]:
    """Compose: backend restart-looping on the spawn_local panic (exit 101), frontend running,
    postgres declaring a port a host "postgres" already holds (so it fails to bind), redis on
    127.0.0.1 shadowed by a real redis-server on ::1. Host ports are high and random."""
    tmp = tmp_path_factory.mktemp("seed")
    names = ("backend", "frontend", "postgres", "redis")
    ports = dict(zip(names, free_ports(4), strict=True))
    name = unique_name("swtest-seed")
    services = {
        "backend": panic_backend(),
        "frontend": tcp_service(1000, f"0.0.0.0:{ports['frontend']}:1000"),
        "postgres": tcp_service(5432, f"0.0.0.0:{ports['postgres']}:5432"),
        "redis": tcp_service(6379, f"127.0.0.1:{ports['redis']}:6379"),
    }
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(host_listener("postgres", "0.0.0.0", ports["postgres"]))
        project = stack.enter_context(compose_project(tmp, name, services))
        redis = stack.enter_context(redis_server(ports["redis"], "::1"))
        wait_restarts(project, "backend", at_least=2)
        profile = write_profile(tmp / "profile.yaml", name, ports, [str(project.file)])
        yield SeedScenario(project, profile, ports, pg.pid, redis.pid)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real, temporary Prefect server for the session (flows, task runs, artifacts, pauses)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """etcd + kube-apiserver + kube-controller-manager v1.20.2 on loopback, RBAC and token
    auth on, audit log enabled; fails under CI=true when it cannot be built or started."""
    from tests.support.kube import start_control_plane

    cp = start_control_plane(tmp_path_factory.mktemp("controlplane"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubelet(control_plane: Any) -> Iterator[Any]:
    """The fake kubelet: binds pods to its node, plays their status, serves their logs."""
    from tests.support.kube import FakeKubelet

    fk = FakeKubelet(control_plane.admin_kubeconfig).start()
    try:
        yield fk
    finally:
        fk.stop()


@dataclass(frozen=True)
class SeedCluster:
    """The seed's cluster half: 4 backend pods in CrashLoopBackOff, 5 frontend pods running,
    ClusterIP services for backend, frontend, postgres and redis."""

    namespace: str
    kubeconfig: Path
    context: str


@pytest.fixture(scope="session")
def seed_cluster(control_plane: Any, kubelet: Any) -> Iterator[SeedCluster]:
    from kubernetes import client as k8s

    from tests.support.compose import PANIC_LINE
    from tests.support.kube import (
        CrashLoopBackOff,
        cluster_ip_service,
        delete_namespace,
        deployment,
        new_namespace,
        pods_settled,
    )

    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-seed")
    logs = f"Starting reconciliation backend\n{PANIC_LINE}\nnote: run with `RUST_BACKTRACE=1`\n"
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=101, restart_count=7, logs=logs), selector="app=backend", namespace=ns
    )
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("backend", 4))
    apps.create_namespaced_deployment(ns, deployment("frontend", 5))
    for name, app, port in (
        ("backend-service", "backend", 2000),
        ("frontend-service", "frontend", 1000),
        ("postgres-service", "postgres", 5432),
        ("redis-service", "redis", 6379),
    ):
        core.create_namespaced_service(ns, cluster_ip_service(name, app, port))
    pods_settled(api, ns, {"backend": (4, "CrashLoopBackOff"), "frontend": (5, "Running")})
    try:
        yield SeedCluster(namespace=ns, kubeconfig=control_plane.admin_kubeconfig, context="stackwarden-test")
    finally:
        delete_namespace(api, ns)


@dataclass(frozen=True)
class FullSeed:
    """The whole seed scenario: compose project, host processes and the cluster."""

    scenario: SeedScenario
    cluster: SeedCluster
    profile_path: Path


@pytest.fixture(scope="session")
def full_seed(
    seed_scenario: SeedScenario, seed_cluster: SeedCluster, tmp_path_factory: pytest.TempPathFactory
) -> FullSeed:
    path = write_profile(
        tmp_path_factory.mktemp("full-seed") / "profile.yaml",
        seed_scenario.project.name,
        seed_scenario.ports,
        [str(seed_scenario.project.file)],
        kubernetes={
            "namespace": seed_cluster.namespace,
            "kubeconfig": str(seed_cluster.kubeconfig),
            "allowed_contexts": ["minikube", "kind-*", seed_cluster.context],
        },
    )
    return FullSeed(seed_scenario, seed_cluster, path)


@pytest.fixture(scope="session", autouse=True)
def _own_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Switch locks of the tests live in the session's temp dir, not the machine's /run."""
    import os

    previous = os.environ.get("STACKWARDEN_LOCK_DIR")
    os.environ["STACKWARDEN_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    if previous is None:
        os.environ.pop("STACKWARDEN_LOCK_DIR", None)
    else:
        os.environ["STACKWARDEN_LOCK_DIR"] = previous
