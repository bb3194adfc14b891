"""Which mode to suggest, with reasons: requested > profile default > what the host shows."""

from __future__ import annotations

from stackwarden.model.base import CrashCategory, Mode, Runtime
from stackwarden.model.finding import Finding, ModeRecommendation
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import stack_view

_MODE_RUNTIME = {Mode.COMPOSE_ONLY: Runtime.COMPOSE, Mode.K8S_ONLY: Runtime.KUBERNETES}


def recommend_mode(
    snapshot: Snapshot,
    profile: Profile,
    findings: tuple[Finding, ...],
    requested: Mode | None = None,
) -> ModeRecommendation:
    """Suggest a mode. A requested mode wins; otherwise the profile's default, unless the
    runtime it needs is unreachable, in which case the reachable runtime running the most
    services is suggested. Code-issue crash loops are named because no mode fixes them."""
    reasons: list[str] = []
    view = stack_view(snapshot, profile)
    counts = {
        runtime: sum(1 for p in view.placements.values() if runtime in p.runtimes)
        for runtime in (Runtime.COMPOSE, Runtime.KUBERNETES)
    }
    if requested is not None:
        mode = requested
        reasons.append(f"{mode} was requested.")
    else:
        mode = profile.default_mode
        reasons.append(f"{mode} is the profile's default mode.")
        needed = _MODE_RUNTIME.get(mode)
        if needed is not None and not snapshot.reachable(needed):
            reachable = [r for r in counts if snapshot.reachable(r)]
            if reachable:
                best = max(reachable, key=lambda r: counts[r])
                mode = Mode.COMPOSE_ONLY if best is Runtime.COMPOSE else Mode.K8S_ONLY
                reasons.append(f"{needed} is unreachable, so {mode} is suggested instead.")
    for runtime, count in counts.items():
        if snapshot.reachable(runtime):
            reasons.append(f"{count} of {len(profile.services)} services are deployed under {runtime}.")
    code_issues = [
        f.services[0]
        for f in findings
        if f.cause is not None and f.cause.category is CrashCategory.CODE_ISSUE and f.services
    ]
    if code_issues:
        reasons.append(
            "Crash loops from code issues (" + ", ".join(code_issues) + ") continue in any mode: fix the code."
        )
    return ModeRecommendation(mode=mode, reasons=tuple(reasons))
