"""Preflight: everything checkable is checked before step 1, every failure listed in one refusal.

Pure: which checks a plan needs (``needs``), and what the gathered facts mean for it
(``failures``). Gathering the facts (``docker compose config``, image lookups, access reviews,
unit and executable lookups) is I/O and lives in ``stackwarden.adapters.preflight``; none of it
changes anything. A switch that fails preflight has changed nothing, so it ends "refused".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from stackwarden.model.base import Frozen, Mode, Runtime
from stackwarden.model.plan import ComposeUp, Plan, ScaleWorkload, StartContainer, StopProcess
from stackwarden.model.profile import ComposeSpec, Profile
from stackwarden.planner import target_runtime

_WORKLOAD_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets"}

RESTARTS_AFTER_CLEAN_EXIT = frozenset({"always", "on-success"})
"""systemd ``Restart=`` values under which a unit whose main process exits cleanly is started
again: a stop by ``systemctl kill`` would not hold."""


def unit_restart_problem(unit: str, restart: str) -> str | None:
    """Why a stateful service's unit cannot be stopped without a SIGKILL, or None.

    ``systemctl stop`` SIGKILLs what is left after TimeoutStopSec, so a stateful unit is stopped
    by its clean signal through ``systemctl kill`` and waited for; under ``Restart=always`` (or
    ``on-success``) systemd would start it again at once, so that is refused instead."""
    if restart not in RESTARTS_AFTER_CLEAN_EXIT:
        return None
    return (
        f"systemd unit {unit} has Restart={restart}: after its clean stop signal systemd would start it again, "
        "and `systemctl stop` SIGKILLs a stateful service after TimeoutStopSec, so stackwarden stops it neither "
        "way; give the unit Restart=on-failure (a drop-in) or stop it yourself"
    )


class ComposeService(Frozen):
    """One service of a resolved compose model: what ``up`` would need for it."""

    name: str
    image: str | None = None
    build: bool = False
    depends_on: tuple[str, ...] = ()


class ComposeFacts(Frozen):
    """One compose project as preflight found it."""

    project: str
    missing_files: tuple[str, ...] = ()
    error: str | None = Field(default=None, description="Why `docker compose config` failed, if it did.")
    services: dict[str, ComposeService] = Field(default_factory=dict)


class PreflightNeeds(Frozen):
    """What a plan needs checked before its first step."""

    compose: tuple[ComposeSpec, ...] = ()
    compose_services: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per project, the compose services the plan starts."
    )
    access: tuple[tuple[str, str, str, str], ...] = Field(
        default=(), description="(verb, API group, resource, name) the identity must be allowed."
    )
    units: tuple[str, ...] = ()
    graceful_units: tuple[str, ...] = Field(
        default=(), description="Units of stateful services: stopped by systemctl kill, their Restart= is checked."
    )
    executables: tuple[str, ...] = ()


class PreflightFacts(Frozen):
    """What the checks found. ``errors`` are checks that could not run at all: they fail too."""

    compose: tuple[ComposeFacts, ...] = ()
    missing_images: dict[str, str] = Field(default_factory=dict, description="image -> what to do about it")
    access_denied: tuple[str, ...] = ()
    missing_units: tuple[str, ...] = ()
    unit_restart: dict[str, str] = Field(default_factory=dict, description="unit -> its Restart= setting")
    missing_executables: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def needs(plan: Plan, profile: Profile) -> PreflightNeeds:
    """The checks ``plan`` needs: compose projects it starts services of, the Kubernetes verbs
    its scale steps use, the systemd units it stops through, the executables its undo would run."""
    starting: dict[str, list[str]] = {}
    for step in plan.steps:
        if isinstance(step, ComposeUp):
            starting.setdefault(step.project, []).extend(step.services)
        elif isinstance(step, StartContainer):
            project = profile.compose_for(step.service).project
            starting.setdefault(project, []).append(profile.compose_service_name(step.service))
    projects = tuple(p for p in profile.compose_projects if p.project in starting)
    access: list[tuple[str, str, str, str]] = []
    for step in plan.steps:
        if isinstance(step, ScaleWorkload):
            resource = _WORKLOAD_RESOURCES[step.workload_kind]
            access += [("get", "apps", resource, step.name), ("patch", "apps", resource, step.name)]
    stops = [s for s in plan.steps if isinstance(s, StopProcess)]
    return PreflightNeeds(
        compose=projects,
        compose_services={k: tuple(dict.fromkeys(v)) for k, v in starting.items()},
        access=tuple(dict.fromkeys(access)),
        units=tuple(dict.fromkeys(s.systemd_unit for s in stops if s.systemd_unit)),
        graceful_units=tuple(dict.fromkeys(s.systemd_unit for s in stops if s.systemd_unit and s.stateful)),
        executables=tuple(dict.fromkeys(s.start_command[0] for s in stops if s.start_command and not s.systemd_unit)),
    )


def parse_compose_model(model: Mapping[str, Any]) -> dict[str, ComposeService]:
    """The services of ``docker compose config --format json``: image, build, dependencies."""
    out = {}
    for name, raw in (model.get("services") or {}).items():
        body = raw if isinstance(raw, Mapping) else {}
        deps = body.get("depends_on") or {}
        out[str(name)] = ComposeService(
            name=str(name),
            image=str(body["image"]) if body.get("image") else None,
            build=bool(body.get("build")),
            depends_on=tuple(sorted(str(d) for d in (deps if isinstance(deps, Mapping | list) else []))),
        )
    return out


def images_needed(needs_: PreflightNeeds, facts: Iterable[ComposeFacts]) -> dict[str, str]:
    """image -> the compose service that needs it, for the services the plan brings up. A
    service that builds its image and names none gets Compose's default name (PROJECT-SERVICE)."""
    out: dict[str, str] = {}
    for project in facts:
        for name in needs_.compose_services.get(project.project, ()):
            service = project.services.get(name)
            if service is None:
                continue
            image = service.image or (f"{project.project}-{name}" if service.build else None)
            if image:
                out.setdefault(image, f"{project.project}/{name}")
    return out


def _owner_of(profile: Profile, project: str, compose_name: str) -> str | None:
    """The profile service that a compose service of ``project`` is, if any."""
    return next(
        (
            name
            for name in profile.services
            if profile.compose_for(name).project == project and profile.compose_service_name(name) == compose_name
        ),
        None,
    )


def _compose_failures(plan: Plan, profile: Profile, needs_: PreflightNeeds, facts: PreflightFacts) -> list[str]:
    out = []
    for project in facts.compose:
        out += [f"compose project {project.project}: file {f} does not exist" for f in project.missing_files]
        if project.error:
            out.append(f"compose project {project.project}: `docker compose config` failed: {project.error}")
            continue
        if project.missing_files:
            continue
        for name in needs_.compose_services.get(project.project, ()):
            service = project.services.get(name)
            if service is None:
                out.append(f"compose project {project.project}: the compose files define no service {name!r}")
                continue
            for dep in service.depends_on:
                owner = _owner_of(profile, project.project, dep)
                if owner is None:
                    out.append(
                        f"compose service {name} depends_on {dep!r}, which the profile does not name: stackwarden "
                        "starts only the planned services (up --no-deps); add it to the profile or drop the dependency"
                    )
                elif target_runtime(profile, plan.mode, owner) is not Runtime.COMPOSE:
                    out.append(
                        f"compose service {name} depends_on {dep!r} (profile service {owner}), which {plan.mode} "
                        f"does not run under Compose; the dependency would be missing"
                    )
    return out


def health_url_problems(profile: Profile, mode: Mode) -> list[str]:
    """Health URLs that verify could not use: a scheme other than http(s), no host, a bad port."""
    out = []
    for name, spec in profile.services.items():
        if spec.health is None or spec.health.http is None or target_runtime(profile, mode, name) is None:
            continue
        url = spec.health.http
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            out.append(f"services.{name}.health.http {url!r} is not a well-formed URL: {exc}")
            continue
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            out.append(f"services.{name}.health.http {url!r} needs http(s)://HOST[:PORT]/PATH")
        elif port == 0:
            out.append(f"services.{name}.health.http {url!r}: port 0")
    return out


def failures(plan: Plan, profile: Profile, needs_: PreflightNeeds, facts: PreflightFacts) -> list[str]:
    """Every failing check, each naming the file, image, verb, unit or executable it is about."""
    out = [f"preflight could not check: {e}" for e in facts.errors]
    out += _compose_failures(plan, profile, needs_, facts)
    out += [
        f"image {image} is not present on this host: {what}" for image, what in sorted(facts.missing_images.items())
    ]
    out += [f"kubernetes: the identity {d} (SelfSubjectAccessReview)" for d in facts.access_denied]
    out += [f"systemd unit {u} does not exist on this host" for u in facts.missing_units]
    out += [
        problem
        for unit, restart in sorted(facts.unit_restart.items())
        if unit in needs_.graceful_units and (problem := unit_restart_problem(unit, restart))
    ]
    out += [f"start_command executable {e} does not exist or is not executable" for e in facts.missing_executables]
    out += health_url_problems(profile, plan.mode)
    return [f"preflight: {line}" for line in dict.fromkeys(out)]
