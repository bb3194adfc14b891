"""The markdown report has the seed's sections and status table; JSON is complete."""

from __future__ import annotations

import json
import shlex

from stackwarden.model import AuditResult
from stackwarden.recommend import recommend_mode
from stackwarden.report import render_json, render_markdown
from stackwarden.rules import diagnose
from tests.support.builders import PANIC, PORTS, profile, seed_snapshot, snapshot

SECTIONS = [
    "## Executive Summary",
    "## Detected Conflicts",
    "## Current Configuration",
    "## Recommendations",
    "## Immediate Actions Required",
    "## Conflict Resolution Status",
    "## Next Steps",
    "## Diagnostic Commands",
]


def _audit(snap=None):  # type: ignore[no-untyped-def]
    snap = snap or seed_snapshot()
    prof = profile()
    findings = diagnose(snap, prof)
    result = AuditResult(
        profile=prof.name,
        snapshot_taken_at=snap.taken_at.isoformat(),
        findings=findings,
        recommendation=recommend_mode(snap, prof, findings),
    )
    return result, snap, prof


def test_markdown_has_the_seed_sections_in_order() -> None:
    text = render_markdown(*_audit())
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert "**Status:** ⚠️ **CONFLICTS DETECTED**" in text
    for option in (
        "Option 1: Use Docker Compose only",
        "Option 2: Use Kubernetes only",
        "Option 3: Hybrid",
    ):
        assert option in text
    assert text.count("**Pros:**") == 3 and text.count("**Cons:**") == 3


def test_status_table_rows_carry_the_seed_severities() -> None:
    text = render_markdown(*_audit())
    table = text.split("## Conflict Resolution Status", 1)[1].split("## Next Steps", 1)[0]
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "---" not in line
    }
    assert "| 🔴 Active | Critical | Fix code issue |" in rows["Backend crash loop"]
    assert (
        "| 🔴 Active | Critical | Stop process postgres (PID 2792) |"
        in rows[f"Port conflict {PORTS['postgres']} (postgres)"]
    )
    assert "| ⚠️ Active | High | Choose one method |" in rows["Dual deployment"]
    assert "| ✅ OK | OK | None |" in rows["Network isolation"]


def test_markdown_names_real_pids_and_containers_never_placeholders() -> None:
    text = render_markdown(*_audit())
    assert "kill -INT 2792" in text and "kill -TERM 2785" in text
    assert "adjust" not in text.lower()
    assert PANIC in text
    assert "Code issue (not deployment conflict)" in text
    assert "docker start seedstack-postgres-1" in text  # the created container is started, not re-created


def test_unreachable_engine_marks_the_report_incomplete() -> None:
    text = render_markdown(*_audit(snapshot(docker_reachable=False)))
    assert "incomplete: compose not observed" in text
    assert "compose: **unreachable** (connection refused)" in text


def test_json_document_round_trips_findings_and_snapshot() -> None:
    result, snap, _ = _audit()
    doc = json.loads(render_json(result, snap))
    assert doc["status"] == "conflicts" and doc["worst"] == "critical"
    assert {f["id"] for f in doc["findings"]} == {f.id for f in result.findings}
    crash = next(f for f in doc["findings"] if f["id"] == "crash-loop:backend")
    assert crash["cause"]["category"] == "code-issue"
    assert doc["snapshot"]["containers"][0]["compose_project"] == "seedstack"
    assert doc["recommendation"]["mode"] == "compose-only"


def _mode_blocks(text: str, title: str) -> tuple[str, list[list[str]]]:
    """The section of one mode option and its bash blocks."""
    section = text.split(title, 1)[1].split("**Pros:**", 1)[0]
    blocks = [b.split("```", 1)[0].strip().splitlines() for b in section.split("```bash\n")[1:]]
    return section, blocks


def test_mode_commands_are_the_switchs_plan_one_block_per_step() -> None:
    from stackwarden.commands import step_commands
    from stackwarden.model import Mode
    from stackwarden.planner import plan

    result, snap, prof = _audit()
    text = render_markdown(result, snap, prof)
    _section, blocks = _mode_blocks(text, "Option 1: Use Docker Compose only")
    the_plan = plan(snap, prof, Mode.COMPOSE_ONLY)
    assert the_plan.applicable and blocks == [step_commands(step, prof) for step in the_plan.steps]
    # the two owners of redis (host process, container) are never in one copy-paste block
    mixed = [b for b in blocks if len(b) > 1 and not b[0].startswith("kubectl") and not _stop_then_wait(b)]
    assert not mixed, mixed


def test_a_refused_mode_is_shown_refused_with_its_reasons_and_no_commands() -> None:
    result, snap, prof = _audit()
    text = render_markdown(result, snap, prof)
    section, blocks = _mode_blocks(text, "Option 2: Use Kubernetes only")
    assert "would **refuse**, changing nothing" in section
    assert "postgres: has no home in kubernetes" in section
    assert blocks == []


def test_a_read_only_context_gets_no_mutating_commands_and_kubectl_carries_the_kubeconfig() -> None:
    from stackwarden.model import KubeContext, KubeObservation, KubeWorkloadState
    from stackwarden.model.profile import KubernetesSpec

    def kube(allowed: bool) -> KubeObservation:
        ctx = KubeContext(name="kind-dev", server="https://127.0.0.1:6443", allowed=allowed, current=True)
        backend = KubeWorkloadState(
            kind="Deployment",
            name="backend",
            namespace="seedstack",
            uid="u1",
            resource_version="1",
            replicas=2,
            selector={"app": "backend"},
        )
        return KubeObservation(context=ctx, namespace="seedstack", workloads=(backend,))

    base = seed_snapshot()
    prof = profile()
    spec = KubernetesSpec(namespace="seedstack", allowed_contexts=("kind-*",), kubeconfig="/etc/kube/my config")
    prof = prof.model_copy(update={"kubernetes": spec})
    for allowed in (False, True):
        snap = base.model_copy(update={"kubernetes": kube(allowed)})
        findings = diagnose(snap, prof)
        result = AuditResult(
            profile=prof.name,
            snapshot_taken_at=snap.taken_at.isoformat(),
            findings=findings,
            recommendation=recommend_mode(snap, prof, findings),
        )
        section, blocks = _mode_blocks(render_markdown(result, snap, prof), "Option 1: Use Docker Compose only")
        scale = [line for b in blocks for line in b if "kubectl" in line]
        if not allowed:
            assert "would **refuse**" in section and scale == []
        else:
            assert scale and all(
                line.startswith("kubectl --kubeconfig '/etc/kube/my config' --context kind-dev -n seedstack")
                for line in scale
            )


def _stop_then_wait(block: list[str]) -> bool:
    """A host process's block: its signal, then the bounded wait for that same PID to exit."""
    kill, wait = (shlex.split(line) for line in block) if len(block) == 2 else ([], [])
    return bool(kill) and kill[0] == "kill" and wait[0] == "timeout" and f"-p {kill[-1]} " in wait[-1]
