"""The audit as it ships, for integration tests that read its snapshot and findings: the
pipeline's own ``run_audit`` (the CLI's in-process audit, and what the audit flow's tasks wrap),
with its concurrent observation, timeouts, retries, stateful inspects and health checks. Never a
re-assembly of the adapters here: a test of an assembly the product does not use would pass
with the product's broken."""

from __future__ import annotations

from pathlib import Path

from stackwarden.model import Finding, Profile, Snapshot
from stackwarden.pipeline import observe_all, run_audit
from stackwarden.profiles import load_profile


def observe(profile: Profile) -> Snapshot:
    """The shipped observation of every runtime (``pipeline.observe_all``)."""
    return observe_all(profile)


def audit(profile_path: Path) -> tuple[Profile, Snapshot, dict[str, Finding]]:
    """The shipped audit of ``profile_path``: its profile, snapshot and findings by id."""
    profile = load_profile(profile_path)
    outcome = run_audit(profile)
    return profile, outcome.snapshot, {f.id: f for f in outcome.result.findings}
