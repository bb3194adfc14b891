"""Load test: what a fleet's audits cost the Prefect server, measured at a small scale.

Starts a real ``prefect server start`` (SQLite, or PostgreSQL with ``--database postgres``), then
``--clients`` processes run real audits (``audit_flow``: observe Docker and the host, diagnose,
publish the report and findings artifacts, emit finding events, read/write the open-set
Variable) for ``--hosts`` simulated host names, ``--rounds`` audits each, as fast as they can.
It measures the server side only: CPU seconds of the server's process tree (and of PostgreSQL's),
database growth, API round trips per audit, and the client-observed audit latency; then
extrapolates to 1,000 hosts auditing every 15 minutes.

    .venv/bin/python benchmarks/bench_fleet.py [--hosts 24] [--rounds 3] [--clients 4]
                                               [--database sqlite|postgres] [--json FILE]

Bounded: at most hosts x rounds audits, one server, a temp directory removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AUDITS_PER_HOUR_PER_HOST = 4  # every 15 minutes
FLEET = 1000


def _tree_cpu(pids: list[int]) -> float:
    """User+system CPU seconds of these processes and all their living descendants."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = proc.cpu_times()
                    total += times.user + times.system
    return total


def _client(api_url: str, profile: str, hosts: list[str], rounds: int) -> None:
    """One client process: audits for its hosts, round by round; prints latencies as JSON.
    The server's secret comes in the environment (PREFECT_API_AUTH_STRING), never on argv."""
    os.environ["PREFECT_API_URL"] = api_url
    from flows.audit import audit_flow

    latencies = []
    for _ in range(rounds):
        for host in hosts:
            started = time.monotonic()
            audit_flow(profile_path=profile, host=host)
            latencies.append(time.monotonic() - started)
    print(json.dumps(latencies))


@contextlib.contextmanager
def _database(kind: str, workdir: Path) -> Iterator[tuple[str | None, list[int], Any]]:
    """(database URL or None for SQLite, PIDs whose CPU counts, a size probe)."""
    if kind == "sqlite":
        yield None, [], lambda: (workdir / "home" / "prefect.db").stat().st_size
        return
    from tests.support.datastores import postgres_server
    from tests.support.realparts import free_ports

    (port,) = free_ports(1)
    with postgres_server(workdir / "pg", port) as pg:
        pg.psql("CREATE DATABASE prefect;\n")

        def size() -> int:
            return int(pg.psql("SELECT pg_database_size('prefect');\n"))

        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect", [pg.pid], size


def _count(server: Any, path: str, body: dict[str, Any]) -> int:
    from tests.support.prefect_api import Api

    api = Api.of(server)
    try:
        return int(api.post(path, body))
    finally:
        api.close()


def run(hosts: int, rounds: int, clients: int, database: str) -> dict[str, Any]:
    from flows.local_server import local_server
    from tests.support.realparts import free_ports

    workdir = Path(tempfile.mkdtemp(prefix="sw-bench-fleet-"))
    profile = workdir / "bench.yaml"
    profile.write_text(
        "name: benchstack\ndefault_mode: compose-only\n"
        f"compose: {{project: benchstack, files: [{workdir}/compose.yaml]}}\n"
        "services:\n  api: {ports: [%d], host: {executables: [bench-api]}, runtime: compose}\n" % free_ports(1)[0]
    )
    names = [f"bench-host-{i:04d}" for i in range(hosts)]
    with _database(database, workdir) as (url, db_pids, db_size):
        (port,) = free_ports(1)
        with local_server(workdir / "home", port=port, database_url=url, timeout_seconds=240) as server:
            time.sleep(5)  # let start-up work settle before the baseline
            size_before = db_size()
            cpu_before = _tree_cpu([server.pid, *db_pids])
            started = time.monotonic()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        server.api_url,
                        str(profile),
                        ",".join(names[i::clients]),
                        str(rounds),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env={
                        **os.environ,
                        **server.client_env,
                        "PREFECT_HOME": str(workdir / f"client-{i}"),
                        "PREFECT_LOGGING_LEVEL": "WARNING",
                    },
                )
                for i in range(clients)
            ]
            latencies: list[float] = []
            for proc in procs:
                out, _ = proc.communicate(timeout=3600)
                if proc.returncode != 0:
                    raise RuntimeError(f"client exited {proc.returncode}")
                latencies += json.loads(out.strip().splitlines()[-1])
            wall = time.monotonic() - started
            time.sleep(3)  # events and logs are written in batches: count them in
            cpu = _tree_cpu([server.pid, *db_pids]) - cpu_before
            growth = db_size() - size_before
            flow_runs = _count(server, "/flow_runs/count", {})
            task_runs = _count(server, "/task_runs/count", {})
            rss = sum(
                p.memory_info().rss
                for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            )
    audits = len(latencies)
    rate = FLEET * AUDITS_PER_HOUR_PER_HOST / 3600
    per_audit_cpu = cpu / audits
    per_audit_bytes = growth / audits
    return {
        "database": database,
        "hosts": hosts,
        "rounds": rounds,
        "clients": clients,
        "audits": audits,
        "wall_seconds": round(wall, 1),
        "throughput_audits_per_second": round(audits / wall, 2),
        "latency_p50_seconds": round(statistics.median(latencies), 2),
        "latency_p95_seconds": round(sorted(latencies)[int(0.95 * (audits - 1))], 2),
        "server_cpu_seconds": round(cpu, 1),
        "server_cpu_seconds_per_audit": round(per_audit_cpu, 3),
        "server_rss_mib": round(rss / 2**20),
        "db_bytes_per_audit": round(per_audit_bytes),
        "flow_runs": flow_runs,
        "task_runs_per_audit": round(task_runs / max(flow_runs, 1), 1),
        "fleet_1000_every_15min": {
            "audits_per_second": round(rate, 2),
            "server_cores_busy": round(rate * per_audit_cpu, 2),
            "db_growth_gib_per_day": round(rate * 86400 * per_audit_bytes / 2**30, 2),
            "flow_runs_per_day": int(rate * 86400),
        },
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client(sys.argv[2], sys.argv[3], sys.argv[4].split(","), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not 1 <= args.hosts * args.rounds <= 2000:
        parser.error("hosts x rounds must be between 1 and 2000 (a bounded test)")
    result = run(args.hosts, args.rounds, args.clients, args.database)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
