"""A switch approved (or rejected) by a person through the Prefect UI's flow path: the run
publishes its plan, pauses with pause_flow_run(wait_for_input=Approval), and is resumed with
input through the Prefect API exactly as the UI's "Resume" form does."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from kubernetes import client as k8s
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.switch import run_switch
from stackwarden.model.plan import SwitchOutcome, SwitchStatus
from tests.support.realparts import alive
from tests.support.stack import REPLICAS, fresh_stack

pytestmark = [pytest.mark.prefect, pytest.mark.docker, pytest.mark.kube]


async def _paused_runs(seen: set[UUID]) -> list[UUID]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            )
        )
    return [r.id for r in runs if r.id not in seen]


async def _plan_artifact_of(run_id: UUID, key: str) -> str:
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
        )
    return str(artifacts[0].data) if artifacts else ""


async def _cancelled_runs() -> list[Any]:
    async with get_client() as client:
        return list(
            await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLED]))
                )
            )
        )


def _run_with_approval(profile: Path, answer: dict[str, Any]) -> tuple[SwitchOutcome, str]:
    """Start the flow, wait for its pause, answer like the UI, return the outcome and the plan."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["outcome"] = run_switch(
                mode="compose-only", profile_path=str(profile), apply=True, approval="ui", deadline_seconds=90
            )
        except BaseException as exc:  # surfaced in the assertion below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    paused: list[UUID] = []
    while not paused and time.monotonic() < deadline and thread.is_alive():
        time.sleep(1)
        paused = asyncio.run(_paused_runs(set()))
    assert paused, f"the switch never paused for approval: {result}"
    plan_text = asyncio.run(
        _plan_artifact_of(paused[0], f"stackwarden-{profile.stem.removesuffix('.profile')}-switch-plan")
    )
    resume_flow_run(paused[0], run_input=answer)
    thread.join(240)
    assert "outcome" in result, result
    return result["outcome"], plan_text


def test_approved_in_the_ui_completes(tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        outcome, plan_text = _run_with_approval(s.profile_path, {"approve": True, "comment": "go"})
        assert "# Switch plan:" in plan_text and "scale-workload" in plan_text
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        apps = k8s.AppsV1Api(s.api)
        assert all(apps.read_namespaced_deployment(n, s.namespace).spec.replicas == 0 for n in REPLICAS)


def test_rejected_in_the_ui_changes_nothing(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        outcome, _ = _run_with_approval(s.profile_path, {"approve": False, "comment": "not today"})
        assert outcome.status is SwitchStatus.REJECTED
        assert "not today" in outcome.message and outcome.journal == ()
        # a rejection is no success: the run ends Cancelled, named "Rejected", the reason in its message
        runs = asyncio.run(_cancelled_runs())
        assert any(r.state and r.state.name == "Rejected" and "not today" in (r.state.message or "") for r in runs)
        apps = k8s.AppsV1Api(s.api)
        assert {n: apps.read_namespaced_deployment(n, s.namespace).spec.replicas for n in REPLICAS} == REPLICAS
        for pid in s.host_pids.values():
            assert alive(pid), pid
