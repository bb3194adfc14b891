"""Finding changes between two diagnoses of the live view, with gaps taken into account.

A runtime whose watch is lost is unreachable in the snapshot, so the rules no longer find what
they found there (a crash loop, a dual deployment): read naively, every such finding would
"resolve" at the moment the view went blind. It is held open instead (``effective``) until the
runtime is seen again, and only then resolves if it is really gone. A finding that concerns no
runtime in particular is held while any runtime is blind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from stackwarden.events import open_finding_ids
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding

FindingEvent = Literal["open", "opened", "resolved", "changed"]


@dataclass(frozen=True)
class FindingChange:
    """One line of ``stackwarden watch``: a finding opened, resolved, or changed severity
    (``open``: already open when the watch started)."""

    event: FindingEvent
    at: datetime
    profile: str
    finding_id: str
    rule: str
    severity: str
    summary: str
    services: tuple[str, ...] = ()
    previous_severity: str | None = None


@dataclass(frozen=True)
class CoverageChange:
    """A runtime's watch was lost (``gap``) or is back (``resumed``): the view could not, or can
    again, vouch for that runtime."""

    event: Literal["gap", "resumed"]
    at: datetime
    profile: str
    runtime: str
    reason: str = ""
    since: datetime | None = None


LiveEvent = FindingChange | CoverageChange


def _blind_to(finding: Finding, blind: frozenset[Runtime]) -> bool:
    """The finding concerns a runtime the view cannot see now (or none in particular, while any
    runtime is unseen): its absence from the diagnosis proves nothing."""
    return bool(blind) and (not finding.runtimes or bool(blind & set(finding.runtimes)))


def effective(
    previous: Mapping[str, Finding], current: tuple[Finding, ...], blind: frozenset[Runtime]
) -> tuple[Finding, ...]:
    """The findings to treat as open: the diagnosis's, plus each previously open one the
    diagnosis lacks only because its runtime is in a gap. Order as ``diagnose`` orders them."""
    now = {f.id for f in current}
    held = [f for fid, f in previous.items() if fid not in now and _blind_to(f, blind)]
    return tuple(sorted((*current, *held), key=lambda f: (-f.severity.rank, f.id)))


def open_findings(findings: Iterable[Finding]) -> dict[str, Finding]:
    """The findings that need attention (``open_finding_ids``: anything worse than ``ok``), by id."""
    chosen = tuple(findings)
    ids = set(open_finding_ids(chosen))
    return {f.id: f for f in chosen if f.id in ids}


def changes(
    previous: Mapping[str, Finding],
    now_open: Mapping[str, Finding],
    *,
    profile: str,
    at: datetime,
    initial: bool = False,
) -> list[FindingChange]:
    """Opened, resolved and re-graded findings from ``previous`` to ``now_open`` (both: open
    findings by id); ``initial`` reports what is open at the start as ``open``."""
    out = []
    for fid, f in now_open.items():
        before = previous.get(fid)
        if before is None:
            out.append(_change("open" if initial else "opened", f, profile, at))
        elif before.severity is not f.severity:
            out.append(_change("changed", f, profile, at, previous_severity=str(before.severity)))
    out += [_change("resolved", f, profile, at) for fid, f in previous.items() if fid not in now_open]
    order = {"resolved": 0, "changed": 1, "opened": 2, "open": 2}
    return sorted(out, key=lambda c: (order[c.event], c.finding_id))


def _change(
    event: FindingEvent, f: Finding, profile: str, at: datetime, previous_severity: str | None = None
) -> FindingChange:
    return FindingChange(
        event=event,
        at=at,
        profile=profile,
        finding_id=f.id,
        rule=f.rule,
        severity=str(f.severity),
        summary=f.summary,
        services=f.services,
        previous_severity=previous_severity,
    )


def remembered(records: Mapping[str, Mapping[str, object]]) -> dict[str, Finding]:
    """Findings rebuilt from a stored open set (id -> rule, severity, services, title, summary:
    what the scheduled audit keeps), so the live view starts from what was last reported. They
    name no runtime, so a gap holds them all until every runtime is seen again."""
    out = {}
    for fid, record in records.items():
        try:
            severity = Severity(str(record.get("severity", "high")))
        except ValueError:
            severity = Severity.HIGH
        services = record.get("services")
        out[fid] = Finding(
            id=fid,
            rule=str(record.get("rule", "unknown")),
            title=str(record.get("title", fid)),
            severity=severity,
            services=tuple(str(s) for s in services) if isinstance(services, list | tuple) else (),
            summary=str(record.get("summary", "")),
        )
    return out
