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


def _container_id(project: Any, service: str) -> str:
    return str(project.compose("ps", "-a", "-q", service).stdout.split()[0])


def test_rollback_never_starts_a_container_the_switch_found_stopped(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    """A container stopped by hand after the plan was made: its stop step finds it stopped and does
    nothing. When a later step is refused, there is nothing to undo: the run ends "refused" and the
    container stays stopped (undoing the stop would start what a person had stopped)."""
    from stackwarden.model.base import Mode, Runtime
    from stackwarden.model.plan import Plan, StartContainer, StepStatus, StopContainer
    from stackwarden.profiles import load_profile
    from stackwarden.run.executor import LocalExecutor
    from stackwarden.run.switch import Options, carry_out

    name = unique_name("swtest-skip")
    services = {"old": tcp_service(8080, None), "new": tcp_service(8081, None)}
    with compose_project(tmp_path, name, services) as project:
        old_id, new_id = _container_id(project, "old"), _container_id(project, "new")
        profile = load_profile(_write_profile(tmp_path / "p.yaml", name, project.file, {"old": {}, "new": {}}))
        common = {"runtime": Runtime.COMPOSE, "why": "test", "reversible": True, "compose_project": name}
        stop_old = StopContainer(
            id=f"stop-container:{old_id}",
            service="old",
            target="old",
            inverse="docker start old",
            container_id=old_id,
            name=f"{name}-old-1",
            timeout_seconds=2,
            **common,
        )
        start_new = StartContainer(
            id=f"start-container:{new_id}",
            service="new",
            target="new",
            inverse="docker stop new",
            container_id=new_id,
            name=f"{name}-new-1",
            phase="start",
            **common,
        )
        the_plan = Plan(profile=name, mode=Mode.COMPOSE_ONLY, steps=(stop_old, start_new))
        project.compose("stop", "--timeout", "2", "old")  # by hand, after the plan
        project.compose("rm", "--stop", "--force", "new")  # the container to start is gone: refused

        def run_it() -> Any:  # the run layer in process: the decisions, not Prefect, are under test
            return carry_out(the_plan, profile, LocalExecutor(profile), options=Options(deadline_seconds=10))

        outcome = run_it()
        statuses = {r.step_id: r.status for r in outcome.journal}
        assert statuses == {stop_old.id: StepStatus.SKIPPED, start_new.id: StepStatus.REFUSED}
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        assert {c["Names"]: c["State"] for c in project.containers()} == {f"{name}-old-1": "exited"}


def test_a_compose_up_that_fails_halfway_is_undone_by_the_rollback(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    """``compose up a b`` starts a, then b cannot bind its port (taken after the plan was made):
    the step failed, yet a runs. The rollback must stop a too, or the run says "rolled back"
    while the stack is half-changed."""
    from stackwarden.model.base import Mode, Runtime
    from stackwarden.model.plan import ComposeUp, Plan, StepStatus
    from stackwarden.profiles import load_profile
    from stackwarden.run.executor import LocalExecutor
    from stackwarden.run.switch import Options, carry_out
    from tests.support.realparts import host_listener

    (port,) = free_ports(1)
    name = unique_name("swtest-half")
    services = {"a": tcp_service(8080, None), "b": tcp_service(8081, f"127.0.0.1:{port}:8081")}
    with compose_project(tmp_path, name, services) as project:
        project.compose("rm", "--stop", "--force")
        profile = load_profile(
            _write_profile(tmp_path / "p.yaml", name, project.file, {"a": {}, "b": {"ports": [port]}})
        )
        spec = profile.compose
        up = ComposeUp(
            id=f"compose-up:{name}:a,b",
            service="a,b",
            runtime=Runtime.COMPOSE,
            why="test",
            target="a, b",
            reversible=True,
            inverse="",
            project=name,
            files=spec.files,
            working_dir=spec.working_dir,
            services=("a", "b"),
        )
        the_plan = Plan(profile=name, mode=Mode.COMPOSE_ONLY, steps=(up,))

        def run_it() -> Any:  # the run layer in process: the decisions, not Prefect, are under test
            return carry_out(the_plan, profile, LocalExecutor(profile), options=Options(deadline_seconds=10))

        with host_listener("squatter", "127.0.0.1", port):  # someone took b's port after the plan
            outcome = run_it()
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
        assert [r.status for r in outcome.journal] == [StepStatus.FAILED, StepStatus.ROLLED_BACK]
        running = [c["Names"] for c in project.containers() if c["State"] == "running"]
        assert running == []  # a was started by the failed step and stopped by the rollback


def test_a_container_its_own_healthcheck_calls_unhealthy_is_not_a_switched_service(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    """The image's (here: the compose file's) healthcheck never passes. The container is
    "running", but Docker itself says it does not serve: verify must not call that switched, and
    the start is rolled back."""
    name = unique_name("swtest-unhealthy")
    sick = {
        **tcp_service(8080, None),
        "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "timeout": "1s", "retries": 1},
    }
    with compose_project(tmp_path, name, {"web": sick}) as project:
        project.compose("stop", "--timeout", "2", "web")
        profile = _write_profile(tmp_path / "p.yaml", name, project.file, {"web": {}})
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=8)
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
        # the start is a make step (no port to free): the wait for it to serve is what fails
        assert "web: not up under compose: running but not serving" in outcome.message
        assert "unhealthy" in outcome.message or "health: starting" in outcome.message
        assert {c["State"] for c in project.containers()} == {"exited"}


def test_compose_up_never_recreates_a_container_created_by_hand_after_the_plan(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    """The plan saw no container for web and would create one. Before it runs, a person creates
    it with their own settings (an interpolated variable). ``compose up`` with stackwarden's
    environment sees another config and would remove that container and make its own: a
    container the plan never saw. It is started as it is instead (or left running)."""
    from stackwarden.model.base import Mode, Runtime
    from stackwarden.model.plan import ComposeUp, Plan
    from stackwarden.profiles import load_profile
    from stackwarden.run.executor import LocalExecutor
    from stackwarden.run.switch import Options, carry_out
    from tests.support.realparts import run

    name = unique_name("swtest-recreate")
    web = {**tcp_service(8080, None), "environment": {"MARK": "${MARK:-planned}"}}
    with compose_project(tmp_path, name, {"web": web}) as project:
        project.compose("rm", "--stop", "--force")
        profile = load_profile(_write_profile(tmp_path / "p.yaml", name, project.file, {"web": {}}))
        spec = profile.compose
        up = ComposeUp(
            id=f"compose-up:{name}:web",
            service="web",
            runtime=Runtime.COMPOSE,
            why="test",
            target="web",
            reversible=True,
            inverse="",
            project=name,
            files=spec.files,
            working_dir=spec.working_dir,
            services=("web",),
        )
        the_plan = Plan(profile=name, mode=Mode.COMPOSE_ONLY, steps=(up,))
        by_hand = ["docker", "compose", "-p", name, "-f", str(project.file), "up", "-d", "web"]
        run(by_hand, env={**__import__("os").environ, "MARK": "by-hand"})
        before = _container_id(project, "web")

        def run_it() -> Any:  # the run layer in process: the decisions, not Prefect, are under test
            return carry_out(the_plan, profile, LocalExecutor(profile), options=Options(deadline_seconds=20))

        outcome = run_it()
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        assert _container_id(project, "web") == before  # the person's container, not a new one
