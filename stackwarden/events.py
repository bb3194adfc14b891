"""Which findings opened or resolved between two audits (pure; the tasks emit the events)."""

from __future__ import annotations

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
