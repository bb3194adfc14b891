"""The datastore harness itself, on real servers: a graceful signal stops them with no data lost.

Later tests let another component send that signal; these prove the harness can tell a
clean stop from a lossy one, so such a test cannot pass by accident.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.support.datastores import (
    DatastoreUnavailable,
    ensure_postgres_installed,
    ensure_redis_installed,
    postgres_server,
    redis_server_persistent,
)
from tests.support.realparts import free_ports, listening, require


@pytest.fixture
def postgres_available() -> None:
    """Install PostgreSQL if missing; when that cannot work, fail under CI and skip elsewhere."""
    try:
        ensure_postgres_installed()
    except DatastoreUnavailable as exc:
        require(False, str(exc))


@pytest.fixture
def redis_available() -> None:
    """Install redis-server if missing; when that cannot work, fail under CI and skip elsewhere."""
    try:
        ensure_redis_installed()
    except DatastoreUnavailable as exc:
        require(False, str(exc))


@pytest.mark.usefixtures("postgres_available")
def test_postgres_sigint_fast_shutdown_keeps_committed_rows(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with postgres_server(tmp_path, port) as pg:
        postmaster = psutil.Process(pg.pid)
        assert postmaster.name() == "postgres"
        assert postmaster.username() == "postgres" or os.geteuid() != 0
        assert pg.postmaster_pid_file() == pg.pid
        assert listening(port, "127.0.0.1")

        pg.write_rows(250)
        assert pg.count_rows() == 250

        os.kill(pg.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        assert pg.wait_exit(60) == 0
        assert not listening(port, "127.0.0.1")
        assert not (pg.datadir / "postmaster.pid").exists()

        pg.restart()
        assert pg.count_rows() == 250
        pg.write_rows(1)
        assert pg.count_rows() == 251
        assert pg.clean_shutdown_logged(), pg.log_path.read_text()
    assert not psutil.pid_exists(pg.pid) or psutil.Process(pg.pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.usefixtures("postgres_available")
def test_postgres_sigkill_is_told_apart_from_a_clean_stop(tmp_path: Path) -> None:
    """Guards the check itself: a crash must make clean_shutdown_logged() false."""
    (port,) = free_ports(1)
    with postgres_server(tmp_path, port) as pg:
        pg.write_rows(10)
        children = psutil.Process(pg.pid).children()
        os.kill(pg.pid, signal.SIGKILL)
        assert pg.wait_exit(30) == -signal.SIGKILL
        # Orphaned children notice the postmaster's death and exit; until they have, the old
        # shared memory is in use and a new postmaster would refuse to start.
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, alive
        pg.restart()
        assert pg.count_rows() == 10  # committed rows survive via WAL replay...
        assert not pg.clean_shutdown_logged()  # ...but the log shows it was crash recovery


@pytest.mark.usefixtures("redis_available")
@pytest.mark.parametrize("bind", ["127.0.0.1", "::1"])
def test_redis_sigterm_keeps_acknowledged_writes(tmp_path: Path, bind: str) -> None:
    (port,) = free_ports(1)
    with redis_server_persistent(tmp_path, port, bind=bind) as redis:
        assert psutil.Process(redis.pid).name() == "redis-server"
        for i in range(100):
            redis.set(f"k{i}", f"value {i}")
        redis.set("empty", "")
        assert redis.get("k99") == "value 99"

        os.kill(redis.pid, signal.SIGTERM)
        assert redis.wait_exit(30) == 0
        assert not listening(port, bind)
        assert redis.clean_shutdown_logged(), redis.log_path.read_text()

        redis.restart()
        assert [redis.get(f"k{i}") for i in range(100)] == [f"value {i}" for i in range(100)]
        assert redis.get("empty") == ""
        assert redis.get("missing") is None
