"""Preflight's pure half, one check at a time: no failing check hides another, every workload the
plan scales has its verbs reviewed, the Restart= check is held to stateful units only, health
URLs are read whole. Written against the surviving mutants of the mutation check
(docs/testing.md): each test fails when one of those checks is dropped, inverted or cut short."""

from __future__ import annotations

from stackwarden.model import KubeContext, KubeObservation, KubeWorkloadState, Mode
from stackwarden.model.plan import Plan
from stackwarden.model.profile import HealthCheck, Profile
from stackwarden.model.steps import StopProcess
from stackwarden.planner import plan
from stackwarden.preflight import (
    ComposeFacts,
    ComposeService,
    PreflightFacts,
    PreflightNeeds,
    failures,
    health_url_problems,
    images_needed,
    needs,
)
from tests.support.builders import deployment, profile, seed_snapshot, snapshot


def _cluster(*workloads: KubeWorkloadState) -> KubeObservation:
    ctx = KubeContext(name="kind-dev", server="https://127.0.0.1:6443", allowed=True, current=True)
    return KubeObservation(context=ctx, namespace="seedstack", workloads=workloads)


def _stop(
    name: str, *, unit: str | None = None, stateful: bool = False, start: tuple[str, ...] | None = None
) -> StopProcess:
    """A stop step as the planner builds it (the seed's host redis), renamed and re-targeted."""
    seed_stop = next(s for s in plan(seed_snapshot(), profile(), Mode.COMPOSE_ONLY).steps if isinstance(s, StopProcess))
    return seed_stop.model_copy(
        update={"id": f"stop-{name}", "name": name, "systemd_unit": unit, "stateful": stateful, "start_command": start}
    )


def test_every_scaled_workload_has_its_verbs_reviewed() -> None:
    snap = snapshot(kubernetes=_cluster(deployment("backend", 2), deployment("frontend", 3)))
    wanted = needs(plan(snap, profile(), Mode.COMPOSE_ONLY), profile())
    assert set(wanted.access) == {
        (verb, "apps", "deployments", name) for verb in ("get", "patch") for name in ("backend", "frontend")
    }


def test_units_executables_and_graceful_units_come_from_the_right_stops() -> None:
    the_plan = Plan(
        profile="seedstack",
        mode=Mode.COMPOSE_ONLY,
        steps=(
            _stop("postgres", unit="postgresql.service", stateful=True),
            _stop("worker", unit="worker.service"),
            _stop("redis-server", start=("/opt/redis/bin/redis-server", "/etc/redis.conf")),
        ),
    )
    wanted = needs(the_plan, profile())
    assert wanted.units == ("postgresql.service", "worker.service")
    assert wanted.graceful_units == ("postgresql.service",)
    assert wanted.executables == ("/opt/redis/bin/redis-server",)


def test_a_check_that_could_not_run_is_listed_beside_every_other_failure() -> None:
    the_plan = plan(snapshot(), profile(), Mode.COMPOSE_ONLY)
    wanted = needs(the_plan, profile())
    facts = PreflightFacts(
        errors=("access reviews timed out",),
        compose=(ComposeFacts(project="seedstack", missing_files=("/srv/x.yml",)),),
    )
    assert failures(the_plan, profile(), wanted, facts) == [
        "preflight: preflight could not check: access reviews timed out",
        "preflight: compose project seedstack: file /srv/x.yml does not exist",
    ]


def test_restart_always_is_refused_for_a_stateful_unit_only() -> None:
    the_plan = Plan(profile="seedstack", mode=Mode.COMPOSE_ONLY)
    wanted = PreflightNeeds(units=("postgresql.service", "worker.service"), graceful_units=("postgresql.service",))
    facts = PreflightFacts(unit_restart={"postgresql.service": "always", "worker.service": "always"})
    (problem,) = failures(the_plan, profile(), wanted, facts)
    assert problem.startswith("preflight: systemd unit postgresql.service has Restart=always")
    fine = PreflightFacts(unit_restart={"postgresql.service": "on-failure"})
    assert failures(the_plan, profile(), wanted, fine) == []


def _with_health(prof: Profile, **urls: str) -> Profile:
    services = {
        name: spec.model_copy(update={"health": HealthCheck(http=urls[name])}) if name in urls else spec
        for name, spec in prof.services.items()
    }
    return prof.model_copy(update={"services": services})


def test_every_health_url_is_checked_whole() -> None:
    prof = _with_health(
        profile(),
        backend="http://[::1/health",  # not a URL at all
        frontend="https:///no-host",
        postgres="http:///no-host",
        redis="http://127.0.0.1:0/",
    )
    assert health_url_problems(prof, Mode.COMPOSE_ONLY) == [
        "services.backend.health.http 'http://[::1/health' is not a well-formed URL: Invalid IPv6 URL",
        "services.frontend.health.http 'https:///no-host' needs http(s)://HOST[:PORT]/PATH",
        "services.postgres.health.http 'http:///no-host' needs http(s)://HOST[:PORT]/PATH",
        "services.redis.health.http 'http://127.0.0.1:0/': port 0",
    ]


def test_good_health_urls_pass_and_a_service_the_mode_does_not_run_is_not_checked() -> None:
    good = _with_health(profile(), backend="https://127.0.0.1:8443/health", frontend="http://localhost/")
    assert health_url_problems(good, Mode.COMPOSE_ONLY) == []
    unassigned = (
        profile().services["redis"].model_copy(update={"runtime": None, "health": HealthCheck(http="http:///x")})
    )
    prof = profile().model_copy(update={"services": {**profile().services, "redis": unassigned}})
    assert health_url_problems(prof, Mode.HYBRID_GUARDED) == []
    assert health_url_problems(prof, Mode.COMPOSE_ONLY) == [
        "services.redis.health.http 'http:///x' needs http(s)://HOST[:PORT]/PATH"
    ]


def test_a_health_url_problem_is_a_preflight_failure_of_the_plans_mode() -> None:
    # no runtime of its own in hybrid, so only the plan's mode (k8s-only) gives it one to check
    unassigned = profile().services["redis"].model_copy(update={"runtime": None})
    prof = _with_health(profile().model_copy(update={"services": {"redis": unassigned}}), redis="http://127.0.0.1:0/")
    the_plan = Plan(profile="seedstack", mode=Mode.K8S_ONLY)
    assert failures(the_plan, prof, PreflightNeeds(), PreflightFacts()) == [
        "preflight: services.redis.health.http 'http://127.0.0.1:0/': port 0"
    ]


def test_one_broken_compose_project_does_not_hide_the_next() -> None:
    the_plan = Plan(profile="seedstack", mode=Mode.COMPOSE_ONLY)
    wanted = PreflightNeeds(compose_services={"one": ("api",), "two": ("web",), "three": ("db",)})
    facts = PreflightFacts(
        compose=(
            ComposeFacts(project="one", error="yaml: line 3"),
            ComposeFacts(project="two", missing_files=("/srv/two.yml",)),
            ComposeFacts(project="three", services={}),
        )
    )
    assert failures(the_plan, profile(), wanted, facts) == [
        "preflight: compose project one: `docker compose config` failed: yaml: line 3",
        "preflight: compose project two: file /srv/two.yml does not exist",
        "preflight: compose project three: the compose files define no service 'db'",
    ]


def test_a_service_the_files_do_not_define_does_not_hide_the_next_ones() -> None:
    wanted = PreflightNeeds(compose_services={"seedstack": ("ghost", "backend", "frontend", "worker")})
    services = {
        "backend": ComposeService(name="backend", image="app/backend:1"),
        "frontend": ComposeService(name="frontend", build=True),
        "worker": ComposeService(name="worker", depends_on=("migrator",)),  # no image, no build: no lookup
    }
    facts = ComposeFacts(project="seedstack", services=services)
    assert images_needed(wanted, [facts]) == {
        "app/backend:1": "seedstack/backend",
        "seedstack-frontend": "seedstack/frontend",
    }
    the_plan = Plan(profile="seedstack", mode=Mode.COMPOSE_ONLY)
    assert failures(the_plan, profile(), wanted, PreflightFacts(compose=(facts,))) == [
        "preflight: compose project seedstack: the compose files define no service 'ghost'",
        "preflight: compose service worker depends_on 'migrator', which the profile does not name: stackwarden "
        "starts only the planned services (up --no-deps); add it to the profile or drop the dependency",
    ]
