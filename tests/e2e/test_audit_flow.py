"""The audit flow on a real Prefect server: concurrent observe tasks, the report and the findings
published as artifacts, finding events' open set kept for the next run."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.variables import Variable

from flows.audit import audit_flow, host_name
from tasks.diagnose import open_findings_variable
from tests.conftest import SeedScenario

pytestmark = [pytest.mark.prefect, pytest.mark.docker]


async def _run_details(key_prefix: str) -> tuple[list[str], list[str]]:
    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=key_prefix)))
        flow_runs = await client.read_flow_runs()
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_runs[0].id]))
        )
    return [a.key or "" for a in artifacts], sorted(t.name for t in task_runs)


def test_audit_flow_publishes_report_and_findings(prefect_server: None, seed_scenario: SeedScenario) -> None:
    outcome = audit_flow(profile_path=str(seed_scenario.profile_path))
    ids = {f.id for f in outcome.result.findings}
    assert "crash-loop:backend" in ids and "dual-deployment" in ids
    assert "## Conflict Resolution Status" in outcome.markdown

    name = seed_scenario.project.name
    keys, task_names = asyncio.run(_run_details(f"stackwarden-{name}"))
    assert f"stackwarden-{name}-audit-report" in keys
    assert f"stackwarden-{name}-findings" in keys
    assert "observe-docker" in task_names
    assert any(t.startswith("observe-host-") for t in task_names)
    assert f"diagnose-{name}" in task_names

    open_set = Variable.get(open_findings_variable(outcome.profile, host_name()))
    assert isinstance(open_set, dict)
    assert set(open_set) == {f.id for f in outcome.result.findings if f.severity != "ok"}
    assert open_set["dual-deployment"]["rule"] == "dual-deployment"
