"""Audit metrics in node_exporter's textfile-collector format (pure).

node_exporter reads ``*.prom`` files from its ``--collector.textfile.directory`` and serves them
with the host's own metrics, so a scheduled audit becomes a time series Prometheus can alert on
without a stackwarden exporter process. The renderer only formats; writing the file atomically is
the caller's job (``stackwarden.adapters.textfile``).

What a metric cannot say is left out rather than guessed: instances are counted only for runtimes
that were observed, and ``stackwarden_runtime_up`` says which ones were, so "0 containers" never
stands for "Docker could not be reached".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import AuditResult
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import ServicePlacement, stack_view
from stackwarden.sanitize import redact, strip_controls

Labels = tuple[tuple[str, str], ...]


def escape_label_value(value: str) -> str:
    """Escape a label value as the exposition format requires (backslash, quote, newline), after
    the sanitizer (control characters, secrets): the metrics file is a way out too."""
    value = redact(strip_controls(value))
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Labels, value: float) -> str:
    """One sample line; integers print without a trailing ``.0`` so the file reads naturally."""
    rendered = ",".join(f'{key}="{escape_label_value(val)}"' for key, val in labels)
    number = str(int(value)) if float(value).is_integer() else repr(float(value))
    return f"{name}{{{rendered}}} {number}" if rendered else f"{name} {number}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> list[str]:
    """HELP and TYPE lines, then the samples sorted by labels so the output is deterministic."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(_sample(name, labels, value) for labels, value in sorted(samples))
    return lines


def _instances(placement: ServicePlacement, runtime: Runtime) -> int:
    """How many instances of one service one runtime runs: containers, pods (or the desired
    replicas of workloads without pods yet), host processes."""
    if runtime is Runtime.COMPOSE:
        return len(placement.containers)
    if runtime is Runtime.HOST:
        return len(placement.processes)
    return len(placement.pods) or sum(w.replicas for w in placement.workloads)


def render_prometheus(
    result: AuditResult,
    snapshot: Snapshot,
    profile: Profile,
    *,
    duration_seconds: float,
    finished_at: datetime,
) -> str:
    """The metrics of one successful audit as a textfile-collector file.

    A finding that concerns several services counts once per service (so a per-service alert
    sees it); a finding about no particular service has ``service=""``. An ``ok`` result is no
    open finding and is not counted (as the open-findings Variable leaves it out).
    """
    base: Labels = (("profile", profile.name),)
    findings: Counter[Labels] = Counter()
    for finding in result.findings:
        if finding.severity is Severity.OK:  # a check that held is no open finding
            continue
        for service in finding.services or ("",):
            findings[(*base, ("rule", finding.rule), ("severity", str(finding.severity)), ("service", service))] += 1
    view = stack_view(snapshot, profile)
    observed = [status.runtime for status in snapshot.runtimes if status.reachable]
    instances: list[tuple[Labels, float]] = [
        ((*base, ("runtime", str(runtime)), ("service", service)), float(_instances(placement, runtime)))
        for service, placement in view.placements.items()
        for runtime in observed
    ]
    runtime_up: list[tuple[Labels, float]] = [
        ((*base, ("runtime", str(status.runtime))), 1.0 if status.reachable else 0.0) for status in snapshot.runtimes
    ]
    lines = [
        *_family(
            "stackwarden_findings",
            "gauge",
            "Open findings of the last audit by rule, severity and service.",
            findings.items(),
        ),
        *_family(
            "stackwarden_instances",
            "gauge",
            "Instances (containers, pods, host processes) of each service per observed runtime.",
            instances,
        ),
        *_family(
            "stackwarden_runtime_up",
            "gauge",
            "1 when the audit could observe the runtime, 0 when it could not (then no instances are counted).",
            runtime_up,
        ),
        *_family(
            "stackwarden_audit_duration_seconds",
            "gauge",
            "Wall-clock duration of the last successful audit.",
            [(base, round(duration_seconds, 3))],
        ),
        *_family(
            "stackwarden_last_successful_audit_timestamp_seconds",
            "gauge",
            "Unix time the last successful audit finished; alert when it grows old.",
            [(base, round(finished_at.timestamp(), 3))],
        ),
    ]
    return "\n".join(lines) + "\n"
