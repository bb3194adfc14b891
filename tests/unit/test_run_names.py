"""Task runs of a switch are named after their targets with short identities."""

from __future__ import annotations

from stackwarden.model.base import Runtime
from stackwarden.model.plan import ScaleWorkload, StopContainer, StopProcess
from stackwarden.report.names import step_run_name

COMMON = {"why": "w", "target": "t", "reversible": True, "inverse": ""}


def test_a_container_step_carries_the_short_id_not_64_hex() -> None:
    step = StopContainer(
        id="s1",
        service="backend",
        runtime=Runtime.COMPOSE,
        container_id="3f2a9c1" + "b" * 57,
        name="shop-backend-1",
        compose_project="shop",
        timeout_seconds=10,
        **COMMON,
    )
    assert step_run_name(step) == "stop-container backend 3f2a9c1"


def test_a_process_step_names_its_pid() -> None:
    step = StopProcess(
        id="s2",
        service="postgres",
        runtime=Runtime.HOST,
        pid=812,
        create_time=1.0,
        exe="/usr/lib/postgresql/15/bin/postgres",
        name="postgres",
        signal="SIGINT",
        grace_seconds=20,
        **COMMON,
    )
    assert step_run_name(step) == "stop-process postgres pid 812"


def test_a_workload_step_names_kind_name_short_uid_and_replicas() -> None:
    step = ScaleWorkload(
        id="s3",
        service="backend",
        runtime=Runtime.KUBERNETES,
        context="kind-dev",
        namespace="shop",
        workload_kind="Deployment",
        name="backend",
        uid="0e1d2c3b-4a59-6877-8899-aabbccddeeff",
        generation=3,
        replicas=0,
        previous_replicas=4,
        **COMMON,
    )
    assert step_run_name(step) == "scale-workload backend deployment/backend 0e1d2c3 to 0"


def test_the_approval_text_carries_every_step_why_reversibility_digest_and_link() -> None:
    from stackwarden.model.base import Mode
    from stackwarden.model.plan import Plan
    from stackwarden.report.approval import ApprovalScope, grouped, render_approval

    stop = StopProcess(
        id="s2",
        service="postgres",
        runtime=Runtime.HOST,
        pid=812,
        create_time=1.0,
        exe="/usr/bin/postgres",
        name="postgres",
        signal="SIGINT",
        grace_seconds=20,
        why="postgres | also runs in compose",
        target="t",
        reversible=False,
        inverse="",
    )
    scale = ScaleWorkload(
        id="s3",
        service="backend",
        runtime=Runtime.KUBERNETES,
        context="kind-dev",
        namespace="shop",
        workload_kind="Deployment",
        name="backend",
        uid="0e1d2c3b",
        generation=3,
        replicas=0,
        previous_replicas=4,
        why="compose-only: no pods",
        target="t",
        reversible=True,
        inverse="scale back to 4",
    )
    plan = Plan(profile="shop", mode=Mode.COMPOSE_ONLY, steps=(stop, scale))
    scope = ApprovalScope(
        profile_file="/etc/stackwarden/shop.yaml",
        profile_sha256="ab" * 32,
        compose_files=("/srv/shop/compose.yaml",),
        kubeconfig="/root/.kube/config",
        context="kind-dev",
        api_server="https://127.0.0.1:6443",
    )
    text = render_approval(plan, "/artifacts/artifact/123", scope)
    assert grouped(plan.digest) in text and grouped(plan.digest).replace(" ", "") == plan.digest
    assert "[The plan artifact, with the exact commands](/artifacts/artifact/123)" in text
    lines = text.splitlines()
    # what cannot be undone comes first, before any step, naming the step
    summary = next(i for i, line in enumerate(lines) if "cannot be undone:" in line)
    assert "1 of 2 step(s) cannot be undone" in lines[summary] and "pid 812" in lines[summary]
    steps = [line for line in lines if line.startswith(("1. ", "2. "))]
    assert len(steps) == 2 and summary < lines.index(steps[0])
    assert "pid 812" in steps[0] and "also runs in compose" in steps[0] and steps[0].endswith("**cannot be undone**")
    assert "scale back to 4" in steps[1]
    # no table: a row wider than the form would have to be scrolled sideways
    assert not any(line.startswith("|") for line in lines)
    for shown in (
        "/etc/stackwarden/shop.yaml",
        grouped("ab" * 32),
        "/srv/shop/compose.yaml",
        "/root/.kube/config",
        "kind-dev",
    ):
        assert shown in text, shown
    assert "https://127.0.0.1:6443" in text


def test_the_approval_text_says_when_every_step_can_be_undone() -> None:
    from stackwarden.model.base import Mode
    from stackwarden.model.plan import Plan
    from stackwarden.report.approval import render_approval

    assert "All 0 step(s) can be undone" in render_approval(Plan(profile="shop", mode=Mode.COMPOSE_ONLY))
