"""Situations found by exploratory audits from outside the test suite, rebuilt with real parts:
what the audit must neither miss nor read as an all-clear, and advice that fits this host."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.adapters.host import check_tcp
from stackwarden.model import CrashCategory, Finding, Severity
from stackwarden.pipeline import run_audit
from stackwarden.profiles import load_profile
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.kube import Running, delete_namespace, deployment, new_namespace
from tests.support.realparts import IMAGE, free_ports, wait_for


def _audit(path: Path) -> dict[str, Finding]:
    return {f.id: f for f in run_audit(load_profile(path)).result.findings}


def _compose_profile(tmp: Path, project: Any, services: dict[str, Any]) -> Path:
    path = tmp / "profile.yaml"
    doc = {
        "name": project.name,
        "default_mode": "compose-only",
        "compose": {"project": project.name, "files": [str(project.file)]},
        "services": services,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def closed_socket(tmp_path: Path) -> Iterator[str]:
    """A unix socket path nobody listens on: an engine that went away."""
    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    yield f"unix://{path}"


@pytest.mark.docker
def test_engine_gone_is_not_an_all_clear_nor_a_port_conflict(
    docker_engine: None, tmp_path: Path, closed_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a healthy stack whose port is published on 0.0.0.0 and :: (two docker-proxy processes);
    # then the engine is unreachable (DOCKER_HOST on a closed socket; the shared one keeps running)
    (port,) = free_ports(1)
    with compose_project(tmp_path, unique_name("swtest-xgone"), {"web": tcp_service(port, f"{port}:{port}")}) as p:
        wait_for(lambda: p.inspect("web")["State"]["Running"], 30, "web to run")
        path = _compose_profile(tmp_path, p, {"web": {"ports": [port]}})
        with monkeypatch.context() as env:  # undone before the project is taken down
            env.setenv("DOCKER_HOST", closed_socket)
            findings = _audit(path)
    assert f"port-conflict:{port}" not in findings, findings[f"port-conflict:{port}"].summary
    blind = findings["runtime-unreachable:compose"]
    assert blind.severity is Severity.HIGH and blind.services == ("web",)
    owner = findings[f"port-foreign-owner:{port}"]
    assert owner.severity is Severity.MEDIUM
    assert "docker-proxy to" in owner.summary
    assert not any(c.startswith(("kill", "docker stop")) for c in owner.commands)


@pytest.mark.docker
def test_containers_that_died_and_stay_down_are_diagnosed_from_their_logs(docker_engine: None, tmp_path: Path) -> None:
    broker = "consumer: Cannot connect to amqp://guest:**@rabbitmq:5672//: [Errno -2] Name or service not known."
    services = {
        # a one-shot job over its memory limit: the kernel kills it (OOMKilled, exit 137)
        "etl": {
            "image": IMAGE,
            "command": ["sh", "-c", "echo loading 4000000 rows; tail /dev/zero"],
            "mem_limit": "16m",
            "memswap_limit": "16m",
        },
        # a port-less worker whose broker host does not resolve: exit 1, no restart policy
        "worker": {"image": IMAGE, "command": ["sh", "-c", f"echo celery worker starting; echo '{broker}'; exit 1"]},
    }
    with compose_project(tmp_path, unique_name("swtest-xdied"), services) as p:
        wait_for(
            lambda: all(p.inspect(s)["State"]["Status"] == "exited" for s in ("etl", "worker")), 60, "both to exit"
        )
        assert p.inspect("etl")["State"]["OOMKilled"]
        findings = _audit(_compose_profile(tmp_path, p, {"etl": {}, "worker": {}}))
    etl = findings["service-unavailable:etl:compose"]
    assert etl.cause is not None and etl.cause.category is CrashCategory.RESOURCES
    assert "mem_limit" in etl.recommendation and "loading 4000000 rows" in etl.evidence
    worker = findings["service-unavailable:worker:compose"]
    assert worker.cause is not None and worker.cause.signature == "dependency-name-unresolved"
    assert any("rabbitmq" in line for line in worker.evidence)
    assert worker.severity is Severity.HIGH


@pytest.mark.kube
def test_a_viewer_without_rights_does_not_read_the_namespace_as_empty(
    control_plane: Any, kubelet: Any, tmp_path: Path
) -> None:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-xblind")
    try:
        k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("api", 1))
        path = tmp_path / "profile.yaml"
        doc = {
            "name": ns,
            "default_mode": "k8s-only",
            "compose": {"project": ns, "files": [str(tmp_path / "unused.compose.yaml")]},
            "kubernetes": {
                "namespace": ns,
                "kubeconfig": str(control_plane.viewer_kubeconfig),  # no Role bound in ns
                "allowed_contexts": ["stackwarden-test"],
            },
            "services": {"api": {"ports": free_ports(1), "kubernetes": {"name": "api"}}},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        findings = _audit(path)
    finally:
        delete_namespace(api, ns)
    forbidden = findings["kube-forbidden"]
    assert forbidden.severity is Severity.HIGH and forbidden.services == ("api",)
    api_finding = findings["service-unavailable:api:kubernetes"]
    assert api_finding.cause is not None and api_finding.cause.signature == "workload-not-readable"
    assert "does not exist" not in api_finding.summary
    assert "auth can-i list deployments" in " ".join(api_finding.commands)


GO_PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a3f2e]\n\n"
    "goroutine 1 [running]:\nmain.main()\n\t/src/worker/main.go:27 +0x2e\n"
)


@pytest.mark.kube
def test_a_pod_caught_running_between_two_crashes_is_a_crash_loop(
    control_plane: Any, kubelet: Any, tmp_path: Path
) -> None:
    # a crash loop without a readiness probe: right after its 6th restart the container is
    # Running and ready, lastState.terminated says exit 1 (the fake kubelet's Running with
    # restarts); the previous container's logs hold the panic
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-xagain")
    kubelet.set_behaviour(Running(restart_count=6, previous_logs=GO_PANIC), selector="app=worker", namespace=ns)
    try:
        k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("worker", 1))
        core = k8s.CoreV1Api(api)
        wait_for(
            lambda: any(p.status.phase == "Running" for p in core.list_namespaced_pod(ns).items), 30, "worker to run"
        )
        path = tmp_path / "profile.yaml"
        doc = {
            "name": ns,
            "default_mode": "k8s-only",
            "compose": {"project": ns, "files": [str(tmp_path / "unused.compose.yaml")]},
            "kubernetes": {
                "namespace": ns,
                "kubeconfig": str(control_plane.admin_kubeconfig),
                "allowed_contexts": ["stackwarden-test"],
            },
            "services": {"worker": {"kubernetes": {"name": "worker"}}},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        findings = _audit(path)
    finally:
        delete_namespace(api, ns)
    loop = findings["crash-loop:worker"]
    assert loop.severity is Severity.CRITICAL
    assert loop.cause is not None and loop.cause.category is CrashCategory.CODE_ISSUE
    assert loop.cause.exit_code == 1
    assert any("nil pointer dereference" in line for line in loop.evidence)


@pytest.mark.docker
def test_a_publish_with_nothing_behind_it_is_found_and_a_live_one_is_not(docker_engine: None, tmp_path: Path) -> None:
    # web's httpd binds the container's 127.0.0.1: docker-proxy accepts on the host and closes
    # at once (clients see an empty reply; a bare TCP connect succeeds). ok binds 0.0.0.0.
    dead, live = free_ports(2)
    services = {
        "web": {**tcp_service(dead, f"{dead}:{dead}"), "command": ["httpd", "-f", "-p", f"127.0.0.1:{dead}"]},
        "ok": tcp_service(live, f"{live}:{live}"),
    }
    with compose_project(tmp_path, unique_name("swtest-xnoreply"), services) as p:
        wait_for(lambda: all(p.inspect(s)["State"]["Running"] for s in ("web", "ok")), 30, "both to run")
        findings = _audit(_compose_profile(tmp_path, p, {"web": {"ports": [dead]}, "ok": {"ports": [live]}}))
    finding = findings[f"port-no-reply:{dead}"]
    assert finding.severity is Severity.HIGH and finding.services == ("web",)
    assert f"0.0.0.0:{dead}" in finding.recommendation
    assert any("closed at once" in line for line in finding.evidence)
    assert f"port-no-reply:{live}" not in findings
    assert not [f for f in findings.values() if "ok" in f.services and f.severity is not Severity.OK]


@pytest.mark.docker
def test_the_switch_health_check_does_not_pass_a_publish_with_nothing_behind_it(
    docker_engine: None, tmp_path: Path
) -> None:
    # verify's TCP check must not be fooled by docker-proxy accepting for a dead container
    dead, live = free_ports(2)
    services = {
        "web": {**tcp_service(dead, f"{dead}:{dead}"), "command": ["httpd", "-f", "-p", f"127.0.0.1:{dead}"]},
        "ok": tcp_service(live, f"{live}:{live}"),
    }
    with compose_project(tmp_path, unique_name("swtest-xhealth"), services) as p:
        wait_for(lambda: all(p.inspect(s)["State"]["Running"] for s in ("web", "ok")), 30, "both to run")
        wait_for(lambda: check_tcp(live, 2.0) is None, 30, "the live service to answer its health check")
        failure = check_tcp(dead, 2.0)
    assert failure is not None and "closed at once" in failure


@pytest.mark.docker
def test_an_unhealthy_container_shows_what_its_health_check_said(docker_engine: None, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    check = ["CMD", "wget", "-q", "-O-", f"http://127.0.0.1:{port}/healthz"]  # httpd has no /healthz: 404
    api = {**tcp_service(port, f"{port}:{port}"), "healthcheck": {"test": check, "interval": "1s", "retries": 1}}
    with compose_project(tmp_path, unique_name("swtest-xsick"), {"api": api}) as p:
        wait_for(lambda: p.inspect("api")["State"].get("Health", {}).get("Status") == "unhealthy", 60, "unhealthy")
        findings = _audit(_compose_profile(tmp_path, p, {"api": {"ports": [port]}}))
    finding = findings["service-unavailable:api:compose"]
    assert finding.cause is not None and finding.cause.signature == "unhealthy"
    assert any(line.startswith("last health check: exit 1") and "404" in line for line in finding.evidence)


@pytest.mark.docker
def test_a_dependency_created_but_never_started_has_no_exit_code(docker_engine: None, tmp_path: Path) -> None:
    # Node crash-loops on ECONNREFUSED to db's port; db was created (compose create) and never ran
    from tests.support.compose import wait_restarts

    web_port, db_port = free_ports(2)
    refused = f"Error: connect ECONNREFUSED 127.0.0.1:{db_port}"
    node = f"echo 'node:internal/process/promises:288'; echo '{refused}'; echo 'Node.js v18.19.0'; exit 1"
    services = {"web": {"image": IMAGE, "command": ["sh", "-c", node], "restart": "always", "network_mode": "host"}}
    with compose_project(tmp_path, unique_name("swtest-xcreated"), services) as p:
        doc = yaml.safe_load(p.file.read_text())
        doc["services"]["db"] = tcp_service(db_port, f"{db_port}:{db_port}")
        p.file.write_text(yaml.safe_dump(doc, sort_keys=False))
        p.compose("create", "db")
        wait_restarts(p, "web", at_least=1)
        path = _compose_profile(tmp_path, p, {"web": {"ports": [web_port]}, "db": {"ports": [db_port]}})
        findings = _audit(path)
    loop = findings["crash-loop:web"]
    assert loop.summary.startswith("web crashes because db is stopped (created)") and "exit code 0" not in loop.summary
    assert any(c.endswith("start db") for c in loop.commands)
    db = findings["service-unavailable:db:compose"]
    assert "exit code" not in db.summary and db.cause is not None and db.cause.exit_code is None
