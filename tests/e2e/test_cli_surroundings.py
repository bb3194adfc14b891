"""Failures of the surroundings through the real CLI: each is one line on stderr with a hint and
the documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackwarden.errors import environment_hint
from tests.support.builders import profile_data
from tests.support.realparts import free_ports

pytestmark = pytest.mark.prefect


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env.update(extra)
    return env


def _profile(tmp_path: Path, **kubernetes: object) -> Path:
    data = profile_data()
    data["services"] = {"web": {"ports": [free_ports(1)[0]]}}
    if kubernetes:
        data["kubernetes"] = {"namespace": "x", **kubernetes}
    else:
        data.pop("kubernetes")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _stackwarden_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("stackwarden:")]


def test_unwritable_prefect_home_is_one_line_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = _env(tmp_path, PREFECT_HOME=str(blocker / "home"))
    result = _cli(["audit", "--record", "--profile", str(_profile(tmp_path))], env)
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1
    (line,) = _stackwarden_lines(result.stderr)
    assert f"PREFECT_HOME {blocker / 'home'} is not a writable directory" in line and "hint: set PREFECT_HOME" in line


def test_a_dead_prefect_api_url_is_one_line_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_ports(1)[0]}/api"
    result = _cli(["audit", "--profile", str(_profile(tmp_path))], _env(tmp_path, PREFECT_API_URL=url))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    (line,) = _stackwarden_lines(result.stderr)
    assert f"the Prefect API at {url} does not answer" in line and "hint: start that Prefect server" in line


def test_an_ephemeral_server_slower_than_its_allowance_says_so(tmp_path: Path) -> None:
    """The allowance set to 0 s: the same path as a start that outlasts 120 s on a loaded host.
    (An audit runs in process unless recorded; ``--record`` without a server starts one.)"""
    env = _env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")
    result = _cli(["audit", "--record", "--profile", str(_profile(tmp_path))], env)
    assert result.returncode == 3, result.stderr[-2000:]
    lines = _stackwarden_lines(result.stderr)
    assert len(lines) == 1, lines
    assert "did not start within its 0 s start-up allowance" in lines[0]
    assert "hint: raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in lines[0]


def test_the_default_allowance_is_documented_and_set(tmp_path: Path) -> None:
    result = _cli(["audit", "--help"], _env(tmp_path))
    assert result.returncode == 0 and "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in result.stdout
    assert "120 s" in result.stdout


@pytest.mark.docker
@pytest.mark.parametrize(
    "content",
    ["contexts: 5\n", "- just\n- a list\n", "contexts:\n- {context: {cluster: c}}\n", "{{{not yaml\n"],
    ids=["contexts-not-a-list", "not-a-mapping", "context-without-name", "not-yaml"],
)
def test_a_malformed_kubeconfig_is_reported_with_a_hint(
    tmp_path: Path, content: str, prefect_server: None, docker_engine: None
) -> None:
    from prefect.settings import PREFECT_API_URL

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(content)
    profile = _profile(tmp_path, kubeconfig=str(kubeconfig))
    result = _cli(["audit", "--profile", str(profile)], _env(tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value())))
    assert result.returncode in (0, 1), result.stderr[-2000:]
    hints = [line for line in _stackwarden_lines(result.stderr) if "kubernetes not observed" in line]
    assert len(hints) == 1, result.stderr[-2000:]
    assert str(kubeconfig) in hints[0] and "hint: fix the kubeconfig" in hints[0]
    assert "Kubernetes cluster unreachable" in result.stdout  # and the report says it was not seen


def test_docker_permission_denied_gets_a_hint() -> None:
    """The message docker-py gives when the socket refuses the user (root cannot be refused, so
    this is checked on the message the adapter records)."""
    error = (
        "DockerException: Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))"
    )
    hint = environment_hint("compose", error)
    assert hint is not None and "'docker' group" in hint
    assert environment_hint("compose", "DockerException: timeout") is None
