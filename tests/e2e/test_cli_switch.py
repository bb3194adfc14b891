"""`stackwarden switch` from the command line: dry run by default, --apply asks on a terminal,
refuses to act unasked without one."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import IMAGE, free_ports, host_listener

pytestmark = [pytest.mark.docker, pytest.mark.prefect]


def _profile(tmp_path: Path, name: str, compose_file: Path, port: int) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "compose": {"project": name, "files": [str(compose_file)]},
                "services": {"postgres": {"ports": [port], "stateful": True, "host": {"executables": ["postgres"]}}},
            }
        )
    )
    return path


def _cli(args: list[str], tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``stackwarden ARGS`` off a terminal (stdin closed), in the test's own Prefect home."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=timeout,
        check=False,
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return env


def test_apply_asks_on_a_terminal_and_no_changes_nothing(tmp_path: Path, docker_engine: None) -> None:
    (port,) = free_ports(1)
    name = unique_name("swtest-tty")
    with (
        host_listener("postgres", "127.0.0.1", port) as host_pg,
        compose_project(tmp_path, name, {"postgres": tcp_service(5432, f"127.0.0.1:{port}:5432")}) as project,
    ):
        profile = _profile(tmp_path, name, project.file, port)
        primary, secondary = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "switch", "compose-only", "--profile", str(profile), "--apply"],
            stdin=secondary,
            stdout=secondary,
            stderr=subprocess.DEVNULL,
            env=_env(tmp_path),
            start_new_session=True,
        )
        os.close(secondary)
        screen = b""
        deadline = time.monotonic() + 120
        try:
            while b"[y/N]" not in screen:
                assert time.monotonic() < deadline, f"no question on the terminal: {screen.decode(errors='replace')}"
                if select.select([primary], [], [], 1)[0]:
                    screen += os.read(primary, 4096)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)  # with the ephemeral Prefect server it started
            raise
        os.write(primary, b"n\n")
        assert proc.wait(60) == 0
        text = screen.decode(errors="replace")
        assert "stop-process" in text and f"PID {host_pg.pid}" in text and "start-container" in text
        assert host_pg.poll() is None  # answered no: nothing changed
        os.close(primary)


def test_apply_without_yes_off_a_terminal_is_refused(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    profile = _profile(tmp_path, "swtest-notty", tmp_path / "compose.yaml", port)
    result = _cli(["switch", "compose-only", "--profile", str(profile), "--apply"], tmp_path, timeout=60)
    assert result.returncode == 2
    assert "--apply without --yes needs a terminal" in result.stderr


def test_a_paused_container_in_the_target_runtime_is_refused_not_nothing_to_do(
    tmp_path: Path, docker_engine: None
) -> None:
    """``docker pause`` leaves a container "running" to Docker and serving nothing. Planning no
    step for it said "Nothing to do: the host is already in this mode" over a service that was
    down; the switch refuses instead (exit 4), names the container and changes nothing."""
    (port,) = free_ports(1)
    name = unique_name("swtest-paused")
    with compose_project(tmp_path, name, {"postgres": tcp_service(5432, f"127.0.0.1:{port}:5432")}) as project:
        container = project.inspect("postgres")["Name"].lstrip("/")
        subprocess.run(["docker", "pause", container], check=True, capture_output=True, timeout=30)
        profile = _profile(tmp_path, name, project.file, port)
        result = _cli(["switch", "compose-only", "--profile", str(profile), "--apply", "--yes"], tmp_path)
        assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
        assert f"container {container} is paused" in result.stdout + result.stderr
        assert f"docker unpause {container}" in result.stdout + result.stderr
        assert "Nothing to do" not in result.stdout
        assert project.inspect("postgres")["State"]["Paused"], "a refused switch changed the container"


def test_a_service_up_on_another_port_than_the_profile_says_is_no_all_clear(
    tmp_path: Path, docker_engine: None
) -> None:
    """The compose file publishes port P+1, the profile says P: the container is up, nothing
    conflicts, and clients of P are refused. The audit says so (port-unserved, exit 1) and an
    applied switch fails verification instead of "passed"."""
    port, other = free_ports(2)
    name = unique_name("swtest-drift")
    with compose_project(tmp_path, name, {"postgres": tcp_service(5432, f"127.0.0.1:{other}:5432")}) as project:
        profile = _profile(tmp_path, name, project.file, port)
        audit = _cli(["audit", "--profile", str(profile), "--no-record", "--json"], tmp_path, timeout=120)
        assert audit.returncode == 1, audit.stderr[-2000:]
        findings = {f["id"]: f for f in json.loads(audit.stdout)["findings"]}
        assert f"port-unserved:{port}" in findings, sorted(findings)
        assert f"127.0.0.1:{other}->5432" in findings[f"port-unserved:{port}"]["summary"]
        switch = _cli(
            ["switch", "compose-only", "--profile", str(profile), "--apply", "--yes", "--deadline", "5"], tmp_path
        )
        assert switch.returncode == 1, switch.stdout[-2000:] + switch.stderr[-2000:]
        assert f"postgres: port {port} is served by nothing" in switch.stdout
        assert project.inspect("postgres")["State"]["Running"], "there was nothing to change or undo"


def test_a_service_that_answers_every_client_with_an_error_is_no_all_clear(tmp_path: Path, docker_engine: None) -> None:
    """A real httpd is up on the profile's port and answers 404 on the profile's health URL:
    the container runs, the port is held, nothing conflicts. The audit runs the health check
    and reports it (exit 1), as verify would."""
    (port,) = free_ports(1)
    name = unique_name("swtest-health")
    httpd = {"image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"]}
    httpd["ports"] = [f"127.0.0.1:{port}:8080"]
    with compose_project(tmp_path, name, {"api": httpd}) as project:
        profile = tmp_path / "p.yaml"
        health = {"http": f"http://127.0.0.1:{port}/no-such-status"}
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {"api": {"ports": [port], "health": health}},
                }
            )
        )
        audit = _cli(["audit", "--profile", str(profile), "--no-record", "--json"], tmp_path, timeout=120)
        assert audit.returncode == 1, audit.stderr[-2000:]
        findings = {f["id"]: f for f in json.loads(audit.stdout)["findings"]}
        assert "404" in findings["health-failing:api"]["summary"], sorted(findings)

        # the same check on a file the container serves (Docker writes /etc/hostname): 200, all clear
        profile.write_text(profile.read_text().replace("/no-such-status", "/hostname"))
        again = _cli(["audit", "--profile", str(profile), "--no-record", "--json"], tmp_path, timeout=120)
        after = [(f["id"], f["severity"]) for f in json.loads(again.stdout)["findings"] if f["severity"] != "ok"]
        assert again.returncode == 0 and after == [], (after, again.stderr[-2000:])
