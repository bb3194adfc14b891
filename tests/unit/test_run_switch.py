"""The switch's decisions (``stackwarden.run.switch``) on a simulated host: phases, make before
break, a verify that must settle, blind verifies, and a rollback that never makes things worse.
The planner and the verdict are the real ones; only the world and the clock are simulated."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from stackwarden.adapters.lock import lock_resources, switch_lock
from stackwarden.errors import LockedError
from stackwarden.model import Mode
from stackwarden.model.plan import Plan, StepStatus, StopProcess, SwitchOutcome, SwitchStatus
from stackwarden.planner import plan
from stackwarden.run.executor import MAX_CONCURRENT_STOPS, LocalExecutor
from stackwarden.run.switch import Options, carry_out, run, verify
from tests.support.builders import process
from tests.support.fakeworld import FakeExecutor, World, fake_profile

OPTIONS = Options(deadline_seconds=10, poll_seconds=1)


def _plan(world: World, **profile_options: object) -> tuple[Plan, FakeExecutor]:
    profile = fake_profile(**profile_options)  # type: ignore[arg-type]
    the_plan = plan(world.snapshot(), profile, Mode.COMPOSE_ONLY)
    assert the_plan.applicable, the_plan.refusals
    return the_plan, FakeExecutor(world, profile)


def _statuses(outcome: object) -> dict[str, StepStatus]:
    return {r.step_id: r.status for r in outcome.journal}  # type: ignore[attr-defined]


def test_make_waits_then_break_then_verify_settles() -> None:
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)
    assert [(s.kind, s.phase) for s in the_plan.steps] == [("start-container", "make"), ("scale-workload", "break")]
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message
    assert world.applied == [s.id for s in the_plan.steps]  # make first, then the break
    assert world.container == "running" and world.replicas == 0
    # verify held on observations spanning the 3 s settle window, not on its first look
    verify_started = executor.clock - 3
    assert verify_started > 0 and world.observations >= 3


def test_a_process_restarted_by_a_supervisor_after_the_stop_fails_verify() -> None:
    world = World(container="exited", replicas=0, process=True)
    the_plan, executor = _plan(world, start_command=True)
    stopped_at: list[float] = []

    def supervisor(clock: float, w: World) -> None:  # brings webd back two seconds after the stop
        if not w.process and not stopped_at:
            stopped_at.append(clock)
        if stopped_at and clock - stopped_at[0] >= 2 and not w.process:
            w.process = True

    world.at_observe = supervisor
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is not SwitchStatus.SWITCHED
    assert outcome.verdict is not None and any("still runs under host" in f for f in outcome.verdict.failures)


def test_a_blind_verify_leaves_the_new_owner_serving_and_ends_unverified() -> None:
    """The issue's k8s -> compose case: the containers started and served, the Deployment was
    scaled to 0, then the apiserver died. Not seeing the cluster is not a failure: nothing is
    undone, and the status says exactly that."""
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)

    def apiserver_dies(step: object, w: World) -> None:
        if getattr(step, "kind", "") == "scale-workload":
            w.kube_up = False

    world.after_step = apiserver_dies
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.UNVERIFIED, outcome.message
    assert world.container == "running"  # the new owner that serves was not stopped
    assert "kubernetes could not be observed" in outcome.message and "web: up under compose" in outcome.message
    assert not [r for r in outcome.journal if r.step_id.startswith("undo:")]


def test_a_failed_undo_of_a_break_keeps_the_make_steps_that_depend_on_it() -> None:
    """Verify sees a real failure while the cluster cannot be reached: the rollback's scale-up
    fails, so the container that serves web is kept (stopping it would leave web with nothing)."""
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)

    def apiserver_dies(step: object, w: World) -> None:
        if getattr(step, "kind", "") == "scale-workload" and not getattr(step, "id", "").startswith("undo:"):
            w.kube_up = False
            w.process = True  # and someone started a stray webd on the port: a seen failure

    world.after_step = apiserver_dies
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
    statuses = _statuses(outcome)
    scale, start = the_plan.steps[1], the_plan.steps[0]
    assert statuses[f"undo:{scale.id}"] is StepStatus.FAILED
    assert statuses[f"undo:{start.id}"] is StepStatus.KEPT
    assert world.container == "running"
    assert outcome.to_finish[0] == "kubectl --context kind-dev -n fakens scale deployment/web --replicas=2"
    assert outcome.to_finish[-1] == "docker stop --time 5 fakeproj-web-1"
    assert {row.service: row.kubernetes for row in outcome.where} == {"web": "not observed"}


def test_a_make_phase_failure_undoes_the_make_and_never_touched_the_old_owner() -> None:
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)
    start = the_plan.steps[0]
    world.fail[start.id] = "container exited at once"
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
    assert world.replicas == 2  # the break never ran
    assert _statuses(outcome) == {start.id: StepStatus.FAILED, f"undo:{start.id}": StepStatus.SKIPPED}


def test_a_start_whose_old_owner_cannot_be_restored_is_kept() -> None:
    """The host process held the port and has no start command: undoing the container start
    would leave the service with no owner at all. It is kept; the status says incomplete."""
    world = World(container="exited", replicas=0, process=True)
    the_plan, executor = _plan(world)
    assert [(s.kind, s.phase, s.reversible) for s in the_plan.steps] == [
        ("stop-process", "break", False),
        ("start-container", "start", True),
    ]
    # verify sees a failure: someone scales the Deployment up again right after the start
    world.after_step = lambda step, w: setattr(w, "replicas", 1) if step.kind == "start-container" else None
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
    assert _statuses(outcome)[f"undo:{the_plan.steps[1].id}"] is StepStatus.KEPT
    assert "cannot be started again by stackwarden" in outcome.message
    assert world.container == "running"  # web keeps the owner that serves it
    assert outcome.to_finish[0] == "docker stop --time 5 fakeproj-web-1"


def test_a_new_owner_stopped_to_free_a_port_is_started_again_when_the_old_one_fails_to_start() -> None:
    world = World(container="exited", replicas=0, process=True)
    the_plan, executor = _plan(world, start_command=True)
    stop, start = the_plan.steps
    world.fail[f"undo:{stop.id}"] = "webd: permission denied"

    def stray_after_start(step: object, w: World) -> None:  # a seen failure after the start
        if getattr(step, "id", "") == start.id:
            w.replicas = 1

    world.after_step = stray_after_start
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
    statuses = _statuses(outcome)
    assert statuses[f"undo:{start.id}"] is StepStatus.ROLLED_BACK
    assert statuses[f"undo:{stop.id}"] is StepStatus.FAILED
    assert statuses[f"redo:{start.id}"] is StepStatus.APPLIED
    assert world.container == "running" and not world.process  # web keeps an owner
    # to finish: stop the container again (frees the port), then start webd
    assert outcome.to_finish == ("docker stop --time 5 fakeproj-web-1", "/usr/bin/webd --serve")


def test_everything_undone_in_reverse_is_rolled_back() -> None:
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)
    world.after_step = lambda step, w: setattr(w, "process", True) if step.kind == "scale-workload" else None
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
    undone = [r.step_id for r in outcome.journal if r.status is StepStatus.ROLLED_BACK]
    assert undone == [f"undo:{s.id}" for s in reversed(the_plan.steps)]
    assert world.replicas == 2 and world.container == "exited"


def test_a_refusal_of_the_first_step_changes_nothing_and_ends_refused() -> None:
    world = World(container="exited", replicas=2)
    the_plan, executor = _plan(world)
    world.refuse.add(the_plan.steps[0].id)
    outcome = carry_out(the_plan, executor.profile, executor, options=OPTIONS)
    assert outcome.status is SwitchStatus.REFUSED and "nothing changed" in outcome.message
    assert world.applied == []


def test_once_the_invariants_hold_the_settle_window_is_completed_even_past_the_deadline() -> None:
    """docs/architecture.md: once they hold, the window is completed even past the deadline."""
    world = World(container="running", replicas=0)
    profile = fake_profile(settle_seconds=5)
    executor = FakeExecutor(world, profile)
    result = verify(profile, Mode.COMPOSE_ONLY, executor, deadline_seconds=2, settle_seconds=5, poll_seconds=1)
    assert result.passed, result.failures
    assert executor.clock >= 1 + 5  # the first passing look at 1 s, then the whole window, though the deadline was 2 s


def test_a_dry_run_takes_no_lock_and_an_apply_waits_for_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/security.md: a dry run takes no lock (it changes nothing); an applying run of the same
    profile meanwhile fails fast naming the holder."""
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(tmp_path))
    world = World(container="exited", replicas=2)
    profile = fake_profile()
    with switch_lock(lock_resources(profile), "another switch (test)", profile=profile.name):
        dry = run(profile, Mode.COMPOSE_ONLY, FakeExecutor(world, profile))
        assert isinstance(dry, SwitchOutcome) and dry.status is SwitchStatus.DRY_RUN, dry
        with pytest.raises(LockedError, match=r"another switch of profile 'fake' holds .*another switch \(test\)"):
            run(profile, Mode.COMPOSE_ONLY, FakeExecutor(world, profile), apply=True)
    assert world.applied == []


def test_at_most_four_stops_run_at_once_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/architecture.md: the break phase's stops run concurrently, at most 4 at once."""
    running, peak, lock = [0], [0], threading.Lock()

    def slow(request: object, profile: object) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return "stopped"

    monkeypatch.setattr("stackwarden.run.executor.execute", slow)
    profile = fake_profile()
    stops = [
        StopProcess.of(
            process(4000 + i, "webd"),
            service="web",
            why="t",
            signal="SIGTERM",
            grace_seconds=1,
            systemd_unit=None,
            stateful=False,
            start_command=None,
        )
        for i in range(7)
    ]
    results = LocalExecutor(profile).apply(stops, concurrent=True, force=False, recheck_generation=True)
    assert [r.status for r in results] == [StepStatus.APPLIED] * 7
    assert peak[0] == MAX_CONCURRENT_STOPS == 4
