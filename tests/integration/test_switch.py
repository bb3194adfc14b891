"""Switching modes on the whole seed scenario with real parts: Docker engine and Compose v2, the
real kube-apiserver (fake kubelet), real host processes, and the switch-mode flow on a real
Prefect server. Bystanders (another compose project, another namespace, a stray listener)
must come out untouched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.model import Mode, Runtime
from stackwarden.model.plan import PREVIOUS_REPLICAS, Outcome, StepStatus, SwitchStatus
from tests.integration.audit_helpers import audit
from tests.support.kube import pods_settled
from tests.support.stack import REPLICAS, Stack, fresh_stack

pytestmark = [pytest.mark.docker, pytest.mark.kube, pytest.mark.prefect]


@pytest.fixture
def stack(tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None) -> Any:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        yield s


def _replicas(s: Stack, name: str, ns: str | None = None) -> tuple[int, dict[str, str]]:
    d = k8s.AppsV1Api(s.api).read_namespaced_deployment(name, ns or s.namespace)
    return d.spec.replicas, dict(d.metadata.annotations or {})


def _states(project: Any) -> dict[str, str]:
    return {c["Names"]: c["State"] for c in project.containers()}


def _assert_bystanders_untouched(s: Stack) -> None:
    assert _replicas(s, "backend", s.bystander_namespace)[0] == 2
    assert set(_states(s.bystander_project).values()) == {"running"}
    assert psutil.pid_exists(s.bystander_pid)


def _switch(s: Stack, mode: Mode, **kwargs: Any) -> Any:
    return run_switch(mode=str(mode), profile_path=str(s.profile_path), apply=True, deadline_seconds=90, **kwargs)


def test_compose_only(stack: Stack) -> None:
    outcome = _switch(stack, Mode.COMPOSE_ONLY)
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message
    assert outcome.verdict.outcome is Outcome.BROKEN_BY_CODE_ISSUE
    assert outcome.verdict.code_issues == ("backend: Backend crash loop",)
    assert all(r.status is StepStatus.APPLIED for r in outcome.journal)
    for name, count in REPLICAS.items():
        replicas, annotations = _replicas(stack, name)
        assert replicas == 0 and annotations[PREVIOUS_REPLICAS] == str(count)
    for pid in stack.host_pids.values():
        assert not psutil.pid_exists(pid)
    states = _states(stack.project)
    assert states[f"{stack.project.name}-postgres-1"] == "running"  # it could bind once the port was freed
    _assert_bystanders_untouched(stack)

    again = _switch(stack, Mode.COMPOSE_ONLY)
    assert again.plan.steps == () and again.journal == ()
    assert again.status is SwitchStatus.SWITCHED


def test_k8s_only_restores_recorded_replicas(stack: Stack) -> None:
    assert _switch(stack, Mode.COMPOSE_ONLY).status is SwitchStatus.SWITCHED
    outcome = _switch(stack, Mode.K8S_ONLY)
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message
    assert outcome.verdict.outcome is Outcome.BROKEN_BY_CODE_ISSUE
    for name, count in REPLICAS.items():
        assert _replicas(stack, name)[0] == count
    assert set(_states(stack.project).values()) <= {"exited", "created"}
    _, snapshot, _ = audit(stack.profile_path)
    assert not [listener for listener in snapshot.listeners if listener.port in stack.ports.values()]
    _assert_bystanders_untouched(stack)


def test_hybrid_guarded(stack: Stack) -> None:
    outcome = _switch(stack, Mode.HYBRID_GUARDED)
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message
    assert _replicas(stack, "backend")[0] == 4 and _replicas(stack, "frontend")[0] == 5
    assert _replicas(stack, "postgres")[0] == 0 and _replicas(stack, "redis")[0] == 0
    states = _states(stack.project)
    assert states[f"{stack.project.name}-postgres-1"] == "running"
    assert states[f"{stack.project.name}-redis-1"] == "running"
    assert states[f"{stack.project.name}-frontend-1"] == "exited"
    pods_settled(stack.api, stack.namespace, {"frontend": (5, "Running")})
    _assert_bystanders_untouched(stack)


def _fingerprint(stack: Stack) -> dict[str, Any]:
    """What a dry run must not change: identities and desired states, not the clock or the
    crash loop's own restart counter. Containers are the stack's and its bystander's: the engine
    is shared with the rest of the session, whose containers come and go on their own."""
    _, snap, _ = audit(stack.profile_path)
    kube = snap.kubernetes
    assert kube is not None
    projects = {stack.project.name, stack.bystander_project.name}
    return {
        "containers": sorted(
            (c.id, "restarting" if c.is_crash_looping else c.state)
            for c in snap.containers
            if c.compose_project in projects
        ),
        "listeners": sorted((item.address, item.port, item.pid) for item in snap.listeners),
        "processes": sorted((p.pid, p.create_time) for p in snap.processes),
        "workloads": sorted(
            (w.uid, w.generation, w.replicas, tuple(sorted(w.annotations.items()))) for w in kube.workloads
        ),
        "pods": sorted(p.uid for p in kube.pods),
    }


def test_dry_run_changes_nothing(stack: Stack) -> None:
    before = _fingerprint(stack)
    outcome = run_switch(mode="compose-only", profile_path=str(stack.profile_path))
    assert outcome.status is SwitchStatus.DRY_RUN
    assert len(outcome.plan.steps) >= 7
    assert _fingerprint(stack) == before
    stale = run_switch(mode="compose-only", profile_path=str(stack.profile_path), apply=True, expected_digest="0" * 64)
    assert stale.status is SwitchStatus.REFUSED and "changed since it was reviewed" in stale.message
    assert _fingerprint(stack) == before


def test_context_outside_allowlist_is_refused_before_any_change(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet, allowed=["minikube", "kind-*"]) as s:
        before = _fingerprint(s)
        outcome = _switch(s, Mode.COMPOSE_ONLY)
        assert outcome.status is SwitchStatus.REFUSED
        assert "'stackwarden-test' is not in the profile's allowed_contexts" in outcome.message
        assert outcome.journal == ()
        assert _fingerprint(s) == before


def test_planned_snapshot_has_every_runtime(stack: Stack) -> None:
    _, snapshot, findings = audit(stack.profile_path)
    assert {r.runtime for r in snapshot.runtimes if r.reachable} == {Runtime.COMPOSE, Runtime.HOST, Runtime.KUBERNETES}
    assert set(findings["dual-deployment"].services) == {"backend", "frontend", "postgres", "redis"}


def test_failed_verification_rolls_back_in_reverse_and_ends_failed(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    """The frontend's health check fails after the stops: every undo runs in reverse, except the
    postgres container's start: its old owner, a host postgres with no unit and no start
    command, cannot come back, and stopping the container would leave postgres with no owner at
    all (before, the rollback did exactly that and said "rolled back"). The run says
    rollback-incomplete, keeps the container, and prints what runs where and how to finish."""
    # the frontend's health check asks for a page its server does not have: 404, never healthy
    with fresh_stack(tmp_path, control_plane, kubelet, frontend_health_path="/no-such-page") as s:
        outcome = run_switch(mode="compose-only", profile_path=str(s.profile_path), apply=True, deadline_seconds=8)
        assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
        assert "frontend: health check failed" in outcome.message and "404" in outcome.message
        assert "postgres: its old owner (stop-process postgres" in outcome.message
        for name, count in REPLICAS.items():
            assert _replicas(s, name)[0] == count  # restored from the recorded previous counts
        undone = [r for r in outcome.journal if r.status is StepStatus.ROLLED_BACK]
        applied = [r.step_id for r in outcome.journal if r.status is StepStatus.APPLIED]
        start = next(step for step in outcome.plan.steps if step.kind == "start-container")
        reversible = [step.id for step in outcome.plan.steps if step.reversible and step.id in applied]
        assert [r.step_id for r in undone] == [f"undo:{i}" for i in reversed(reversible) if i != start.id]
        assert {r.step_id: r.status for r in outcome.journal}[f"undo:{start.id}"] is StepStatus.KEPT
        container = f"{s.project.name}-postgres-1"
        assert _states(s.project)[container] == "running"  # kept: postgres still has an owner
        assert {w.service: w.serving for w in outcome.where}["postgres"] is True
        assert outcome.to_finish[:2] == (
            f"docker kill --signal SIGTERM {container}",
            f"timeout 20 docker wait {container}",
        )
        assert any(line.startswith("# start postgres again") for line in outcome.to_finish)
        _assert_bystanders_untouched(s)
        state = asyncio.run(_last_switch_state())
        assert state.is_failed() and "rollback incomplete" in (state.message or "")


async def _last_switch_state() -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["switch-mode"])), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
    return runs[0].state
