"""``stackwarden watch`` output: one line per finding change or coverage change, as text for a
person or as one JSON object per line for a program. Everything passes the sanitizer."""

from __future__ import annotations

import json
from datetime import datetime

from stackwarden.live.findings import CoverageChange, FindingChange, LiveEvent
from stackwarden.sanitize import deep, one_line

SUMMARY_MAX = 200
"""Characters of a finding's summary on a text line (JSON carries it up to the sanitizer's cap)."""


def _time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def as_json(event: LiveEvent) -> str:
    """One JSON object: ``time``, ``event``, ``profile`` and, for a finding, ``id``, ``rule``,
    ``severity``, ``summary``, ``services`` (``previous_severity`` when it changed); for a
    coverage change, ``runtime``, ``reason`` and ``since``."""
    doc: dict[str, object] = {"time": _time(event.at), "event": event.event, "profile": event.profile}
    if isinstance(event, FindingChange):
        doc.update(
            id=event.finding_id,
            rule=event.rule,
            severity=event.severity,
            summary=event.summary,
            services=list(event.services),
        )
        if event.previous_severity is not None:
            doc["previous_severity"] = event.previous_severity
    else:
        doc.update(runtime=event.runtime, reason=event.reason, since=_time(event.since) if event.since else None)
    return json.dumps(deep(doc), ensure_ascii=False)


def as_text(event: LiveEvent) -> str:
    """``TIME EVENT SEVERITY ID  SUMMARY`` (or the runtime and reason of a gap), one line."""
    stamp = event.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(event, CoverageChange):
        what = (
            f"{event.runtime} not observed: {event.reason}"
            if event.event == "gap"
            else f"{event.runtime} observed again"
        )
        return one_line(f"{stamp} {event.profile} {event.event:<8} {what}")
    summary = event.summary if len(event.summary) <= SUMMARY_MAX else event.summary[: SUMMARY_MAX - 1] + "…"
    severity = f"{event.previous_severity}->{event.severity}" if event.previous_severity else event.severity
    return one_line(f"{stamp} {event.profile} {event.event:<8} {severity:<8} {event.finding_id}  {summary}")
