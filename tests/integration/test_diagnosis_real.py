"""Diagnosis depth on real containers: a crash loop diagnosed 200 times in a row while it
restarts, a dependency whose compose service is stopped, and a stack of two compose projects
with a port-less worker (in compose and on the host)."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.model import CrashCategory, Runtime
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose
from tests.integration.audit_helpers import observe
from tests.support.compose import compose_project, tcp_service, unique_name, wait_restarts
from tests.support.realparts import IMAGE, free_ports, listening, named_interpreter, run, stop, wait_for

pytestmark = pytest.mark.docker

TRACEBACK = (
    "Traceback (most recent call last):",
    '  File "/app/settings.py", line 9, in <module>',
    '    DATABASE_URL = os.environ["DATABASE_URL"]',
    '  File "<frozen os>", line 679, in __getitem__',
    "KeyError: 'DATABASE_URL'",
)


def _echo(lines: tuple[str, ...]) -> str:
    return "; ".join(f"echo {shlex.quote(line)}" for line in lines)


def _profile(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_crash_loop_is_diagnosed_200_times_in_a_row_while_it_restarts(docker_engine: None, tmp_path: Path) -> None:
    """The container runs 11 s between crashes (Docker then resets its back-off), so most
    observations catch it running, when the engine has no exit code: the die events keep it."""
    script = f"echo 'INFO starting api'; sleep 11; {_echo(TRACEBACK)}; exit 1"
    api = {"image": IMAGE, "command": ["sh", "-c", script], "restart": "always", "init": True}
    (port,) = free_ports(1)
    name = unique_name("swtest-loop")
    with compose_project(tmp_path, name, {"api": api}) as project:
        profile = load_profile(
            _profile(
                tmp_path / "profile.yaml",
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {"api": {"ports": [port]}},
                },
            )
        )
        wait_restarts(project, "api", at_least=1, timeout=40)
        restarts_before = int(project.inspect("api")["RestartCount"])
        phases: Counter[str] = Counter()
        # 200 observations in a row, and on until it has restarted while watched (a fast machine
        # makes 200 in less than one 11 s run), each with the right cause and exit code
        attempt, deadline = 0, time.monotonic() + 90
        while attempt < 200 or (
            int(project.inspect("api")["RestartCount"]) <= restarts_before and time.monotonic() < deadline
        ):
            attempt += 1
            snapshot = observe(profile)
            container = next(c for c in snapshot.containers if c.compose_project == name)
            phases[container.state] += 1
            findings = {f.id: f for f in diagnose(snapshot, profile)}
            crash = findings.get("crash-loop:api")
            assert crash is not None, (attempt, container)
            cause = crash.cause
            assert cause is not None
            assert (cause.category, cause.setting, cause.exit_code) == (
                CrashCategory.CONFIGURATION,
                "DATABASE_URL",
                1,
            ), (
                attempt,
                container.state,
                cause,
            )
            assert "exit code 1" in crash.locations[0].detail and "None" not in crash.summary, crash.summary
            assert any("KeyError: 'DATABASE_URL'" in line for line in crash.evidence)
        print(f"\n{attempt} observations of a restarting crash loop, by state: {dict(phases)}")
        assert attempt >= 200
        assert phases["running"] > 0  # the hard case (no exit code in the engine's state) was seen
        assert int(project.inspect("api")["RestartCount"]) > restarts_before  # it restarted while we watched


def test_a_stopped_compose_dependency_is_named_with_its_state_and_started_by_the_advice(
    docker_engine: None, tmp_path: Path
) -> None:
    pg_port, api_port = free_ports(2)
    probe = (
        f"if nc -w 2 127.0.0.1 {pg_port} </dev/null 2>&1 | grep -q refused; "
        f"then echo 'Error: connect ECONNREFUSED 127.0.0.1:{pg_port}'; exit 1; fi; "
        "echo 'connected to postgres'; exec sleep 3600"
    )
    services = {
        "postgres": tcp_service(5432, f"127.0.0.1:{pg_port}:5432"),
        "backend": {"image": IMAGE, "command": ["sh", "-c", probe], "restart": "always", "network_mode": "host"},
    }
    name = unique_name("swtest-dep")
    with compose_project(tmp_path, name, services) as project:
        project.compose("stop", "postgres")
        project.compose("restart", "backend")  # it connected while postgres was up: start it again
        wait_restarts(project, "backend", at_least=1)
        profile_path = _profile(
            tmp_path / "profile.yaml",
            {
                "name": name,
                "compose": {"project": name, "files": [str(project.file)]},
                "services": {"backend": {"ports": [api_port]}, "postgres": {"ports": [pg_port], "stateful": True}},
            },
        )
        profile = load_profile(profile_path)
        findings = {f.id: f for f in diagnose(observe(profile), profile)}
        crash = findings["crash-loop:backend"]
        pg_state = project.inspect("postgres")["State"]
        pg_name = project.inspect("postgres")["Name"].lstrip("/")
        root = findings["service-unavailable:postgres:compose"]
        assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN
        assert crash.cause.dependency is not None and crash.cause.dependency.port == pg_port
        assert crash.caused_by == root.id and root.dependents == ("backend",)
        assert crash.summary.startswith(
            f"backend crashes because postgres is stopped (exited, exit code {pg_state['ExitCode']})"
        )
        assert any(pg_name in line for line in root.evidence)
        assert "free the port" not in crash.recommendation.lower() and "nobody" not in crash.summary
        assert crash.action == "Fix postgres first"

        # the advice is the root's command, and it resolves it on this host
        start = next(c for c in crash.commands if c.endswith("start postgres"))
        assert start == root.commands[-1]
        assert start.endswith(f"-f {project.file} start postgres")
        run(shlex.split(start))
        wait_for(lambda: listening(pg_port), 20, "postgres to listen again")
        after = {f.id for f in diagnose(observe(profile), profile)}
        assert "service-unavailable:postgres:compose" not in after


@contextlib.contextmanager
def _named_process(name: str) -> Iterator[subprocess.Popen[str]]:
    """A real host process of an executable named ``name`` that listens on nothing (a worker)."""
    code = (
        "import ctypes, sys, time\n"
        "ctypes.CDLL(None).prctl(15, sys.argv[1].encode()[:15], 0, 0, 0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(3600)\n"
    )
    proc = subprocess.Popen([named_interpreter(name), "-c", code, name], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        stop(proc)


def test_two_compose_projects_and_portless_workers_are_each_placed_right(docker_engine: None, tmp_path: Path) -> None:
    web_port, pg_port = free_ports(2)
    app, data = unique_name("swtest-app"), unique_name("swtest-data")
    worker = {"image": IMAGE, "command": ["sleep", "3600"], "init": True}
    exe = f"swworker{web_port % 10000}"  # a name no other process on the host has
    with contextlib.ExitStack() as stack:
        app_project = stack.enter_context(
            compose_project(tmp_path, app, {"web": tcp_service(1000, f"127.0.0.1:{web_port}:1000"), "worker": worker})
        )
        data_project = stack.enter_context(
            compose_project(tmp_path, data, {"postgres": tcp_service(5432, f"127.0.0.1:{pg_port}:5432")})
        )
        host_worker = stack.enter_context(_named_process(exe))
        wait_for(lambda: listening(web_port) and listening(pg_port), 20, "web and postgres to listen")
        profile = load_profile(
            _profile(
                tmp_path / "profile.yaml",
                {
                    "name": app,
                    "default_mode": "hybrid-guarded",
                    "compose": [
                        {"project": app, "files": [str(app_project.file)]},
                        {"project": data, "files": [str(data_project.file)], "services": ["postgres"]},
                    ],
                    "services": {
                        "web": {"ports": [web_port], "runtime": "compose"},
                        "worker": {"runtime": "compose"},
                        "postgres": {"ports": [pg_port], "stateful": True, "runtime": "compose"},
                        "scheduler": {"host": {"executables": [exe]}, "runtime": "host"},
                    },
                },
            )
        )
        snapshot = observe(profile)
        findings = {f.id: f for f in diagnose(snapshot, profile)}
    from stackwarden.placement import stack_view

    view = stack_view(snapshot, profile)
    assert [c.compose_project for c in view.placements["worker"].containers] == [app]
    assert [c.compose_project for c in view.placements["postgres"].containers] == [data]
    assert [c.compose_project for c in view.placements["web"].containers] == [app]
    assert [p.pid for p in view.placements["scheduler"].processes] == [host_worker.pid]
    assert view.placements["scheduler"].runtimes == (Runtime.HOST,)
    assert view.placements["worker"].runtimes == (Runtime.COMPOSE,)
    # each service runs once, where the profile says: no duplicate, nothing missing, nothing broken
    assert "dual-deployment" not in findings
    assert not [f for f in findings if f.startswith(("service-unavailable:", "crash-loop:", "port-"))], findings
