"""Which findings opened or resolved between two audits (pure; the tasks emit the events)."""

from __future__ import annotations

import json

from stackwarden.model.base import Severity
from stackwarden.model.finding import Finding


def open_finding_ids(findings: tuple[Finding, ...]) -> list[str]:
    """Ids of findings that need attention (anything worse than ``ok``), sorted."""
    return sorted(f.id for f in findings if f.severity is not Severity.OK)


def transitions(previous: list[str], findings: tuple[Finding, ...]) -> tuple[list[Finding], list[str]]:
    """(findings opened since ``previous``, ids resolved since ``previous``).

    Stable finding ids make this a set difference: the same conflict keeps its id across runs,
    so an automation sees one ``opened`` and, when it is fixed, one ``resolved``.
    """
    current = set(open_finding_ids(findings))
    opened = [f for f in findings if f.id in current and f.id not in previous]
    resolved = sorted(set(previous) - current)
    return opened, resolved


# Prefect keeps a Variable's value up to 5,000 characters; the open set must fit in it.
VARIABLE_LIMIT = 5000
_RECORD_KEYS = ("rule", "severity", "services", "title", "summary")


def finding_record(finding: Finding, summary_max: int = 300) -> dict[str, object]:
    """What a later ``finding.resolved`` needs to say which finding it closes."""
    summary = finding.summary if len(finding.summary) <= summary_max else finding.summary[: summary_max - 1] + "…"
    return {
        "rule": finding.rule,
        "severity": str(finding.severity),
        "services": list(finding.services),
        "title": finding.title[:200],
        "summary": summary,
    }


def open_set(findings: tuple[Finding, ...], limit: int = VARIABLE_LIMIT) -> dict[str, dict[str, object]]:
    """The open findings, id -> record, small enough for a Prefect Variable.

    When many findings are open the summaries are shortened, then dropped, before anything that
    identifies a finding (id, rule, severity, services) is: a resolved event may lose its prose,
    never its identity."""
    ids = set(open_finding_ids(findings))
    chosen = [f for f in findings if f.id in ids]
    for summary_max in (300, 120, 40, 0):
        record = {f.id: finding_record(f, summary_max) if summary_max else _short(f) for f in chosen}
        if len(json.dumps(record)) <= limit:
            return record
    return {f.id: {} for f in chosen}


def _short(finding: Finding) -> dict[str, object]:
    return {"rule": finding.rule, "severity": str(finding.severity), "services": list(finding.services)}


def previous_open_set(value: object) -> dict[str, dict[str, object]]:
    """Read the Variable as stored by this version (a mapping) or an older one (a list of ids)."""
    if isinstance(value, dict):
        return {
            str(k): {key: v[key] for key in _RECORD_KEYS if key in v} if isinstance(v, dict) else {}
            for k, v in value.items()
        }
    if isinstance(value, list):
        return {str(k): {} for k in value}
    return {}


def _record_of(value: object) -> dict[str, object]:
    return {key: value[key] for key in _RECORD_KEYS if key in value} if isinstance(value, dict) else {}


def changes_since(previous: dict[str, dict[str, object]], findings: tuple[Finding, ...]) -> list[dict[str, str]]:
    """Rows of the "changes since the last audit" table: every open finding as ``new`` or
    ``persisting``, and every finding the previous audit had open that is gone as ``resolved``
    (described from what the previous audit recorded)."""
    current = set(open_finding_ids(findings))
    rows = []
    for finding in findings:
        if finding.id in current:
            rows.append(_row("persisting" if finding.id in previous else "new", finding.id, finding_record(finding)))
    for finding_id in sorted(set(previous) - current):
        rows.append(_row("resolved", finding_id, previous[finding_id]))
    order = {"new": 0, "persisting": 1, "resolved": 2}
    return sorted(rows, key=lambda r: (order[r["change"]], r["id"]))


def _row(change: str, finding_id: str, record: dict[str, object]) -> dict[str, str]:
    services = record.get("services", [])
    return {
        "change": change,
        "id": finding_id,
        "rule": str(record.get("rule", "")),
        "severity": str(record.get("severity", "")),
        "services": ", ".join(str(s) for s in services) if isinstance(services, list) else str(services),
        "summary": str(record.get("summary", "")),
    }
