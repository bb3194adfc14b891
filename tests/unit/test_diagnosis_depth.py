"""The crash-loop finding quotes the decisive line, names a missing dependency with its state,
and gives advice that fits the category (a missing setting is set where the service runs)."""

from __future__ import annotations

from stackwarden.model import CrashCategory, Severity
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, container, profile, snapshot

REFUSED = f"Error: connect ECONNREFUSED 127.0.0.1:{PORTS['postgres']}"


def _backend_refused(networks: tuple[str, ...] = ("host",)) -> object:
    """A host-networked backend (its 127.0.0.1 is the host's) refused on postgres' host port."""
    return container(
        "backend", "restarting", exit_code=1, restart_count=4, logs=("> node server.js", REFUSED), networks=networks
    )


def test_connection_refused_on_a_free_port_names_the_stopped_service_and_how_to_start_it() -> None:
    pg = container("postgres", "exited", exit_code=0)
    findings = {f.id: f for f in diagnose(snapshot(containers=(_backend_refused(), pg)), profile())}  # type: ignore[arg-type]
    crash = findings["crash-loop:backend"]
    root = findings["service-unavailable:postgres:compose"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN
    assert crash.summary.startswith("backend crashes because postgres is stopped (exited, exit code 0)")
    assert crash.caused_by == root.id and crash.chain == ("backend", "postgres")
    assert crash.severity is root.severity is Severity.HIGH  # the dependency's own severity, not a critical code bug
    assert root.dependents == ("backend",) and "backend fails because of it" in root.summary
    assert "owned by nobody" not in crash.summary and "free the port" not in crash.recommendation.lower()
    assert crash.action == "Fix postgres first"
    assert "docker compose -p seedstack -f /srv/seed/compose.yaml start postgres" in crash.commands
    assert any(REFUSED in e for e in crash.evidence)


def test_a_bridged_container_refused_on_its_own_loopback_is_told_so() -> None:
    """127.0.0.1 inside a container on a compose network is the container itself: postgres is not
    down, the address is wrong, and nothing is started."""
    pg = container("postgres", "running")
    backend = _backend_refused(networks=("seedstack_default",))
    crash = {f.id: f for f in diagnose(snapshot(containers=(backend, pg)), profile())}["crash-loop:backend"]  # type: ignore[arg-type]
    assert crash.cause is not None and crash.cause.category is CrashCategory.CONFIGURATION
    assert "inside its container that address is its container itself" in crash.summary
    assert crash.caused_by is None
    assert not [c for c in crash.commands if " start " in c or " up " in c]


def test_a_missing_dependency_without_a_container_is_created_with_compose_up() -> None:
    findings = {f.id: f for f in diagnose(snapshot(containers=(_backend_refused(),)), profile())}  # type: ignore[arg-type]
    crash = findings["crash-loop:backend"]
    assert "backend crashes because postgres has no container in compose project seedstack" in crash.summary
    assert crash.commands[0] == "docker compose -p seedstack -f /srv/seed/compose.yaml up -d postgres"


def test_a_traceback_finding_quotes_the_final_exception_and_advises_setting_the_variable() -> None:
    logs = (
        "Traceback (most recent call last):",
        '  File "/app/settings.py", line 9, in <module>',
        '    DATABASE_URL = os.environ["DATABASE_URL"]',
        '  File "<frozen os>", line 679, in __getitem__',
        "KeyError: 'DATABASE_URL'",
    )
    backend = container("backend", "restarting", exit_code=1, restart_count=3, logs=logs)
    crash = {f.id: f for f in diagnose(snapshot(containers=(backend,)), profile())}["crash-loop:backend"]
    assert crash.severity is Severity.CRITICAL
    assert crash.cause is not None and crash.cause.category is CrashCategory.CONFIGURATION
    assert crash.cause.alternative is CrashCategory.CODE_ISSUE and crash.cause.setting == "DATABASE_URL"
    assert any("KeyError: 'DATABASE_URL'" in e for e in crash.evidence)
    assert any('File "<frozen os>", line 679' in e for e in crash.evidence)  # the frame before it
    assert "KeyError: 'DATABASE_URL'" in crash.summary
    assert "Set DATABASE_URL for backend under services.backend.environment" in crash.recommendation
    assert "Fix the code" not in crash.recommendation
    assert "docker compose -p seedstack -f /srv/seed/compose.yaml up -d backend" in crash.commands


def test_a_running_container_between_crashes_reports_its_last_death() -> None:
    from datetime import UTC, datetime

    from stackwarden.model import ContainerDeath

    backend = container(
        "backend", "running", restart_count=5, logs=("thread 'main' panicked at 'boom', src/main.rs:1:1",)
    )
    backend = backend.model_copy(
        update={"uptime_seconds": 1.5, "last_death": ContainerDeath(exit_code=101, at=datetime.now(UTC))}
    )
    crash = {f.id: f for f in diagnose(snapshot(containers=(backend,)), profile())}["crash-loop:backend"]
    assert crash.cause is not None and crash.cause.exit_code == 101
    assert "exit code 101" in crash.summary and "None" not in crash.summary


def test_a_missing_cluster_dependency_is_named_with_ready_of_desired_and_scaled_up() -> None:
    from stackwarden.model import KubeObservation, KubeServicePort, KubeServiceState, KubeWorkloadState, PodState

    def workload(name: str, replicas: int) -> KubeWorkloadState:
        return KubeWorkloadState(
            kind="Deployment",
            name=name,
            namespace="seedstack",
            uid=name,
            resource_version="1",
            replicas=replicas,
            selector={"app": name},
        )

    refused = f"Error: connect ECONNREFUSED 10.96.0.12:{PORTS['postgres']}"
    pod = PodState(
        name="backend-1",
        namespace="seedstack",
        uid="b1",
        phase="Running",
        labels={"app": "backend"},
        waiting_reason="CrashLoopBackOff",
        restart_count=4,
        last_exit_code=1,
        log_tail=(refused,),
    )
    from tests.support.builders import profile_data

    data = profile_data(default_mode="k8s-only")
    data["services"]["postgres"]["kubernetes"] = {"name": "postgres", "replicas": 1}
    prof = profile(**data)
    service = KubeServiceState(
        name="postgres",
        namespace="seedstack",
        type="ClusterIP",
        cluster_ip="10.96.0.12",
        ports=(KubeServicePort(port=PORTS["postgres"]),),
        selector={"app": "postgres"},
    )
    kube = KubeObservation(
        namespace="seedstack",
        workloads=(workload("backend", 1), workload("postgres", 0)),
        pods=(pod,),
        services=(service,),
    )
    findings = {f.id: f for f in diagnose(snapshot(kubernetes=kube), prof)}
    crash = findings["crash-loop:backend"]
    assert crash.summary.startswith("backend crashes because postgres is scaled to 0")
    assert f"10.96.0.12:{PORTS['postgres']}, the Kubernetes Service of postgres" in crash.summary
    assert crash.caused_by == "service-unavailable:postgres:kubernetes"
    assert crash.commands[0] == "kubectl -n seedstack scale deployment/postgres --replicas=1"
    assert crash.action == "Fix postgres first"


def test_a_dependency_up_only_in_the_cluster_is_not_started_twice() -> None:
    from stackwarden.model import KubeObservation, KubeWorkloadState, PodState
    from tests.support.builders import profile_data

    data = profile_data()
    data["services"]["postgres"]["kubernetes"] = {"name": "postgres"}
    prof = profile(**data)
    workload = KubeWorkloadState(
        kind="Deployment",
        name="postgres",
        namespace="seedstack",
        uid="pg",
        resource_version="1",
        replicas=1,
        ready_replicas=1,
        selector={"app": "postgres"},
    )
    pod = PodState(
        name="postgres-1", namespace="seedstack", uid="p1", phase="Running", labels={"app": "postgres"}, ready=True
    )
    kube = KubeObservation(namespace="seedstack", workloads=(workload,), pods=(pod,))
    crash = {f.id: f for f in diagnose(snapshot(containers=(_backend_refused(),), kubernetes=kube), prof)}[  # type: ignore[arg-type]
        "crash-loop:backend"
    ]
    assert "runs only in kubernetes" in crash.summary and "is not running" not in crash.summary
    assert not [c for c in crash.commands if " start " in c or " up " in c or "scale" in c]
    assert "one runtime" in crash.recommendation
