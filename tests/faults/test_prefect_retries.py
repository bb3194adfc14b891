"""Prefect's default retry settings (PREFECT_FLOW_DEFAULT_RETRIES, PREFECT_TASK_DEFAULT_RETRIES)
must not turn one approved switch into several attempts: a failed stop is not sent again, and a
rolled-back switch is not re-planned and re-applied behind the person who approved it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.realparts import REPO, free_ports, named_interpreter, stop

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

_STUBBORN = """
import ctypes, signal, socket, sys
name, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
def note(signum, frame):  # a database that will not stop on its signal: it only notes it
    with open(log, "a") as f:
        f.write(f"{signum}\\n")
signal.signal(signal.SIGTERM, note)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""

_RUN = """
import sys
from flows.switch import run_switch
outcome = run_switch(mode="compose-only", profile_path=sys.argv[1], apply=True, deadline_seconds=10)
print("STATUS", outcome.status)
"""


def test_default_retry_settings_do_not_repeat_a_failed_switch(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swfault-retry")
    signals = tmp_path / "signals.log"
    with compose_project(tmp_path, name, {"db": tcp_service(5432, f"127.0.0.1:{port}:5432")}) as project:
        project.compose("rm", "--stop", "--force")  # the host holds the port: compose up comes after the stop
        profile = tmp_path / "profile.yaml"
        profile.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "compose": {"project": name, "files": [str(project.file)]},
                    "services": {
                        "db": {
                            "ports": [port],
                            "stateful": True,
                            "host": {"executables": ["stubborndb"], "grace_period_seconds": 1},
                        }
                    },
                }
            )
        )
        db = subprocess.Popen(
            [named_interpreter("stubborndb"), "-c", _STUBBORN, "stubborndb", str(port), str(signals)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert db.stdout is not None and db.stdout.readline().strip() == "ready"
            env = {
                **os.environ,
                "PREFECT_API_URL": str(PREFECT_API_URL.value()),
                "PREFECT_FLOW_DEFAULT_RETRIES": "2",
                "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS": "0",
                "PREFECT_TASK_DEFAULT_RETRIES": "2",
                "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS": "0",
            }
            run = subprocess.run(
                [sys.executable, "-c", _RUN, str(profile)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            # the stop's signal went out and cannot be taken back (a database may still be on its
            # way out): the run ends rollback-incomplete, once, never retried into more attempts
            assert "STATUS rollback-incomplete" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
            assert db.poll() is None  # stateful: never SIGKILLed without --force
            assert signals.read_text().split() == ["15"]  # one SIGTERM: one attempt, not 3 x 3
            assert project.containers() == []  # compose up never ran
        finally:
            db.kill()
            db.wait(10)
            stop(db)
