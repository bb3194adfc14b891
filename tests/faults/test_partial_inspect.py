"""One container whose inspect fails, on a real engine behind a fault-injecting proxy: the audit
still sees the engine and every other container (no "unreachable" engine, no diagnosis moved to
another runtime), the crash loop of that container is still found from its list entry and the engine's die events
(whether it is caught restarting or up again for a moment), its logs are still read, it says it
could not be inspected, and a switch's dry run refuses, naming it: a switch cannot tell how
to stop a container whose stop signal and restart policy it did not read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackwarden.model import Mode
from stackwarden.model.plan import SwitchStatus
from stackwarden.pipeline import run_audit
from stackwarden.profiles import load_profile
from stackwarden.run.switch import dry_run
from tests.support.compose import compose_project, tcp_service, unique_name, wait_restarts
from tests.support.http_proxy import CountingProxy
from tests.support.realparts import IMAGE, free_ports

pytestmark = [pytest.mark.docker]


def test_one_container_not_inspected_is_that_container_partly_seen(
    tmp_path: Path, docker_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swpi")
    services = {
        "web": tcp_service(80, f"127.0.0.1:{port}:80"),
        "worker": {
            "image": IMAGE,
            "command": ["sh", "-c", "echo 'worker: fatal: no queue'; exit 3"],
            "restart": "always",
        },
    }
    with compose_project(tmp_path, name, services) as project:
        wait_restarts(project, "worker", at_least=2)
        worker_id = project.inspect("worker")["Id"]
        profile_path = tmp_path / f"{name}.yaml"
        profile_path.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {"web": {"ports": [port]}, "worker": {}},
                    "timeouts": {"read_seconds": 30},
                }
            )
        )
        profile = load_profile(profile_path)

        def inspect_of_the_worker(method: str, path: str, body: bytes) -> bool:
            return method == "GET" and f"/containers/{worker_id}/json" in path

        proxy = CountingProxy(
            tmp_path / "docker.sock", fail_if=inspect_of_the_worker, fail_status="500 Internal Server Error"
        )
        proxy.start()
        try:
            monkeypatch.setenv("DOCKER_HOST", proxy.docker_host)
            outcome = run_audit(profile)
            refused = dry_run(profile, Mode.COMPOSE_ONLY)
        finally:
            monkeypatch.delenv("DOCKER_HOST")
            proxy.stop()
        assert any(f"/containers/{worker_id}/json" in r for r in proxy.requests), "the inspect was asked for"
        snapshot, findings = outcome.snapshot, {f.id: f for f in outcome.result.findings}
        docker = next(s for s in snapshot.runtimes if str(s.runtime) == "compose")
        assert docker.reachable, docker
        assert not any(i.startswith("runtime-unreachable") for i in findings), sorted(findings)
        worker = next(c for c in snapshot.containers if c.id == worker_id)
        assert any(g.startswith("inspect of container") for g in worker.unobserved), worker.unobserved
        web = next(c for c in snapshot.containers if c.compose_service == "web")
        assert web.unobserved == ()
        crash = findings["crash-loop:worker"]
        assert any("could not be inspected" in (loc.detail or "") for loc in crash.locations), crash.locations
        # the logs are still read, so the cause is still the container's own last words
        assert crash.cause is not None and any("fatal: no queue" in e for e in crash.cause.evidence), crash.cause
        assert refused.status is SwitchStatus.REFUSED
        assert any("worker: inspect of container" in r for r in refused.plan.refusals), refused.plan.refusals
