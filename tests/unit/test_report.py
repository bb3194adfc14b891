"""The markdown report has the seed's sections and status table; JSON is complete."""

from __future__ import annotations

import json

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
    assert "docker compose -p seedstack -f /srv/seed/compose.yaml up -d" in text


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
