"""A Prefect server on PostgreSQL (Debian's postgresql on a high port, its own data directory), as
docs/operate.md describes it, running real audits: the runs, their artifacts and their finding
events are stored in PostgreSQL, not SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackwarden.profiles import load_profile
from tests.ops.conftest import small_profile
from tests.support.datastores import DatastoreUnavailable, postgres_server
from tests.support.prefect_api import Api, poll, real_prefect_server
from tests.support.realparts import REPO, free_ports, host_listener, require

pytestmark = [pytest.mark.prefect]


def test_audits_against_a_prefect_server_on_postgresql(tmp_path: Path) -> None:
    try:
        import asyncpg  # noqa: F401  (Prefect's PostgreSQL driver, installed with prefect from PyPI)
    except ImportError:
        require(False, "asyncpg (installed with prefect) is missing")
    pg_port, squat_port = free_ports(2)
    try:
        pg_context = postgres_server(tmp_path / "pg", pg_port)
        pg = pg_context.__enter__()
    except DatastoreUnavailable as exc:
        require(False, str(exc))
        raise
    try:
        pg.psql("CREATE DATABASE prefect;\n")
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/prefect"
        home = tmp_path / "prefect-home"
        with real_prefect_server(home, database_url=url) as server:
            api = Api.of(server)
            profile_path = small_profile(tmp_path, squat_port)
            name = load_profile(profile_path).name
            env = {**os.environ, **server.client_env, "PREFECT_HOME": str(tmp_path / "client")}
            with host_listener("squatter", "127.0.0.1", squat_port):
                for _ in range(2):
                    done = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "flows.cli",
                            "audit",
                            "--profile",
                            str(profile_path),
                            "--fail-on",
                            "critical",
                        ],
                        cwd=REPO,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=300,
                        check=False,
                    )
                    assert done.returncode == 0, done.stderr[-2000:]
            runs = api.flow_runs(name={"any_": [f"audit-{name}"]})
            assert len(runs) == 2 and all(r["state_type"] == "COMPLETED" for r in runs)
            keys = {a["key"] for a in api.artifacts(runs[0]["id"])}
            assert f"stackwarden-{name}-audit-report" in keys
            poll(
                lambda: api.events("stackwarden.finding.opened", labels={"stackwarden.profile": [name]}),
                timeout=60,
                what="the finding event stored by the server",
            )
            api.close()
            # the rows are in PostgreSQL (and the server made no SQLite database of its own)
            stored = pg.psql(
                "\\connect prefect\nSELECT count(*) FROM flow_run WHERE name = :'n';\n", {"n": f"audit-{name}"}
            )
            assert stored == "2"
            events = pg.psql(
                "\\connect prefect\nSELECT count(*) FROM events WHERE event = 'stackwarden.finding.opened';\n"
            )
            assert int(events) >= 1
            assert not (home / "prefect.db").exists()
    finally:
        pg_context.__exit__(None, None, None)
