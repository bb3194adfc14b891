"""Strict profiles through the real CLI, as root: a profile (or a compose file it names) that
anyone but root may change is refused by every command that reads it (``audit``, ``switch``,
``serve``, ``worker``) with exit 2 and one line naming the file, its mode and owner, before
anything is observed, started or contacted (docs/security.md, "Strict profiles")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.builders import profile_data
from tests.support.realparts import free_ports, require

NOBODY = 65534


def _cli(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STACKWARDEN_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **extra)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _profile(tmp_path: Path) -> tuple[Path, Path]:
    """A valid profile of root's, and the compose file it names."""
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    data = profile_data()
    data.pop("kubernetes")
    data["compose"]["files"] = [str(compose)]
    data["services"] = {"web": {"ports": [free_ports(1)[0]]}}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(data))
    for item in (tmp_path, compose, path):
        os.chown(item, 0, 0)
    tmp_path.chmod(0o755)
    compose.chmod(0o644)
    path.chmod(0o644)
    return path, compose


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and result.stdout == "", result.stdout[-2000:]
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_every_command_refuses_a_profile_others_may_change_before_doing_anything(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root: strict profiles apply to root runs")
    path, compose = _profile(tmp_path)
    home = tmp_path / "serve-home"
    (unused,) = free_ports(1)
    commands = {
        "audit": ["audit", "--profile", str(path)],
        "switch": ["switch", "compose-only", "--profile", str(path), "--apply", "--yes"],
        "serve": ["serve", "--profile", str(path), "--port", str(unused)],
    }

    path.chmod(0o664)
    for what, args in commands.items():
        line = _one_line(_cli(args, tmp_path, STACKWARDEN_PREFECT_HOME=str(home)))
        assert str(path) in line and "writable by group (mode 0664, owner root)" in line, (what, line)
    # a worker checks its profiles before it asks the server anything (that would be exit 3 here)
    worker = _cli(
        ["worker"], tmp_path, STACKWARDEN_PROFILES=str(path), PREFECT_API_URL=f"http://127.0.0.1:{unused}/api"
    )
    line = _one_line(worker)
    assert str(path) in line and "writable by group (mode 0664, owner root)" in line, line
    assert not home.exists(), "serve created its server's home before refusing the profile"

    path.chmod(0o644)
    os.chown(path, NOBODY, NOBODY)
    line = _one_line(_cli(commands["audit"], tmp_path))
    assert str(path) in line and "owned by nobody, not root (mode 0644)" in line, line

    os.chown(path, 0, 0)
    compose.chmod(0o666)  # the file that says what root starts
    line = _one_line(_cli(commands["switch"], tmp_path))
    assert "compose.files" in line and str(compose) in line and "writable by group and others (mode 0666" in line


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_a_profile_only_root_may_change_is_read(tmp_path: Path, mode: int) -> None:
    """The same files, as they should be: validated, exit 0 (the refusals above are about the modes)."""
    require(os.geteuid() == 0, "root: strict profiles apply to root runs")
    path, _ = _profile(tmp_path)
    path.chmod(mode)
    result = _cli(["profile", "validate", str(path)], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
