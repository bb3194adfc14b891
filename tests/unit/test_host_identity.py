"""Which host process is a service: its executable file and owner decide, never its name alone
(stackwarden.identity), and a process that claims a service's name but is not it is reported with
why, left alone by every plan, and a foreign owner on a profile port."""

from __future__ import annotations

from typing import Any

import pytest

from stackwarden.errors import ProfileError
from stackwarden.identity import host_identity
from stackwarden.model import HostContext, Listener, Mode, ProcessInfo
from stackwarden.model.plan import StopProcess
from stackwarden.placement import stack_view
from stackwarden.planner import plan
from stackwarden.profiles import parse_profile
from stackwarden.rules import diagnose
from tests.support.builders import HOST_CONTEXT, PORTS, process, profile_data, snapshot

NOBODY = 65534
PG = "/usr/lib/postgresql/15/bin/postgres"


def _profile(**worker_host: Any) -> Any:
    """The seed profile plus a port-less worker (host executable ``swworker``)."""
    data = profile_data()
    data["services"]["worker"] = {"host": {"executables": ["swworker"], **worker_host}, "no_home": "stop"}
    return parse_profile(data, "<test>")


def _nobody(pid: int, name: str, exe: str, argv0: str | None = None) -> ProcessInfo:
    return process(pid, name, (argv0 or name,), exe=exe, uid=NOBODY, user="nobody")


def _why(profile: Any, service: str, proc: ProcessInfo, context: HostContext | None = HOST_CONTEXT) -> str | None:
    identity = host_identity(profile, service, proc, context)
    assert identity.claims, "every process in these tests claims the service's name"
    return identity.refusal


def test_argv0_and_comm_never_make_a_process_the_service() -> None:
    profile = _profile()
    exec_a = process(10, "sleep", ("postgres", "1000"), exe="/usr/bin/sleep")  # exec -a postgres sleep 1000
    renamed = process(11, "postgres", ("python3", "-c", "..."), exe="/usr/bin/python3.11")  # PR_SET_NAME
    assert _why(profile, "postgres", exec_a) == (
        "named postgres but runs /usr/bin/sleep as root: /usr/bin/sleep is not an executable named postgres"
    )
    assert "runs /usr/bin/python3.11 as root" in (_why(profile, "postgres", renamed) or "")
    assert _why(profile, "postgres", process(12, "postgres", exe=PG)) is None  # the real one


def test_another_users_process_is_refused_and_the_reason_names_file_and_user() -> None:
    profile = _profile()
    impostor = _nobody(20, "sleep", "/usr/bin/sleep", argv0="postgres")
    why = _why(profile, "postgres", impostor) or ""
    assert why.startswith("named postgres but runs /usr/bin/sleep as nobody: ")
    assert "not an executable named postgres" in why and "nobody is not root, the user stackwarden runs as" in why
    real_pg_of_nobody = _nobody(21, "postgres", PG)
    assert "nobody is not root" in (_why(profile, "postgres", real_pg_of_nobody) or "")
    # run by someone else than root, root's own process is the other user's
    as_alice = HOST_CONTEXT.model_copy(update={"uid": 1000, "user": "alice"})
    assert "root is not alice" in (_why(profile, "postgres", process(22, "postgres", exe=PG), as_alice) or "")
    assert _why(profile, "postgres", process(23, "postgres", exe=PG, uid=1000, user="alice"), as_alice) is None


@pytest.mark.parametrize("user", ["nobody", NOBODY, ["postgres", "nobody"], [NOBODY]])
def test_a_user_the_profile_names_is_taken_and_only_that_user(user: object) -> None:
    data = profile_data()
    data["services"]["postgres"]["host"]["user"] = user
    profile = parse_profile(data, "<test>")
    assert _why(profile, "postgres", _nobody(30, "postgres", PG)) is None
    roots = _why(profile, "postgres", process(31, "postgres", exe=PG)) or ""
    assert "root is not " in roots and "(services.postgres.host.user)" in roots  # `user` is exact, not "also"


def test_debians_redis_server_symlink_is_the_service_through_the_installed_file() -> None:
    profile = _profile()
    redis = process(40, "redis-server", ("/usr/bin/redis-server 127.0.0.1:6379",), exe="/usr/bin/redis-check-rdb")
    assert _why(profile, "redis", redis) is None  # /usr/bin/redis-server -> redis-check-rdb on this host
    elsewhere = HOST_CONTEXT.model_copy(update={"executables": {"redis-server": ("/usr/bin/redis-server",)}})
    assert "/usr/bin/redis-check-rdb is not an executable named redis-server" in (
        _why(profile, "redis", redis, elsewhere) or ""
    )


def test_an_exe_constraint_replaces_the_base_name_rule() -> None:
    data = profile_data()
    data["services"]["redis"]["host"]["exe"] = "/usr/bin/redis-server"
    profile = parse_profile(data, "<test>")
    context = HOST_CONTEXT.model_copy(update={"executables": {"/usr/bin/redis-server": ("/usr/bin/redis-check-rdb",)}})
    packaged = process(50, "redis-server", exe="/usr/bin/redis-check-rdb")
    own_build = process(51, "redis-server", exe="/opt/redis/bin/redis-server")  # the right base name, not the file
    assert _why(profile, "redis", packaged, context) is None
    assert _why(profile, "redis", own_build, context) == (
        "named redis-server but runs /opt/redis/bin/redis-server as root: /opt/redis/bin/redis-server is not "
        "/usr/bin/redis-server (services.redis.host.exe)"
    )


def test_unreadable_setuid_and_containerised_processes_are_not_the_service() -> None:
    profile = _profile()
    unreadable = process(60, "postgres", exe=PG).model_copy(update={"exe": None})
    setuid = process(61, "postgres", exe=PG).model_copy(update={"uids": (NOBODY, 0, 0), "uid": NOBODY})
    context = HOST_CONTEXT.model_copy(update={"mount_namespace": "mnt:[1]"})
    contained = process(62, "postgres", exe=PG).model_copy(update={"mount_namespace": "mnt:[2]"})
    assert "its executable cannot be read" in (_why(profile, "postgres", unreadable) or "")
    assert "real, effective and saved uids differ (65534, 0, 0)" in (_why(profile, "postgres", setuid) or "")
    assert "another mount namespace (a container's)" in (_why(profile, "postgres", contained, context) or "")
    at_home = contained.model_copy(update={"mount_namespace": "mnt:[1]"})
    assert _why(profile, "postgres", at_home, context) is None
    # without a context (who runs stackwarden unknown), no process is anyone's own
    assert "the user stackwarden runs as is unknown" in (_why(profile, "postgres", at_home, None) or "")


def test_a_portless_service_takes_only_real_own_processes_and_the_plan_says_why_not() -> None:
    profile = _profile()
    real = process(70, "swworker", exe="/srv/bin/swworker")
    impostor = process(71, "sleep", ("swworker", "1000"), exe="/usr/bin/sleep")
    others = _nobody(72, "swworker", "/srv/bin/swworker")
    snap = snapshot(processes=(real, impostor, others))
    placement = stack_view(snap, profile).placements["worker"]
    assert placement.processes == (real,)
    assert [p.pid for p, _ in placement.passed_over] == [71, 72]
    k8s = plan(snap, profile, Mode.K8S_ONLY)  # the worker has no home there: no_home stop
    stops = [s for s in k8s.steps if isinstance(s, StopProcess)]
    assert [s.pid for s in stops] == [70]
    notes = "\n".join(k8s.notes)
    assert "worker: PID 71 is left alone, not taken for worker: named swworker but runs /usr/bin/sleep as root" in notes
    assert (
        "worker: PID 72 is left alone, not taken for worker: named swworker but runs /srv/bin/swworker as nobody"
        in (notes)
    )
    findings = {f.id: f for f in diagnose(snap, profile)}
    assert "host-process-not-service:worker:72" in findings and "host-process-not-service:worker:70" not in findings
    assert "nobody is not root" in findings["host-process-not-service:worker:72"].summary


def test_an_impostor_on_a_profile_port_is_a_foreign_owner_and_refuses_the_plan_with_why() -> None:
    profile = _profile()
    port = PORTS["postgres"]
    impostor = _nobody(80, "sleep", "/usr/bin/sleep", argv0="postgres")
    snap = snapshot(listeners=(Listener(address="127.0.0.1", port=port, pid=80),), processes=(impostor,))
    (owner,) = stack_view(snap, profile).port_owners[port]
    assert not owner.in_profile and owner.passed_over is not None
    refusal = "\n".join(plan(snap, profile, Mode.COMPOSE_ONLY).refusals)
    assert (
        f"port {port} is held by process sleep (PID 80), which is not the profile's service (named postgres but "
        in (refusal)
    )
    assert "runs /usr/bin/sleep as nobody" in refusal and "services.postgres.host.exe / .user" in refusal
    finding = {f.id: f for f in diagnose(snap, profile)}[f"port-foreign-owner:{port}"]
    assert "named postgres but runs /usr/bin/sleep as nobody" in finding.summary
    assert "named postgres but runs /usr/bin/sleep as nobody" in finding.recommendation


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ({"exe": "bin/redis"}, "give an absolute, normalised path"),
        ({"exe": "/usr/../bin/redis"}, "give an absolute, normalised path"),
        ({"exe": "//usr/bin/redis"}, "give an absolute, normalised path"),
        ({"exe": []}, "give at least one path"),
        ({"user": "1000"}, "is not a user name"),
        ({"user": "bad name"}, "is not a user name"),
        ({"user": -1}, "out of range"),
        ({"user": []}, "give at least one user"),
        ({"user": True}, "user"),
        ({"executables": ["/usr/bin/redis-server"]}, "paths go in 'exe'"),
    ],
)
def test_bad_exe_and_user_are_refused_naming_the_field(host: dict[str, object], message: str) -> None:
    data = profile_data()
    data["services"]["redis"]["host"].update(host)
    with pytest.raises(ProfileError, match=message) as info:
        parse_profile(data, "<test>")
    assert "services.redis.host." in str(info.value)


def test_one_value_or_a_list_mean_the_same() -> None:
    data = profile_data()
    data["services"]["redis"]["host"].update(exe="/usr/bin/redis-server", user="redis")
    data["services"]["postgres"]["host"].update(exe=[PG], user=["postgres", 5432])
    profile = parse_profile(data, "<test>")
    assert profile.services["redis"].host is not None and profile.services["redis"].host.user == ("redis",)
    assert profile.services["redis"].host.exe == ("/usr/bin/redis-server",)
    assert profile.services["postgres"].host is not None and profile.services["postgres"].host.user == (
        "postgres",
        5432,
    )


def test_the_host_lookup_searches_portless_services_and_resolves_every_name_and_path() -> None:
    profile = _profile(exe="/srv/bin/swworker")
    lookup = profile.host_lookup()
    assert lookup.search == ("/srv/bin/swworker", "swworker")
    assert set(lookup.resolve) == {
        "/srv/bin/swworker",
        "swworker",
        "postgres",
        "redis-server",
        "reconciliation-backend",
    }


def test_an_interpreter_run_worker_is_pinned_by_exe_and_user_and_other_pythons_are_no_news() -> None:
    profile = _profile(exe="/usr/bin/python3.11", user="celery")
    worker = process(90, "swworker", ("/usr/bin/python3", "/srv/bin/swworker"), exe="/usr/bin/python3.11", uid=999)
    worker = worker.model_copy(update={"user": "celery"})
    alices_python = process(91, "python3", exe="/usr/bin/python3.11", uid=1000, user="alice")
    nobodys_worker = _nobody(92, "swworker", "/usr/bin/python3.11")
    placement = stack_view(snapshot(processes=(worker, alices_python, nobodys_worker)), profile).placements["worker"]
    assert placement.processes == (worker,)
    # alice's python runs the worker's file but looks nothing like it: not a finding, not a note
    assert [p.pid for p, _ in placement.passed_over] == [92]


def test_a_non_root_run_refuses_to_plan_a_stop_the_kernel_would_refuse() -> None:
    data = profile_data()
    data["services"]["postgres"]["host"]["user"] = "postgres"
    profile = parse_profile(data, "<test>")
    port = PORTS["postgres"]
    packaged = process(95, "postgres", exe=PG, uid=106, user="postgres")
    listeners = (Listener(address="127.0.0.1", port=port, pid=95),)
    as_alice = HOST_CONTEXT.model_copy(update={"uid": 1000, "user": "alice"})
    refusals = plan(
        snapshot(listeners=listeners, processes=(packaged,), host_context=as_alice), profile, Mode.COMPOSE_ONLY
    )
    assert any(
        "postgres: PID 95 runs as postgres, and stackwarden runs as alice, who may not signal it" in r
        for r in refusals.refusals
    )
    as_root = plan(snapshot(listeners=listeners, processes=(packaged,)), profile, Mode.COMPOSE_ONLY)
    assert not any("may not signal it" in r for r in as_root.refusals)
    assert [s.pid for s in as_root.steps if isinstance(s, StopProcess)] == [95]
