"""The textfile-collector output parses with prometheus_client and says what the audit saw."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stackwarden.adapters.textfile import write_textfile
from stackwarden.model import AuditResult, Severity, Snapshot
from stackwarden.model.base import Mode
from stackwarden.model.finding import Finding, ModeRecommendation
from stackwarden.recommend import recommend_mode
from stackwarden.report.prometheus import escape_label_value, render_prometheus
from stackwarden.rules import diagnose
from tests.support.builders import profile, seed_snapshot, snapshot

FINISHED = datetime(2025, 11, 25, 12, 0, 30, tzinfo=UTC)


def _render(snap: Snapshot, duration: float = 2.5) -> tuple[str, AuditResult]:
    prof = profile()
    findings = diagnose(snap, prof)
    result = AuditResult(
        profile=prof.name,
        snapshot_taken_at=snap.taken_at.isoformat(),
        findings=findings,
        recommendation=recommend_mode(snap, prof, findings),
    )
    return render_prometheus(result, snap, prof, duration_seconds=duration, finished_at=FINISHED), result


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_findings_by_rule_severity_service_match_the_diagnosis() -> None:
    text, result = _render(seed_snapshot())
    samples = _samples(text)
    assert result.findings, "the seed snapshot must produce findings for this test to mean anything"
    expected: dict[tuple[str, str, str], int] = {}
    for finding in result.findings:
        if finding.severity is Severity.OK:
            continue
        for service in finding.services or ("",):
            key = (finding.rule, str(finding.severity), service)
            expected[key] = expected.get(key, 0) + 1
    got = {
        (labels["rule"], labels["severity"], labels["service"]): int(value)
        for labels, value in samples["stackwarden_findings"]
    }
    assert got == expected
    assert all(labels["profile"] == "seedstack" for labels, _ in samples["stackwarden_findings"])


def test_an_ok_result_is_no_open_finding() -> None:
    """A rule that reports a check that held (severity ok) adds nothing to stackwarden_findings,
    as the open-findings Variable leaves it out: an alert on the metric must not fire on it."""
    snap = seed_snapshot()
    prof = profile()
    held = Finding(
        id="held:api", rule="health", title="api answers", summary="ok", severity=Severity.OK, services=("api",)
    )
    result = AuditResult(
        profile=prof.name,
        snapshot_taken_at=snap.taken_at.isoformat(),
        findings=(held,),
        recommendation=ModeRecommendation(mode=Mode.COMPOSE_ONLY, reasons=("test",)),
    )
    text = render_prometheus(result, snap, prof, duration_seconds=1.0, finished_at=FINISHED)
    assert "stackwarden_findings{" not in text


def test_instances_count_containers_and_processes_per_service_and_runtime() -> None:
    samples = _samples(_render(seed_snapshot())[0])
    instances = {(labels["service"], labels["runtime"]): value for labels, value in samples["stackwarden_instances"]}
    # the seed: a backend container (crash-looping), a postgres container and a host postgres,
    # a redis container and a host redis-server
    assert instances[("backend", "compose")] == 1
    assert instances[("postgres", "host")] == 1
    assert instances[("redis", "host")] == 1
    assert instances[("redis", "compose")] == 1
    assert instances[("backend", "host")] == 0


def test_an_unreachable_runtime_is_down_and_counts_no_instances() -> None:
    samples = _samples(_render(snapshot(docker_reachable=False))[0])
    up = {labels["runtime"]: value for labels, value in samples["stackwarden_runtime_up"]}
    assert up == {"compose": 0, "host": 1}
    runtimes = {labels["runtime"] for labels, _ in samples["stackwarden_instances"]}
    assert runtimes == {"host"}, "no '0 containers' may be claimed for an engine that was not seen"


def test_duration_and_last_success_timestamp() -> None:
    samples = _samples(_render(seed_snapshot(), duration=3.25)[0])
    assert samples["stackwarden_audit_duration_seconds"] == [({"profile": "seedstack"}, 3.25)]
    assert samples["stackwarden_last_successful_audit_timestamp_seconds"] == [
        ({"profile": "seedstack"}, FINISHED.timestamp())
    ]


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_textfile_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "stackwarden.prom"
    target.write_text("old\n")
    text = _render(seed_snapshot())[0]
    write_textfile(target, text)
    assert target.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["stackwarden.prom"], "no temporary file is left behind"
