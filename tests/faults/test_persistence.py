"""With PREFECT_RESULTS_PERSIST_BY_DEFAULT=true (input-keyed caching on), verify still observes
the live host: a container the switch starts is seen running, so the switch passes instead of
timing out on a cached view and rolling the start back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings

from flows.switch import run_switch
from stackwarden.model.plan import SwitchStatus
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import free_ports, listening

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def test_verify_sees_the_live_host_with_result_persistence_on(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swfault-ps")
    with compose_project(tmp_path, name, {"web": tcp_service(80, f"127.0.0.1:{port}:80")}) as project:
        project.compose("stop", "web")
        assert project.containers()[0]["State"] == "exited"
        profile = tmp_path / "profile.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {"web": {"ports": [port], "health": {"tcp": port}}},
                }
            )
        )
        with temporary_settings(updates={PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}):
            outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=30)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        assert [s.kind for s in outcome.plan.steps] == ["start-container"]
        assert outcome.verdict is not None and "web: up under compose, healthy" in outcome.verdict.checks
        assert project.containers()[0]["State"] == "running" and listening(port)
