"""Preflight on real parts: a compose file that is missing, a dependency outside the profile and
an image that is not on the host are all refused before step 1, every failure in one refusal,
and nothing changes in any runtime (the host process that compose-only would stop still runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from flows.switch import run_switch
from stackwarden.model.plan import SwitchStatus
from tests.support.compose import Project, tcp_service, unique_name
from tests.support.realparts import free_ports, host_listener

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _profile(path: Path, project: str, files: list[str], ports: dict[str, int]) -> Path:
    data: dict[str, Any] = {
        "name": project,
        "compose": {"project": project, "files": files},
        "services": {
            "web": {"ports": [ports["web"]], "host": {"executables": ["swfault-web"]}},
            "cache": {"ports": [ports["cache"]]},
        },
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def _scenario(tmp: Path, services: dict[str, Any] | None) -> Iterator[tuple[Project, Path, int]]:
    """A host process holding web's port (compose-only would stop it: irreversibly, no
    start_command) and a compose file that is either missing (``services`` None) or given."""
    ports = dict(zip(("web", "cache"), free_ports(2), strict=True))
    name = unique_name("swfault-pf")
    file = tmp / f"{name}.compose.yaml"
    if services is not None:
        file.write_text(yaml.safe_dump({"name": name, "services": services}, sort_keys=False))
    project = Project(name=name, file=file)
    profile = _profile(tmp / f"{name}.profile.yaml", name, [str(file)], ports)
    with host_listener("swfault-web", "127.0.0.1", ports["web"]) as proc:
        try:
            yield project, profile, proc.pid
        finally:
            if file.exists():
                project.compose("down", "--volumes", "--timeout", "1", check=False)


def _nothing_changed(project: Project, pid: int) -> None:
    assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert project.containers() == []  # compose up never ran


def test_a_missing_compose_file_is_refused_and_nothing_changes(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    with _scenario(tmp_path, None) as (project, profile, pid):
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=20)
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        assert f"preflight: compose project {project.name}: file {project.file} does not exist" in outcome.message
        assert outcome.journal == ()
        assert {s.kind for s in outcome.plan.steps} == {"stop-process", "compose-up"}  # what it would have done
        _nothing_changed(project, pid)


def test_dependency_outside_the_profile_and_a_missing_image_in_one_refusal(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    web = tcp_service(80, None) | {"depends_on": ["sidecar"]}
    cache = tcp_service(6379, None) | {"image": "stackwarden-test/never-built:0"}
    services = {"web": web, "cache": cache, "sidecar": tcp_service(81, None)}
    with _scenario(tmp_path, services) as (project, profile, pid):
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=20)
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        assert "compose service web depends_on 'sidecar', which the profile does not name" in outcome.message
        assert "image stackwarden-test/never-built:0 is not present on this host" in outcome.message
        assert outcome.journal == ()
        _nothing_changed(project, pid)
