"""Profiles of real stacks: services without ports, and a stack split across compose projects."""

from __future__ import annotations

import pytest

from stackwarden import commands
from stackwarden.errors import ProfileError
from stackwarden.model import Mode
from stackwarden.model.plan import ComposeUp
from stackwarden.placement import stack_view
from stackwarden.planner import plan
from stackwarden.profiles import parse_profile
from tests.support.builders import PORTS, container, process, profile_data, snapshot


def _two_projects(**service_overrides: object) -> dict[str, object]:
    """The seed stack with its datastores in a second compose project and a port-less worker."""
    data = profile_data()
    data["compose"] = [
        {"project": "seedstack", "files": ["/srv/seed/compose.yaml"]},
        {"project": "seeddata", "files": ["/srv/data/compose.yaml"], "services": ["postgres"]},
    ]
    data["services"]["redis"]["compose_project"] = "seeddata"
    data["services"]["worker"] = {"host": {"executables": ["celery"]}, "kubernetes": {"name": "worker"}}
    data["services"]["worker"]["runtime"] = "compose"
    data["services"].update(service_overrides)
    return data


def test_services_name_their_project_or_a_project_lists_them() -> None:
    profile = parse_profile(_two_projects(), "<test>")
    assert [c.project for c in profile.compose_projects] == ["seedstack", "seeddata"]
    assert profile.compose_for("postgres").project == "seeddata"  # listed by the project
    assert profile.compose_for("redis").project == "seeddata"  # names its project
    assert profile.compose_for("backend").project == "seedstack"  # the default
    assert profile.services["worker"].ports == ()
    assert profile.host_lookup().search == ("celery",)


def test_a_single_compose_mapping_still_loads_unchanged() -> None:
    profile = parse_profile(profile_data(), "<test>")
    assert profile.compose_projects == (profile.compose,)
    assert profile.compose_for("redis") is profile.compose


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["services"]["redis"].update(compose_project="nowhere"), "'nowhere' is not one of"),
        (lambda d: d["compose"][1].update(services=["ghost"]), "lists 'ghost'"),
        (lambda d: d["compose"][0].update(services=["postgres"]), "listed by compose projects"),
        (lambda d: d["compose"][1].update(project="seedstack"), "'seedstack' is listed twice"),
        (lambda d: d["services"]["postgres"].update(compose_project="seedstack"), "but project 'seeddata' lists"),
        (lambda d: d.update(compose=[]), "list of compose projects is empty"),
    ],
)
def test_inconsistent_projects_are_refused_with_the_field(mutate: object, message: str) -> None:
    data = _two_projects()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ProfileError, match=message):
        parse_profile(data, "<test>")


def test_each_service_is_placed_in_its_own_project() -> None:
    profile = parse_profile(_two_projects(), "<test>")
    pg_right = container("postgres", project="seeddata")
    pg_wrong = container("postgres", project="seedstack")  # same service name, other project
    worker = container("worker")
    view = stack_view(snapshot(containers=(pg_right, pg_wrong, worker)), profile)
    assert view.placements["postgres"].containers == (pg_right,)
    assert view.placements["worker"].containers == (worker,)


def test_a_portless_host_worker_is_placed_by_its_executable() -> None:
    profile = parse_profile(_two_projects(), "<test>")
    celery = process(4242, "celery", ("/usr/bin/celery", "-A", "app", "worker"))
    other = process(4243, "python3")
    view = stack_view(snapshot(processes=(celery, other)), profile)
    assert view.placements["worker"].processes == (celery,)
    # a service with ports still needs the port: a redis-server elsewhere is not redis
    stray = process(4244, "redis-server")
    assert stack_view(snapshot(processes=(stray,)), profile).placements["redis"].processes == ()


def test_compose_commands_and_compose_up_use_each_services_project() -> None:
    profile = parse_profile(_two_projects(), "<test>")
    cmd = commands.compose_service(profile, "postgres", "start")
    assert cmd == "docker compose -p seeddata -f /srv/data/compose.yaml start postgres"
    steps = plan(snapshot(), profile, Mode.COMPOSE_ONLY).steps
    ups = {s.project: s.services for s in steps if isinstance(s, ComposeUp)}
    assert ups == {"seedstack": ("backend", "frontend", "worker"), "seeddata": ("postgres", "redis")}
    assert PORTS["postgres"] in profile.all_ports()
