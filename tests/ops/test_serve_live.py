"""``stackwarden serve``'s live view against a real Prefect server: a conflict that appears is
published within seconds (the scheduled audit is an hour away) with the audit's event name,
labels and payload, the metrics file follows it, and it resolves the same way; ``stackwarden
audit`` is answered from the live view with the report it renders in process; SIGTERM stops it
all and removes the socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows.local_server import LocalServer
from stackwarden.profiles import load_profile
from tests.ops.conftest import small_profile
from tests.support.prefect_api import Api, poll, stackwarden_serve
from tests.support.realparts import REPO, free_ports, host_listener

pytestmark = [pytest.mark.prefect]


def _audit(env: dict[str, str], profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "flows.cli", "audit", "--profile", str(profile), *extra]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO, check=False)


def _findings(metrics: Path) -> dict[str, float]:
    return {
        s.labels["rule"]: s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
        if s.name == "stackwarden_findings"
    }


def test_serve_publishes_changes_within_seconds_and_answers_audits(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    profile_path = small_profile(tmp_path, port)
    name = load_profile(profile_path).name
    host = f"host-{name}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    socket = tmp_path / "audit.sock"
    env = {
        **ops_server.client_env,
        "PREFECT_HOME": str(tmp_path / "client-home"),
        "STACKWARDEN_SOCKET": str(socket),
    }
    args = ["--profile", str(profile_path), "--audit-every", "1h", "--host-name", host]
    args += ["--prometheus-dir", str(metrics_dir)]
    metrics = metrics_dir / f"stackwarden-{name}.prom"
    labels = {"stackwarden.host": [host]}
    finding = f"port-foreign-owner:{port}"

    def audits() -> list[dict[str, object]]:
        return [r for r in api.flow_runs(tags={"all_": [f"host:{host}"]}) if str(r["name"]).startswith("audit-")]

    def events(kind: str, since: datetime) -> list[dict[str, object]]:
        return [
            e
            for e in api.events(f"stackwarden.finding.{kind}", since=since, labels=labels)
            if str(e["resource"]["prefect.resource.id"]).endswith(finding)
        ]

    with stackwarden_serve(args, env, tmp_path / "serve.log") as serve:
        poll(socket.exists, timeout=180, what="the audit socket of serve's live view")
        assert oct(socket.stat().st_mode & 0o777) == "0o600"
        time.sleep(5)  # an audit the schedule starts at once is left to finish, so what follows is the live view's
        poll(
            lambda: all(r["state_type"] in {"COMPLETED", "FAILED", "CRASHED"} for r in audits()) or None, 180, "audits"
        )
        before = {r["id"] for r in audits()}
        since = datetime.now(UTC)
        with host_listener("squatter", "127.0.0.1", port):
            opened = poll(lambda: events("opened", since), timeout=60, what="the live view's finding.opened event")
            event = opened[0]
            assert event["resource"]["stackwarden.profile"] == name
            assert event["resource"]["stackwarden.rule"] == "port-foreign-owner"
            assert set(event["payload"]) == {"id", "host", "rule", "severity", "services", "title", "summary"}
            assert event["payload"]["id"] == finding and event["payload"]["host"] == host
            poll(lambda: _findings(metrics).get("port-foreign-owner") == 1, 30, "the metrics file to count it")

            answered = _audit(env, profile_path)
            fresh = _audit(env, profile_path, "--fresh")
            assert answered.returncode == fresh.returncode == 1  # a foreign owner is high
            assert "**Observed:** live view of stackwarden serve" in answered.stdout
            keep = ("**Date:**", "**Observed:**")
            assert [line for line in answered.stdout.splitlines() if not line.startswith(keep)] == [
                line for line in fresh.stdout.splitlines() if not line.startswith(keep)
            ]
        poll(lambda: events("resolved", since), timeout=60, what="the live view's finding.resolved event")
        poll(lambda: "port-foreign-owner" not in _findings(metrics), 30, "the metrics file to drop it")
        assert {r["id"] for r in audits()} == before, "the changes came from the live view, not an audit"
        serve.terminate()
        assert serve.wait(timeout=90) == 0
    assert not socket.exists()
