"""Gather preflight facts: every check that changes nothing, before a switch's first step, and
for each mode section of the audit's report.

Kept apart from the pure evaluation (``stackwarden.preflight``) so the checks run the same from
the switch, the audit and a test. A check that cannot run is a failure too (``errors``):
unknown is not "passed".
"""

from __future__ import annotations

from pathlib import Path

from stackwarden.adapters.compose import compose_config
from stackwarden.adapters.docker import missing_images
from stackwarden.adapters.host import executable_exists, unit_exists, unit_restart_setting
from stackwarden.errors import StackwardenError
from stackwarden.model.plan import Plan, ScaleWorkload
from stackwarden.model.profile import ComposeSpec, Profile
from stackwarden.preflight import (
    ComposeFacts,
    PreflightFacts,
    PreflightNeeds,
    failures,
    images_needed,
    needs,
    parse_compose_model,
)


def _compose_facts(spec: ComposeSpec) -> ComposeFacts:
    """Files exist, and ``docker compose config`` parses them into a model."""
    base = Path(spec.working_dir) if spec.working_dir else Path.cwd()
    missing = tuple(f for f in spec.files if not (base / f).is_file())
    if missing:
        return ComposeFacts(project=spec.project, missing_files=missing)
    try:
        model = compose_config(spec.project, spec.files, spec.working_dir)
    except StackwardenError as exc:
        return ComposeFacts(project=spec.project, error=str(exc)[-500:])
    return ComposeFacts(project=spec.project, services=parse_compose_model(model))


ComposeCache = dict[str, ComposeFacts]
"""``docker compose config`` of each project, kept for the plans of one audit (three modes)."""


def compose_facts_of(profile: Profile) -> ComposeCache:
    """``docker compose config`` of every compose project of the profile: it needs nothing but
    the profile, so an audit reads it while it observes instead of after (a subprocess of a
    few hundred milliseconds off the audit's critical path)."""
    return {spec.project: _compose_facts(spec) for spec in profile.compose_projects}


def gather(plan: Plan, profile: Profile, wanted: PreflightNeeds, cache: ComposeCache | None = None) -> PreflightFacts:
    """Run every check ``wanted`` lists; none of them changes anything."""
    errors: list[str] = []
    known = cache if cache is not None else {}
    for spec in wanted.compose:
        if spec.project not in known:
            known[spec.project] = _compose_facts(spec)
    compose = tuple(known[spec.project] for spec in wanted.compose)
    images: dict[str, str] = {}
    needed = images_needed(wanted, compose)
    if needed:
        try:
            images = missing_images(needed, profile.timeouts)
        except StackwardenError as exc:
            errors.append(f"images {', '.join(sorted(needed))}: {exc}")
    denied: list[str] = []
    if wanted.access and profile.kubernetes is not None:
        from stackwarden.adapters.kubernetes import access_denials  # the client loads only for a cluster side

        context = next((s.context for s in plan.steps if isinstance(s, ScaleWorkload)), None)
        try:
            denied = access_denials(profile.kubernetes, context, list(wanted.access), profile.timeouts)
        except StackwardenError as exc:
            errors.append(f"kubernetes access reviews: {exc}")
    units: list[str] = []
    restart: dict[str, str] = {}
    for unit in wanted.units:
        try:
            if not unit_exists(unit):
                units.append(unit)
            elif unit in wanted.graceful_units:
                restart[unit] = unit_restart_setting(unit)
        except StackwardenError as exc:
            errors.append(str(exc))
    return PreflightFacts(
        compose=compose,
        missing_images=images,
        access_denied=tuple(denied),
        missing_units=tuple(units),
        unit_restart=restart,
        missing_executables=tuple(e for e in wanted.executables if not executable_exists(e)),
        errors=tuple(errors),
    )


def preflight(plan: Plan, profile: Profile, cache: ComposeCache | None = None) -> list[str]:
    """Every failing check for ``plan``, each one line; empty when it may proceed."""
    if not plan.steps:
        return []
    wanted = needs(plan, profile)
    return failures(plan, profile, wanted, gather(plan, profile, wanted, cache))
