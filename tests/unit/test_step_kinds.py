"""One place per step kind: each kind's plan text, printed commands, request, inverse, run name
and identity re-check come from its class, and everything that shows or runs a step uses them."""

from __future__ import annotations

import typing

from stackwarden.adapters.executor import _HANDLERS
from stackwarden.commands import step_commands
from stackwarden.model import Mode
from stackwarden.model.plan import GracefulStop, RestoreRestartPolicy, Step, StopContainer
from stackwarden.model.steps import Request, printed
from stackwarden.planner import plan
from stackwarden.report.approval import render_approval
from stackwarden.report.names import step_run_name
from stackwarden.report.plan import render_plan
from tests.support.fakeworld import World, fake_profile


def _union(annotated: object) -> tuple[type, ...]:
    return typing.get_args(typing.get_args(annotated)[0])


def _every_kind() -> list[Step]:
    """Planned steps of every kind, their undos, and a repair step."""
    profile = fake_profile(start_command=True)
    steps: list[Step] = []
    for world in (World(container="exited", replicas=2, process=True), World(container=None, replicas=2)):
        steps += plan(world.snapshot(), profile, Mode.COMPOSE_ONLY).steps
    steps += plan(World(container="running", replicas=0).snapshot(), profile, Mode.K8S_ONLY).steps
    steps += [undo for step in list(steps) if (undo := step.undo()) is not None]
    stop = next(s for s in steps if isinstance(s, StopContainer))
    steps.append(stop.model_copy(update={"stateful": True, "graceful": GracefulStop(signal="SIGINT")}))
    steps.append(
        RestoreRestartPolicy(
            id="repair:policy:c",
            service="web",
            runtime="compose",  # type: ignore[arg-type]
            why="repair",
            target="t",
            reversible=False,
            inverse="",
            container_id="c" * 64,
            name="fakeproj-web-1",
            compose_project="fakeproj",
            policy="always",
        )
    )
    return steps


def test_every_kind_is_covered_and_every_request_has_one_executor() -> None:
    kinds = {type(step) for step in _every_kind()}
    assert kinds == set(_union(Step)), set(_union(Step)) - kinds
    assert set(_HANDLERS) == set(_union(Request))  # one adapter-side executor maps each request


def test_what_is_shown_is_what_the_kind_says() -> None:
    steps = _every_kind()
    for step in steps:
        argvs = step.commands()
        assert argvs and all(argv for argv in argvs), step.kind
        assert step_commands(step) == [printed(argv) for argv in argvs]  # the report's and dry run's block
        assert step_run_name(step) == step.run_name()  # the task run and the approval form
        assert step.identity()
        assert type(step.request()) in _HANDLERS
        undo = step.undo()
        if step.inverse:  # the plan's "reversible: ..." is exactly the undo's printed commands
            assert undo is not None and step.inverse == "; ".join(step_commands(undo))
    the_plan = plan(World(container="exited", replicas=2, process=True).snapshot(), fake_profile(), Mode.COMPOSE_ONLY)
    text, form = render_plan(the_plan), render_approval(the_plan)
    for step in the_plan.steps:
        assert all(line in text for line in step_commands(step))  # the plan artifact and the dry run
        assert step.run_name() in form
