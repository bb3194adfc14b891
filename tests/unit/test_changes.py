"""The "changes since the last audit" table: new, persisting and resolved findings."""

from __future__ import annotations

from stackwarden.events import changes_since, open_set
from stackwarden.model import Finding
from stackwarden.model.base import Severity


def _f(finding_id: str, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        id=finding_id,
        rule=finding_id.split(":", maxsplit=1)[0],
        title="t",
        severity=severity,
        services=("api", "db"),
        summary=f"s {finding_id}",
    )


def test_new_persisting_and_resolved_rows() -> None:
    before = open_set((_f("port-conflict:1"), _f("dual-deployment")))
    now = (_f("dual-deployment"), _f("crash-loop:api", Severity.CRITICAL), _f("network-isolation", Severity.OK))
    rows = changes_since(before, now)
    assert [(r["change"], r["id"]) for r in rows] == [
        ("new", "crash-loop:api"),
        ("persisting", "dual-deployment"),
        ("resolved", "port-conflict:1"),
    ]
    resolved = rows[-1]
    assert resolved["rule"] == "port-conflict" and resolved["severity"] == "high"
    assert resolved["services"] == "api, db" and resolved["summary"] == "s port-conflict:1"


def test_a_first_audit_has_only_new_rows() -> None:
    assert {r["change"] for r in changes_since({}, (_f("a:1"), _f("b:2")))} == {"new"}
