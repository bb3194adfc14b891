"""Situations from the adversarial review of the switch, with real parts (Docker engine and
Compose v2, real processes, the switch-mode flow on a real Prefect server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.switch import run_switch
from stackwarden.model.plan import Outcome, SwitchStatus
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _write_profile(path: Path, name: str, compose_file: Path, services: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump({"name": name, "compose": {"project": name, "files": [str(compose_file)]}, "services": services})
    )
    return path


def test_make_phase_compose_up_of_two_services_waits_for_their_profile_names(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    """Two services without a container, one whose compose name differs from its profile name:
    compose up starts both first (make phase, no port to free) and the switch waits for them by
    their profile names before anything else, then verifies."""
    web, cache = free_ports(2)
    name = unique_name("swtest-make")
    services = {
        "httpd": tcp_service(8080, f"127.0.0.1:{web}:8080"),
        "cache": tcp_service(6379, f"127.0.0.1:{cache}:6379"),
    }
    with compose_project(tmp_path, name, services) as project:
        project.compose("rm", "--stop", "--force")  # defined, never created: compose up must create them
        assert project.containers() == []
        profile = _write_profile(
            tmp_path / "p.yaml",
            name,
            project.file,
            {
                "web": {"ports": [web], "compose_service": "httpd", "health": {"tcp": web}},
                "cache": {"ports": [cache]},
            },
        )
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=60)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        assert outcome.verdict is not None and outcome.verdict.outcome is Outcome.PASSED
        assert [s.phase for s in outcome.plan.steps] == ["make"]
        assert {c["State"] for c in project.containers()} == {"running"}
        assert len(project.containers()) == 2

