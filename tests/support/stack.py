"""A fresh, whole seed stack per test for the switch tests: its own compose project, host
processes, namespace and profile, plus bystanders that must never be touched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from tests.support.compose import (
    PANIC_LINE,
    Project,
    compose_project,
    panic_backend,
    tcp_service,
    unique_name,
    wait_restarts,
)
from tests.support.kube import (
    CrashLoopBackOff,
    cluster_ip_service,
    delete_namespace,
    deployment,
    new_namespace,
    pods_settled,
)
from tests.support.realparts import free_ports, host_listener, redis_server

SERVICES = ("backend", "frontend", "postgres", "redis")
REPLICAS = {"backend": 4, "frontend": 5, "postgres": 1, "redis": 1}


@dataclass(frozen=True)
class Stack:
    """Everything a switch test acts on or must leave alone."""

    project: Project
    namespace: str
    profile_path: Path
    ports: dict[str, int]
    host_pids: dict[str, int]
    bystander_project: Project
    bystander_namespace: str
    bystander_pid: int
    api: Any


def write_switch_profile(
    path: Path,
    *,
    stack_name: str,
    ns: str,
    ports: dict[str, int],
    compose_file: Path,
    kubeconfig: Path,
    allowed: list[str],
    frontend_health: dict[str, Any] | None = None,
) -> Path:
    """The seed profile with a cluster side and hybrid assignments (stateful in compose)."""
    services: dict[str, Any] = {}
    for name in SERVICES:
        services[name] = {
            "ports": [ports[name]],
            "kubernetes": {"name": name, "service": f"{name}-service", "replicas": REPLICAS[name]},
            "runtime": "compose" if name in {"postgres", "redis"} else "kubernetes",
        }
    services["backend"]["host"] = {"executables": ["reconciliation-backend"]}
    if frontend_health:
        services["frontend"]["health"] = frontend_health
    services["postgres"].update(
        stateful=True, host={"executables": ["postgres"], "stop_signal": "SIGINT", "grace_period_seconds": 20}
    )
    services["redis"].update(
        stateful=True,
        host={"executables": ["redis-server"], "grace_period_seconds": 20},
        health={"tcp": ports["redis"]},
    )
    data = {
        "name": stack_name,
        "default_mode": "compose-only",
        "compose": {"project": stack_name, "files": [str(compose_file)]},
        "kubernetes": {"namespace": ns, "kubeconfig": str(kubeconfig), "allowed_contexts": allowed},
        "services": services,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def fresh_stack(
    tmp: Path,
    control_plane: Any,
    kubelet: Any,
    *,
    allowed: list[str] | None = None,
    slow_postgres_stop: float = 0.0,
    postgres_volume: bool = False,
    frontend_health_path: str | None = None,
) -> Iterator[Stack]:
    """The full seed scenario, all of it this test's own, torn down afterwards."""
    api = control_plane.admin_api_client()
    *stack_ports, bystander_port = free_ports(5)  # one draw: two draws can return the same port
    ports = dict(zip(SERVICES, stack_ports, strict=True))
    name = unique_name("swtest-sw")
    postgres = tcp_service(5432, f"0.0.0.0:{ports['postgres']}:5432")
    volumes = None
    if postgres_volume:
        postgres["command"] = ["sh", "-c", "date >> /data/boots; exec httpd -f -p 5432"]
        postgres["volumes"] = ["pgdata:/data"]
        volumes = {"pgdata": {}}
    services = {
        "backend": panic_backend(),
        "frontend": tcp_service(1000, f"0.0.0.0:{ports['frontend']}:1000"),
        "postgres": postgres,
        "redis": tcp_service(6379, f"127.0.0.1:{ports['redis']}:6379"),
    }
    ns = new_namespace(api, "swtest-sw")
    other_ns = new_namespace(api, "swtest-by")
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    logs = f"Starting reconciliation backend\n{PANIC_LINE}\n"
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=101, restart_count=4, logs=logs), selector="app=backend", namespace=ns
    )
    for service in SERVICES:
        apps.create_namespaced_deployment(ns, deployment(service, REPLICAS[service]))
        core.create_namespaced_service(ns, cluster_ip_service(f"{service}-service", service, 80))
    apps.create_namespaced_deployment(other_ns, deployment("backend", 2))
    try:
        with contextlib.ExitStack() as stack:
            pg = stack.enter_context(host_listener("postgres", "0.0.0.0", ports["postgres"], slow_postgres_stop))
            project = stack.enter_context(compose_project(tmp, name, services, volumes))
            bystander = stack.enter_context(
                compose_project(tmp, unique_name("swtest-by"), {"backend": tcp_service(1000, None)})
            )
            redis = stack.enter_context(redis_server(ports["redis"], "::1"))
            stray = stack.enter_context(host_listener("postgres", "127.0.0.1", bystander_port))
            wait_restarts(project, "backend", at_least=1)
            pods_settled(
                api,
                ns,
                {
                    "backend": (4, "CrashLoopBackOff"),
                    "frontend": (5, "Running"),
                    "postgres": (1, "Running"),
                    "redis": (1, "Running"),
                },
            )
            pods_settled(api, other_ns, {"backend": (2, "Running")})
            profile = write_switch_profile(
                tmp / f"{name}.profile.yaml",
                stack_name=name,
                ns=ns,
                ports=ports,
                compose_file=project.file,
                kubeconfig=control_plane.admin_kubeconfig,
                allowed=allowed if allowed is not None else ["stackwarden-test"],
                frontend_health=(
                    {"http": f"http://127.0.0.1:{ports['frontend']}{frontend_health_path}"}
                    if frontend_health_path
                    else None
                ),
            )
            yield Stack(
                project=project,
                namespace=ns,
                profile_path=profile,
                ports=ports,
                host_pids={"postgres": pg.pid, "redis": redis.pid},
                bystander_project=bystander,
                bystander_namespace=other_ns,
                bystander_pid=stray.pid,
                api=api,
            )
    finally:
        delete_namespace(api, ns)
        delete_namespace(api, other_ns)
