"""The seed's Docker-and-host half on a real engine, real Compose v2 and real processes."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from stackwarden.model import CrashCategory, Finding, Runtime, Severity, Snapshot
from tests.conftest import SeedScenario, write_profile
from tests.integration.audit_helpers import audit
from tests.support.builders import stop_and_wait
from tests.support.compose import PANIC_LINE, compose_project, unique_name, wait_restarts
from tests.support.realparts import IMAGE, free_ports, host_listener

pytestmark = pytest.mark.docker


def test_seed_port_conflicts_name_both_owners(seed_scenario: SeedScenario) -> None:
    _, _, findings = audit(seed_scenario.profile_path)
    ports, name = seed_scenario.ports, seed_scenario.project.name

    pg = findings[f"port-conflict:{ports['postgres']}"]
    assert pg.severity is Severity.CRITICAL
    assert f"container {name}-postgres-1 declares port {ports['postgres']} but failed to bind it" in pg.summary
    assert f"process postgres (PID {seed_scenario.host_postgres_pid})" in pg.summary
    assert any("address already in use" in line for line in pg.evidence)

    redis = findings[f"port-conflict:{ports['redis']}"]
    assert redis.severity is Severity.CRITICAL
    assert f"container {name}-redis-1" in redis.summary
    assert f"process redis-server (PID {seed_scenario.host_redis_pid})" in redis.summary
    assert any(line.startswith("IPv4/IPv6 shadowing") for line in redis.evidence)
    assert stop_and_wait(seed_scenario.host_redis_pid) in redis.commands


def test_seed_dual_deployment(seed_scenario: SeedScenario) -> None:
    _, _, findings = audit(seed_scenario.profile_path)
    dual = findings["dual-deployment"]
    assert dual.severity is Severity.HIGH
    assert set(dual.services) == {"postgres", "redis"}
    assert set(dual.runtimes) == {Runtime.COMPOSE, Runtime.HOST}
    assert stop_and_wait(seed_scenario.host_postgres_pid, "INT") in dual.commands


def _audit_while_restarting(scenario: SeedScenario) -> tuple[Snapshot, dict[str, Finding]]:
    """Observe until the backend is caught between two crashes (state "restarting"), when
    Docker reports its last exit code; a moment of "running" in the loop shows none."""
    backend = f"{scenario.project.name}-backend-1"
    for _ in range(40):
        _, snapshot, findings = audit(scenario.profile_path)
        if any(c.name == backend and c.state == "restarting" for c in snapshot.containers):
            return snapshot, findings
        time.sleep(0.25)
    raise AssertionError(f"{backend} was never observed restarting")


def test_seed_backend_crash_loop_is_a_code_issue(seed_scenario: SeedScenario) -> None:
    snapshot, findings = _audit_while_restarting(seed_scenario)
    crash = findings["crash-loop:backend"]
    assert crash.severity is Severity.CRITICAL
    assert crash.cause is not None
    assert crash.cause.category is CrashCategory.CODE_ISSUE
    assert crash.cause.exit_code == 101
    assert any(PANIC_LINE in line for line in crash.evidence)
    backend = next(c for c in snapshot.containers if c.name == f"{seed_scenario.project.name}-backend-1")
    assert backend.restart_count is not None and backend.restart_count >= 2
    assert findings["network-isolation"].severity is Severity.OK
    assert not [f for f in findings if f.startswith("crash-loop:") and f != "crash-loop:backend"]


def test_port_in_use_crash_is_a_deployment_conflict_naming_the_owner(docker_engine: None, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    name = unique_name("swtest-addr")
    services = {
        # host networking: the container's own bind meets the host's socket, a real EADDRINUSE
        "backend": {
            "image": IMAGE,
            "command": ["httpd", "-f", "-p", f"0.0.0.0:{port}"],
            "network_mode": "host",
            "restart": "always",
        },
    }
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(host_listener("backend", "0.0.0.0", port))
        project = stack.enter_context(compose_project(tmp_path, name, services))
        wait_restarts(project, "backend", at_least=1)
        ports = {"backend": port, **dict(zip(("frontend", "postgres", "redis"), free_ports(3), strict=True))}
        profile_path = write_profile(tmp_path / "p.yaml", name, ports, [str(project.file)])
        _, snapshot, findings = audit(profile_path)
    assert "crash-loop:backend" in findings, (snapshot.containers, list(findings))
    crash = findings["crash-loop:backend"]
    assert crash.cause is not None
    assert crash.cause.category is CrashCategory.DEPLOYMENT_CONFLICT
    assert crash.cause.port == port
    assert f"process backend (PID {holder.pid})" in crash.summary
    assert any("Address already in use" in line for line in crash.evidence)
