"""Who a root-run switch may stop, on real processes: identity is the executable file and the
owner (stackwarden.identity), never a name. Processes of ``nobody`` are started with
``subprocess`` ``user=``; impostors with ``exec -a`` (argv[0]) and PR_SET_NAME (comm). Switches
run in process through the switch-mode flow (flows.switch.run_switch)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.switch import run_switch
from stackwarden.model.plan import StopProcess, SwitchStatus
from stackwarden.pipeline import observe_all
from stackwarden.placement import stack_view
from stackwarden.profiles import bundled_profile_path, load_profile
from stackwarden.rules import diagnose
from tests.support.compose import Project, compose_project, unique_name
from tests.support.datastores import DatastoreUnavailable, postgres_os_user, postgres_server
from tests.support.realparts import IMAGE, free_ports, listening, redis_server, require, stop, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

NOBODY = {"user": 65534, "group": 65534, "extra_groups": []}
PYTHON = "/usr/bin/python3"  # a system interpreter nobody may run (the test's own may live under /root)

_RENAMED = """
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode()[:15], 0, 0, 0)  # PR_SET_NAME: comm says the name too
print("ready", flush=True)
time.sleep(3600)
"""

_RENAMED_LISTENER = """
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode()[:15], 0, 0, 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
s.listen(8)
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def executables() -> Iterator[Path]:
    """A directory every user may read, for executables named after a test's service."""
    directory = Path(tempfile.mkdtemp(prefix="sw-identity-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _sleeper(directory: Path, name: str) -> str:
    """``/usr/bin/sleep`` under the service's name (a hard link, else a copy): the real thing."""
    path = directory / name
    if not path.exists():
        try:
            os.link("/usr/bin/sleep", path)
        except OSError:
            shutil.copy2("/usr/bin/sleep", path)
    return str(path)


@contextlib.contextmanager
def _processes(*specs: tuple[list[str], dict[str, Any]]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start each (argv with its Popen options) and wait until each runs its final program."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for argv, options in specs:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **options)
            procs.append(proc)
            if "-c" in argv:  # a python stand-in says when its comm is set
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield procs
    finally:
        for proc in procs:
            stop(proc)


def _worker_profile(path: Path, project: Project, exe: str, **host: Any) -> Path:
    data = {
        "name": project.name,
        "compose": {"project": project.name, "files": [str(project.file)]},
        "services": {"worker": {"host": {"executables": [exe], **host}}},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def worker_project(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One compose project whose worker already runs: compose-only only has to stop the host's."""
    worker = {"image": IMAGE, "command": ["sleep", "3600"], "init": True}
    tmp = tmp_path_factory.mktemp("identity")
    with compose_project(tmp, unique_name("swtest-identity"), {"worker": worker}) as project:
        yield project


def test_roots_switch_stops_its_own_worker_and_leaves_nobodys_and_impostors_running(
    tmp_path: Path, executables: Path, worker_project: Project, prefect_server: None
) -> None:
    exe = f"swid{os.getpid() % 100000}"
    real = _sleeper(executables, exe)
    with _processes(
        ([real, "3600"], {}),  # root's own worker: the service
        ([real, "3600"], NOBODY),  # the very same file, run by nobody
        ([exe, "3600"], {"executable": "/usr/bin/sleep"}),  # exec -a: argv[0] says the name
        ([exe, "-c", _RENAMED, exe], {"executable": PYTHON}),  # argv[0] and comm both say it
    ) as (own, nobodys, exec_a, renamed):
        profile = _worker_profile(tmp_path / "p.yaml", worker_project, exe)
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=60)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        wait_for(lambda: own.poll() is not None, 10, "root's own worker to exit")
        time.sleep(0.5)
        assert nobodys.poll() is None and exec_a.poll() is None and renamed.poll() is None
        notes = "\n".join(outcome.plan.notes)
        assert f"PID {nobodys.pid} is left alone, not taken for worker: named {exe} but runs {real} as nobody" in notes
        assert "nobody is not root, the user stackwarden runs as" in notes
        assert f"PID {exec_a.pid} is left alone, not taken for worker: named {exe} but runs /usr/bin/sleep as root" in (
            notes
        )
        python = os.path.realpath(PYTHON)
        assert f"PID {renamed.pid} is left alone, not taken for worker: named {exe} but runs {python} as root" in notes
        assert [s.pid for s in outcome.plan.steps if isinstance(s, StopProcess)] == [own.pid]


def test_a_profile_that_names_nobody_stops_nobodys_worker_and_only_that(
    tmp_path: Path, executables: Path, worker_project: Project, prefect_server: None
) -> None:
    exe = f"swnb{os.getpid() % 100000}"
    real = _sleeper(executables, exe)
    with _processes(([real, "3600"], NOBODY), ([real, "3600"], {})) as (nobodys, roots):
        profile = _worker_profile(tmp_path / "p.yaml", worker_project, exe, user="nobody")
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=60)
        assert outcome.status is SwitchStatus.SWITCHED, outcome.message
        wait_for(lambda: nobodys.poll() is not None, 10, "nobody's worker to exit")
        assert roots.poll() is None  # `user` is who may be stopped: root's own is not nobody
        assert f"PID {roots.pid} is left alone" in "\n".join(outcome.plan.notes)
        assert "root is not nobody (services.worker.host.user)" in "\n".join(outcome.plan.notes)


def test_nobodys_real_redis_and_an_impostor_on_profile_ports_refuse_the_switch_and_say_why(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    redis_exe = shutil.which("redis-server")
    require(redis_exe is not None, "redis-server (apt package redis-server) is not installed")
    assert redis_exe is not None
    redis_port, pg_port = free_ports(2)
    name = unique_name("swtest-foreign")
    redis_argv = [redis_exe, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with (
        compose_project(tmp_path, name, {"redis": {"image": IMAGE, "command": ["sleep", "3600"]}}) as project,
        _processes(
            ([*redis_argv, "--dir", "/tmp"], NOBODY),
            (["postgres", "-c", _RENAMED_LISTENER, "postgres", str(pg_port)], {"executable": PYTHON, **NOBODY}),
        ) as (redis, impostor),
    ):
        wait_for(lambda: listening(redis_port), 10, "nobody's redis-server")
        profile = tmp_path / "p.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {
                        "redis": {"ports": [redis_port], "stateful": True, "host": {"executables": ["redis-server"]}},
                        "postgres": {"ports": [pg_port], "stateful": True, "host": {"executables": ["postgres"]}},
                    },
                }
            )
        )
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True)
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        assert outcome.journal == ()
        resolved = os.path.realpath(redis_exe)  # Debian: /usr/bin/redis-check-rdb
        assert (
            f"port {redis_port} is held by process redis-server (PID {redis.pid}), which is not the profile's "
            f"service (named redis-server but runs {resolved} as nobody: nobody is not root"
        ) in outcome.message
        assert f"named postgres but runs {os.path.realpath(PYTHON)} as nobody" in outcome.message
        assert redis.poll() is None and impostor.poll() is None
        # the audit says the same, as the foreign owner's finding
        loaded = load_profile(profile)
        findings = {f.id: f for f in diagnose(observe_all(loaded), loaded)}
        foreign = findings[f"port-foreign-owner:{redis_port}"]
        assert f"named redis-server but runs {resolved} as nobody" in foreign.summary


def test_the_bundled_profile_takes_real_postgres_and_redis_servers(tmp_path: Path, docker_engine: None) -> None:
    """Debian's redis-server is a symlink to redis-check-rdb; postgres runs as its own user and is
    taken once the profile names that user."""
    pg_port, redis_port = free_ports(2)
    data: dict[str, Any] = yaml.safe_load(bundled_profile_path().read_text())
    data.pop("kubernetes")
    data["services"] = {name: data["services"][name] for name in ("postgres", "redis")}
    data["services"]["postgres"]["ports"] = [pg_port]
    data["services"]["redis"]["ports"] = [redis_port]
    data["services"]["postgres"].pop("health")
    data["services"]["redis"].pop("health")
    path = tmp_path / "bundled.yaml"
    try:
        stack = contextlib.ExitStack()
        pg = stack.enter_context(postgres_server(tmp_path / "pg", pg_port))
    except DatastoreUnavailable as exc:
        require(False, str(exc))
    with stack, redis_server(redis_port, "127.0.0.1") as redis:
        path.write_text(yaml.safe_dump(data))
        profile = load_profile(path)
        view = stack_view(observe_all(profile), profile)
        assert [p.pid for p in view.placements["redis"].processes] == [redis.pid]
        pg_user = postgres_os_user()
        if pg_user != pwd.getpwuid(os.geteuid()).pw_name:  # as root: the server runs as postgres, never as root
            (passed,) = view.placements["postgres"].passed_over
            assert passed[0].pid == pg.pid and f"{pg_user} is not root, the user stackwarden runs as" in passed[1]
            data["services"]["postgres"]["host"]["user"] = pg_user
            path.write_text(yaml.safe_dump(data))
            profile = load_profile(path)
            view = stack_view(observe_all(profile), profile)
        assert [p.pid for p in view.placements["postgres"].processes] == [pg.pid]
