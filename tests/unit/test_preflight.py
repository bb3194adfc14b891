"""Preflight's pure half: what a plan needs checked, and every failure named in one list; the
plan digest follows content, not ids; make before break orders the steps."""

from __future__ import annotations

from stackwarden.model import KubeContext, KubeObservation, KubeWorkloadState, Mode
from stackwarden.model.plan import ComposeUp, ScaleWorkload, StopProcess
from stackwarden.planner import plan
from stackwarden.preflight import (
    ComposeFacts,
    PreflightFacts,
    failures,
    health_url_problems,
    images_needed,
    needs,
    parse_compose_model,
)
from tests.support.builders import profile, seed_snapshot, snapshot


def _cluster(replicas: int) -> KubeObservation:
    ctx = KubeContext(name="kind-dev", server="https://127.0.0.1:6443", allowed=True, current=True)
    backend = KubeWorkloadState(
        kind="Deployment",
        name="backend",
        namespace="seedstack",
        uid="u1",
        resource_version="1",
        replicas=replicas,
        selector={"app": "backend"},
    )
    return KubeObservation(context=ctx, namespace="seedstack", workloads=(backend,))


def test_needs_names_projects_verbs_and_units_of_the_plan() -> None:
    snap = seed_snapshot().model_copy(update={"kubernetes": _cluster(2)})
    prof = profile()
    the_plan = plan(snap, prof, Mode.COMPOSE_ONLY)
    wanted = needs(the_plan, prof)
    assert [p.project for p in wanted.compose] == ["seedstack"]
    assert wanted.compose_services == {"seedstack": ("postgres",)}  # the created container is started
    assert ("patch", "apps", "deployments", "backend") in wanted.access
    assert ("get", "apps", "deployments", "backend") in wanted.access


def test_every_failure_is_listed_once_with_what_it_is_about() -> None:
    the_plan = plan(snapshot(), profile(), Mode.COMPOSE_ONLY)  # nothing runs: one compose up
    (up,) = [s for s in the_plan.steps if isinstance(s, ComposeUp)]
    prof = profile()
    wanted = needs(the_plan, prof)
    model = {
        "services": {
            "backend": {"image": "app/backend:1", "depends_on": {"migrator": {"condition": "service_started"}}},
            "frontend": {"build": {"context": "."}},
            "postgres": {"image": "postgres:16"},
        }
    }
    compose = (ComposeFacts(project=up.project, services=parse_compose_model(model)),)
    assert images_needed(wanted, compose) == {
        "app/backend:1": "seedstack/backend",
        "seedstack-frontend": "seedstack/frontend",
        "postgres:16": "seedstack/postgres",
    }
    facts = PreflightFacts(
        compose=compose,
        missing_images={"postgres:16": "needed by seedstack/postgres; pull it"},
        access_denied=("may not patch deployments/backend in seedstack",),
        missing_units=("redis-server.service",),
        missing_executables=("/opt/redis/bin/redis-server",),
    )
    out = failures(the_plan, prof, wanted, facts)
    assert all(line.startswith("preflight: ") for line in out)
    text = "\n".join(out)
    assert "compose service backend depends_on 'migrator', which the profile does not name" in text
    assert "compose project seedstack: the compose files define no service 'redis'" in text
    assert "image postgres:16 is not present on this host" in text
    assert "kubernetes: the identity may not patch deployments/backend in seedstack" in text
    assert "systemd unit redis-server.service does not exist" in text
    assert "start_command executable /opt/redis/bin/redis-server does not exist" in text
    missing_file = PreflightFacts(compose=(ComposeFacts(project="seedstack", missing_files=("/srv/x.yml",)),))
    assert failures(the_plan, prof, wanted, missing_file) == [
        "preflight: compose project seedstack: file /srv/x.yml does not exist"
    ]


def test_a_dependency_the_mode_does_not_run_under_compose_is_refused() -> None:
    prof = profile()
    the_plan = plan(snapshot(), prof, Mode.HYBRID_GUARDED)  # redis, postgres: compose; the rest: k8s
    wanted = needs(the_plan, prof)
    model = {"services": {"redis": {"image": "r"}, "postgres": {"image": "p", "depends_on": ["backend"]}}}
    facts = PreflightFacts(compose=(ComposeFacts(project="seedstack", services=parse_compose_model(model)),))
    text = "\n".join(failures(the_plan, prof, wanted, facts))
    assert "compose service postgres depends_on 'backend' (profile service backend), which hybrid-guarded" in text


def test_health_urls_must_be_well_formed() -> None:
    from stackwarden.model.profile import HealthCheck

    prof = profile()
    bad = prof.services["backend"].model_copy(update={"health": HealthCheck(http="http://:99999/health")})
    prof = prof.model_copy(update={"services": {**prof.services, "backend": bad}})
    (problem,) = health_url_problems(prof, Mode.COMPOSE_ONLY)
    assert problem.startswith("services.backend.health.http 'http://:99999/health'")


def test_the_digest_follows_the_content_of_every_step_not_its_id() -> None:
    snap = seed_snapshot()
    first = plan(snap, profile(), Mode.COMPOSE_ONLY)
    again = plan(snap, profile(), Mode.COMPOSE_ONLY)
    assert first.digest == again.digest and len(first.digest) == 64
    stop = next(s for s in first.steps if isinstance(s, StopProcess))
    changed = first.model_copy(
        update={"steps": tuple(s.model_copy(update={"grace_seconds": 1.0}) if s is stop else s for s in first.steps)}
    )
    assert [s.id for s in changed.steps] == [s.id for s in first.steps]
    assert changed.digest != first.digest


def test_compose_only_from_the_cluster_starts_compose_first_then_scales_down() -> None:
    snap = snapshot(kubernetes=_cluster(2))
    the_plan = plan(snap, profile(), Mode.COMPOSE_ONLY)
    assert the_plan.applicable, the_plan.refusals
    kinds = [(s.kind, s.phase) for s in the_plan.steps]
    assert kinds == [("compose-up", "make"), ("scale-workload", "break")]
    assert isinstance(the_plan.steps[1], ScaleWorkload) and the_plan.steps[1].replicas == 0


def test_a_port_held_by_the_old_owner_is_freed_before_the_new_one_starts() -> None:
    the_plan = plan(seed_snapshot(), profile(), Mode.COMPOSE_ONLY)
    phases = {(s.kind, getattr(s, "name", "")): s.phase for s in the_plan.steps}
    assert phases[("start-container", "seedstack-postgres-1")] == "start"  # a host postgres holds its port
    assert all(phase == "break" for (kind, _), phase in phases.items() if kind == "stop-process")


def test_a_refusal_before_any_change_ends_refused_not_rolled_back() -> None:
    from datetime import UTC, datetime

    from stackwarden.model.plan import StepResult, StepStatus
    from stackwarden.run.switch import refused_before_any_change

    now = datetime.now(UTC)

    def result(status: StepStatus) -> StepResult:
        return StepResult(step_id="s", status=status, started=now, ended=now, duration_seconds=0.0)

    step = plan(seed_snapshot(), profile(), Mode.COMPOSE_ONLY).steps[0]
    assert refused_before_any_change([], [result(StepStatus.REFUSED)])  # e.g. a 403 on the first write
    assert not refused_before_any_change([], [result(StepStatus.FAILED)])  # may have half-happened
    assert not refused_before_any_change([step], [result(StepStatus.APPLIED), result(StepStatus.REFUSED)])
    # a step that found its target as wanted did nothing: a refusal after it still changed nothing
    assert refused_before_any_change([], [result(StepStatus.SKIPPED), result(StepStatus.REFUSED)])
    assert not refused_before_any_change([], [result(StepStatus.SKIPPED)])


def test_a_stateful_containers_image_cannot_choose_sigkill() -> None:
    from stackwarden.model.profile import clean_stop_signal

    assert [clean_stop_signal(s) for s in ("SIGKILL", "9", "KILL", "SIGSTOP", None)] == ["SIGTERM"] * 5
    assert [clean_stop_signal(s) for s in ("SIGINT", "SIGQUIT", "15")] == ["SIGINT", "SIGQUIT", "SIGTERM"]


def test_units_under_a_user_manager_are_never_system_units() -> None:
    from stackwarden.observe import systemd_unit_from_cgroup

    user = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/redis-server.service\n"
    assert systemd_unit_from_cgroup(user) is None
    assert systemd_unit_from_cgroup("0::/system.slice/redis-server.service\n") == "redis-server.service"


def test_flow_duration_parameters_are_finite_and_bounded() -> None:
    """A deployment run takes its parameters from the UI or the API, not from the CLI's parser:
    a NaN or infinite deadline would poll forever while holding the switch's locks."""
    from flows.switch import parameter_problems

    assert parameter_problems(120.0, 3600, 0.0) == []
    for bad in (float("nan"), float("inf"), 0.0, -1.0, 1e9):
        (problem,) = parameter_problems(bad, 3600, 0.0)
        assert problem.startswith("deadline_seconds=")
    assert parameter_problems(1.0, float("nan"), float("nan"))[0].startswith("approval_timeout_seconds=")
    assert len(parameter_problems(1.0, 1.0, -0.5)) == 1 and parameter_problems(1.0, 1.0, 0.0) == []
