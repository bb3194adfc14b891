"""Fixture snapshots for unit tests: small builders with the seed's shape, no engine needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stackwarden.model import (
    Container,
    HostContext,
    KubeObservation,
    KubeWorkloadState,
    Listener,
    ProcessInfo,
    Profile,
    PublishedPort,
    Runtime,
    RuntimeStatus,
    Snapshot,
)
from stackwarden.observe import assemble_snapshot
from stackwarden.profiles import parse_profile

PROJECT = "seedstack"
PORTS = {"backend": 32000, "frontend": 31000, "postgres": 35432, "redis": 36379}
PANIC = (
    "thread 'actix-rt|system:0|arbiter:0' panicked at 'spawn_local called from outside of a "
    "task::LocalSet', src/services/secret_manager.rs:42:9"
)


def profile_data(**overrides: Any) -> dict[str, Any]:
    """The seed stack on high ports, as a plain dict (tests mutate it to make bad profiles)."""
    data: dict[str, Any] = {
        "name": "seedstack",
        "default_mode": "compose-only",
        "compose": {"project": PROJECT, "files": ["/srv/seed/compose.yaml"]},
        "kubernetes": {"namespace": "seedstack", "allowed_contexts": ["minikube", "kind-*"]},
        "services": {
            "backend": {
                "ports": [PORTS["backend"]],
                "kubernetes": {"name": "backend", "replicas": 4},
                "host": {"executables": ["reconciliation-backend"]},
                "runtime": "kubernetes",
            },
            "frontend": {
                "ports": [PORTS["frontend"]],
                "kubernetes": {"name": "frontend", "replicas": 5},
                "runtime": "kubernetes",
            },
            "postgres": {
                "ports": [PORTS["postgres"]],
                "stateful": True,
                "host": {"executables": ["postgres"], "stop_signal": "SIGINT"},
                "runtime": "compose",
            },
            "redis": {
                "ports": [PORTS["redis"]],
                "stateful": True,
                "host": {"executables": ["redis-server"]},
                "runtime": "compose",
            },
        },
    }
    data.update(overrides)
    return data


def profile(**overrides: Any) -> Profile:
    """A validated profile of the seed stack."""
    return parse_profile(profile_data(**overrides), "<test>")


_counter = iter(range(1, 10_000))


def container(
    service: str,
    state: str = "running",
    *,
    project: str = PROJECT,
    publish: tuple[tuple[str, int], ...] = (),
    declared: tuple[tuple[str, int], ...] | None = None,
    exit_code: int | None = None,
    restart_count: int | None = None,
    error: str | None = None,
    logs: tuple[str, ...] = (),
    networks: tuple[str, ...] = ("seedstack_default",),
    oom_killed: bool = False,
) -> Container:
    """A compose container; ``publish`` is ((host_ip, host_port), ...) actually bound."""
    n = next(_counter)
    published = tuple(PublishedPort(host_ip=ip, host_port=p, container_port=p) for ip, p in publish)
    declared_ports = (
        tuple(PublishedPort(host_ip=ip, host_port=p, container_port=p) for ip, p in declared)
        if declared is not None
        else published
    )
    return Container(
        id=f"{n:012x}" + "a" * 52,
        name=f"{project}-{service}-1",
        image="stackwarden-test/busybox:1",
        state=state,
        compose_project=project,
        compose_service=service,
        exit_code=exit_code,
        restart_count=restart_count,
        error=error,
        published=published,
        declared=declared_ports,
        networks=networks,
        ip_addresses=(f"172.30.0.{n % 250 + 2}",),
        log_tail=logs,
        inspected=state != "running",
        oom_killed=oom_killed,
    )


def process(
    pid: int,
    name: str,
    cmdline: tuple[str, ...] = (),
    *,
    exe: str | None = None,
    unit: str | None = None,
    uid: int = 0,
    user: str = "root",
) -> ProcessInfo:
    """A host process, by default root's (the user the builders' host context observes as)."""
    return ProcessInfo(
        pid=pid,
        create_time=1_700_000_000.0 + pid,
        name=name,
        exe=exe or f"/usr/bin/{name}",
        cmdline=cmdline or (name,),
        user=user,
        uid=uid,
        gid=uid,
        uids=(uid, uid, uid),
        systemd_unit=unit,
    )


HOST_CONTEXT = HostContext(
    uid=0, user="root", executables={"redis-server": ("/usr/bin/redis-check-rdb",), "postgres": ()}
)
"""A Debian host observed by root: redis-server is a symlink to redis-check-rdb there."""


def proxy_for(c: Container, host_ip: str, port: int, pid: int) -> tuple[Listener, ProcessInfo]:
    """The docker-proxy listener and process that publish ``c`` on the host."""
    proc = process(
        pid,
        "docker-proxy",
        (
            "/usr/sbin/docker-proxy",
            "-proto",
            "tcp",
            "-host-ip",
            host_ip,
            "-host-port",
            str(port),
            "-container-ip",
            c.ip_addresses[0],
            "-container-port",
            str(port),
        ),
        exe="/usr/sbin/docker-proxy",
    )
    return Listener(address=host_ip, port=port, pid=pid), proc


def deployment(
    name: str, replicas: int, *, ready: int | None = None, annotations: dict[str, str] | None = None
) -> KubeWorkloadState:
    """A Deployment of the seed's namespace selecting ``app=NAME``; all replicas ready unless
    ``ready`` says how many are."""
    return KubeWorkloadState(
        kind="Deployment",
        name=name,
        namespace="seedstack",
        uid=f"uid-{name}",
        resource_version="10",
        generation=3,
        replicas=replicas,
        ready_replicas=replicas if ready is None else ready,
        selector={"app": name},
        annotations=annotations or {},
    )


def snapshot(
    containers: tuple[Container, ...] = (),
    listeners: tuple[Listener, ...] = (),
    processes: tuple[ProcessInfo, ...] = (),
    *,
    docker_reachable: bool = True,
    kubernetes: KubeObservation | None = None,
    host_context: HostContext | None = HOST_CONTEXT,
) -> Snapshot:
    """A snapshot assembled the way the audit flow assembles it (docker-proxy attributed)."""
    runtimes = [
        RuntimeStatus(
            runtime=Runtime.COMPOSE,
            reachable=docker_reachable,
            error=None if docker_reachable else "connection refused",
        ),
        RuntimeStatus(runtime=Runtime.HOST, reachable=True),
    ]
    if kubernetes is not None:
        runtimes.append(RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True))
    return assemble_snapshot(
        taken_at=datetime(2025, 11, 25, 12, 0, tzinfo=UTC),
        hostname="workstation",
        profile="seedstack",
        runtimes=runtimes,
        containers=containers if docker_reachable else (),
        listeners=listeners,
        processes=processes,
        kubernetes=kubernetes,
        host_context=host_context,
    )


def seed_snapshot() -> Snapshot:
    """The seed's Docker-and-host half: crash-looping backend, running frontend, postgres
    container that could not bind (a host postgres holds the port), redis container on IPv4
    shadowed by a host redis-server on ::1."""
    backend = container(
        "backend",
        "restarting",
        exit_code=101,
        restart_count=12,
        logs=("Starting reconciliation backend", PANIC, "note: run with `RUST_BACKTRACE=1`"),
    )
    frontend = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]),))
    pg = container(
        "postgres",
        "created",
        declared=(("0.0.0.0", PORTS["postgres"]),),
        exit_code=128,
        error=f"Error starting userland proxy: listen tcp4 0.0.0.0:{PORTS['postgres']}: bind: address already in use",
    )
    redis = container("redis", publish=(("127.0.0.1", PORTS["redis"]),))
    fe_listener, fe_proxy = proxy_for(frontend, "0.0.0.0", PORTS["frontend"], 900)
    redis_listener, redis_proxy = proxy_for(redis, "127.0.0.1", PORTS["redis"], 901)
    host_pg = process(
        2792,
        "postgres",
        ("/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/pg"),
        exe="/usr/lib/postgresql/15/bin/postgres",
    )
    host_redis = process(2785, "redis-server", ("redis-server ::1:36379",), exe="/usr/bin/redis-check-rdb")
    return snapshot(
        containers=(backend, frontend, pg, redis),
        listeners=(
            fe_listener,
            redis_listener,
            Listener(address="0.0.0.0", port=PORTS["postgres"], pid=2792),
            Listener(address="::1", port=PORTS["redis"], pid=2785),
        ),
        processes=(fe_proxy, redis_proxy, host_pg, host_redis),
    )


def stop_and_wait(pid: int, signal: str = "TERM", seconds: int = 30) -> str:
    """The one line a report prints to stop a host process: the signal, then a bounded wait
    for the PID to exit (so a start pasted after it finds the port free)."""
    loop = f'while ps -o stat= -p {pid} | grep -qv "^Z"; do sleep 0.2; done'
    return f"kill -{signal} {pid} && timeout {seconds} sh -c '{loop}'"
