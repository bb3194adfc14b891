"""Pure diagnosis rules. Importing this package registers every rule module."""

from __future__ import annotations

from stackwarden.chains import link_chains
from stackwarden.derivations import per_snapshot
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.rules import (
    availability,
    crash_loops,
    dual_deployment,
    health,
    host,
    interrupted,
    kubernetes,
    network,
    ports,
    runtimes,
    services,
)
from stackwarden.rules.registry import RULES, Rule, rule

RULE_MODULES = (
    runtimes,
    dual_deployment,
    ports,
    host,
    crash_loops,
    availability,
    services,
    health,
    network,
    kubernetes,
    interrupted,
)


@per_snapshot("findings")
def diagnose(snapshot: Snapshot, profile: Profile) -> tuple[Finding, ...]:
    """Every registered rule's findings, each failure a down dependency explains linked to its
    root cause (``stackwarden.chains``), worst first, then by id (stable across runs); the rules
    run once per snapshot however many callers ask (report, plans, verdict)."""
    return _run_rules(snapshot, profile)


def _run_rules(snapshot: Snapshot, profile: Profile) -> tuple[Finding, ...]:
    """Run every registered rule, then link each failure that a down dependency explains to
    its root cause; worst first, then by id, so output is stable."""
    findings = link_chains([f for check in RULES.values() for f in check(snapshot, profile)], snapshot, profile)
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.id)))


__all__ = ["RULES", "RULE_MODULES", "Rule", "diagnose", "rule"]
