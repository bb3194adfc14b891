"""Pure diagnosis rules. Importing this package registers every rule module."""

from __future__ import annotations

from stackwarden.chains import link_chains
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


def diagnose(snapshot: Snapshot, profile: Profile) -> tuple[Finding, ...]:
    """Run every registered rule, then link each failure that a down dependency explains to
    its root cause (``stackwarden.chains``); worst first, then by id, so output is stable."""
    findings = link_chains([f for check in RULES.values() for f in check(snapshot, profile)], snapshot, profile)
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.id)))


__all__ = ["RULES", "RULE_MODULES", "Rule", "diagnose", "rule"]
