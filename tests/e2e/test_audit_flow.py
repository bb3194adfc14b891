"""The audit flow on a real Prefect server: concurrent observe tasks, the report and the findings
published as artifacts, finding events' open set kept for the next run."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.variables import Variable

from flows.audit import audit_flow, host_name
from tasks.diagnose import open_findings_variable
from tests.conftest import SeedScenario

pytestmark = [pytest.mark.prefect, pytest.mark.docker]


async def _run_details(flow_run_id: UUID) -> tuple[list[str], list[str]]:
    """The artifact keys and task-run names of this test's own flow run (the session's server holds
    other tests' runs too: no "latest run" is ours for sure)."""
    async with get_client() as client:
        artifacts = await client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [a.key or "" for a in artifacts], sorted(t.name for t in task_runs)


def test_audit_flow_publishes_report_and_findings(prefect_server: None, seed_scenario: SeedScenario) -> None:
    state = audit_flow(profile_path=str(seed_scenario.profile_path), return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert state.is_completed() and flow_run_id is not None, state
    outcome = state.result()
    ids = {f.id for f in outcome.result.findings}
    assert "crash-loop:backend" in ids and "dual-deployment" in ids
    assert "## Conflict Resolution Status" in outcome.markdown

    name = seed_scenario.project.name
    keys, task_names = asyncio.run(_run_details(flow_run_id))
    assert f"stackwarden-{name}-audit-report" in keys
    assert f"stackwarden-{name}-findings" in keys
    assert "observe-docker" in task_names
    assert any(t.startswith("observe-host-") for t in task_names)
    assert f"diagnose-{name}" in task_names

    open_set = Variable.get(open_findings_variable(outcome.profile, host_name()))
    assert isinstance(open_set, dict)
    assert set(open_set) == {f.id for f in outcome.result.findings if f.severity != "ok"}
    assert open_set["dual-deployment"]["rule"] == "dual-deployment"
