"""``serve`` and ``worker`` against a real Prefect server that answers API calls without
authentication (the test harness's): refused, exit 3, one line naming the URL and the reason;
``--allow-unauthenticated-api`` accepts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from tests.support.realparts import REPO

pytestmark = [pytest.mark.prefect]


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STACKWARDEN_"))}
    return {**env, "PREFECT_API_URL": url, "PREFECT_HOME": str(tmp_path / "home")}


def _profile(tmp_path: Path) -> Path:
    path = tmp_path / "open.yaml"
    data = {"name": "open-server", "compose": {"project": "open-server"}, "services": {"web": {"ports": [8080]}}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_serve_and_worker_refuse_a_server_that_lets_anyone_in(prefect_server: None, tmp_path: Path) -> None:
    url = str(PREFECT_API_URL.value())
    env = {**_env(tmp_path, url), "STACKWARDEN_PROFILE": str(_profile(tmp_path))}
    for command in (["serve", "--profile", env["STACKWARDEN_PROFILE"]], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", *command],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 3, (command, done.stdout[-2000:], done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert url in lines[0] and "answers API calls without authentication" in lines[0], lines[0]
        assert "Traceback" not in done.stdout + done.stderr


def test_allow_unauthenticated_api_accepts_it(prefect_server: None, tmp_path: Path) -> None:
    env = _env(tmp_path, str(PREFECT_API_URL.value()))
    log = tmp_path / "serve.log"
    args = ["serve", "--profile", str(_profile(tmp_path)), "--allow-unauthenticated-api", "--host-name", "open-host"]
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while "deployment(s) for host open-host" not in log.read_text() and time.monotonic() < deadline:
            assert serve.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        assert "deployment(s) for host open-host" in log.read_text(), log.read_text()[-3000:]
    finally:
        serve.terminate()
        serve.wait(timeout=120)
