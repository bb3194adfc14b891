"""``stackwarden serve`` against a real Prefect server: scheduled audits run with the host as a tag
and a parameter, the metrics file is written by the scheduled audit, SIGTERM stops it cleanly;
without PREFECT_API_URL it starts its own server and stops it too."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows.local_server import LocalServer
from stackwarden.profiles import load_profile
from tests.ops.conftest import small_profile
from tests.support.prefect_api import Api, poll, stackwarden_serve
from tests.support.realparts import free_ports, host_listener

pytestmark = [pytest.mark.prefect]


def test_serve_schedules_audits_writes_metrics_and_stops_on_sigterm(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    profile_path = small_profile(tmp_path, port)
    name = load_profile(profile_path).name
    host = f"host-{name}"
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {**ops_server.client_env, "PREFECT_HOME": str(tmp_path / "client-home")}
    args = ["--profile", str(profile_path), "--audit-every", "10s", "--host-name", host]
    args += ["--prometheus-dir", str(metrics)]
    with (
        host_listener("squatter", "127.0.0.1", port),  # a foreign owner of the profile's port: a finding
        stackwarden_serve(args, env, tmp_path / "serve.log") as serve,
    ):
        done = poll(
            lambda: [
                r
                for r in api.flow_runs(tags={"all_": [f"host:{host}"]}, state={"type": {"any_": ["COMPLETED"]}})
                if r["state_type"] == "COMPLETED" and r["name"] == f"audit-{name}"
            ],
            timeout=120,
            what=f"a completed scheduled audit of {name}",
        )
        run = done[0]
        assert run["parameters"]["host"] == host
        assert run["parameters"]["profile"] == name and "profile_path" not in run["parameters"]
        assert {"stackwarden", "audit", f"profile:{name}", f"host:{host}"} <= set(run["tags"])
        deployments = {d["name"] for d in api.deployments() if d["name"].endswith(f"@{host}")}
        assert deployments == {
            f"audit-{name}@{host}",
            *(f"switch-{name}-{mode}@{host}" for mode in ("compose-only", "k8s-only", "hybrid-guarded")),
        }
        prom = metrics / f"stackwarden-{name}.prom"
        poll(prom.is_file, timeout=30, what=f"{prom} written by the scheduled audit")
        samples = {
            (s.name, s.labels.get("rule", "")): s.value
            for family in text_string_to_metric_families(prom.read_text())
            for s in family.samples
        }
        assert samples[("stackwarden_findings", "port-foreign-owner")] == 1
        assert abs(samples[("stackwarden_last_successful_audit_timestamp_seconds", "")] - time.time()) < 120
        opened = poll(  # the server persists events in batches: poll
            lambda: [
                e
                for e in api.events("stackwarden.finding.opened", labels={"stackwarden.host": [host]})
                if e["resource"]["prefect.resource.id"].endswith(f"port-foreign-owner:{port}")
            ],
            timeout=60,
            what="the finding.opened event of the foreign owner",
        )
        assert opened[0]["resource"]["stackwarden.profile"] == name
        serve.terminate()  # SIGTERM
        assert serve.wait(timeout=60) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "Prefect UI: " + ops_server.ui_url in log


def test_serve_without_api_url_starts_and_stops_its_own_server(tmp_path: Path) -> None:
    home = tmp_path / "sw-prefect"
    (port,) = free_ports(1)
    env = {"PREFECT_API_URL": "", "STACKWARDEN_PREFECT_HOME": str(home), "PREFECT_HOME": str(tmp_path / "unused")}
    profile_path = small_profile(tmp_path, free_ports(1)[0])
    log = tmp_path / "serve.log"
    with stackwarden_serve(["--profile", str(profile_path), "--port", str(port)], env, log) as serve:
        url = poll(
            lambda: re.search(r"Prefect server started: (\S+)", log.read_text()), timeout=180, what="the UI URL"
        ).group(1)
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/api/health", timeout=5).json() is True
        poll(lambda: "Prefect UI: " in log.read_text(), timeout=120, what="serve to start")
        # a second serve on the same home is refused with a clear message, not a second server
        second = tmp_path / "second.log"
        with stackwarden_serve(["--profile", str(profile_path)], env, second) as other:
            assert other.wait(timeout=60) != 0
        assert f"{home} is in use by stackwarden serve" in second.read_text()
        secret = (home / "client.env").read_text()
        serve.terminate()
        assert serve.wait(timeout=90) == 0
    assert (home / "prefect.db").is_file(), "the embedded server keeps its SQLite database in its own home"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/health", timeout=3)
    # systemd's Restart=on-failure: at once, on the same port (its last connections linger in
    # TIME_WAIT for a minute), with the same secret
    again = tmp_path / "again.log"
    with stackwarden_serve(["--profile", str(profile_path), "--port", str(port)], env, again) as serve:
        poll(lambda: "Prefect UI: " in again.read_text(), timeout=180, what=f"serve to start again: {again}")
        assert (home / "client.env").read_text() == secret
        serve.terminate()
        assert serve.wait(timeout=90) == 0


def test_a_runtime_absent_by_design_is_reported_but_no_failed_task_run(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    """A profile with a cluster side on a host without a kubeconfig: the audit says Kubernetes was
    not observed (a finding, never an all-clear) and observe-kubernetes completes, not red."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from tests.support.realparts import REPO

    profile_path = small_profile(tmp_path, free_ports(1)[0])
    data = yaml.safe_load(profile_path.read_text())
    data["kubernetes"] = {"namespace": "nowhere", "kubeconfig": str(tmp_path / "no-such-kubeconfig")}
    profile_path.write_text(yaml.safe_dump(data))
    name = data["name"]
    env = {**os.environ, **ops_server.client_env, "PREFECT_HOME": str(tmp_path / "client")}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "audit", "--profile", str(profile_path), "--json", "--fail-on", "critical"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ids = {f["id"] for f in json.loads(done.stdout)["findings"]}
    assert "runtime-unreachable:kubernetes" in ids
    run = next(r for r in api.flow_runs(name={"any_": [f"audit-{name}"]}))
    tasks = {t["name"]: t["state_type"] for t in api.task_runs(run["id"])}
    kube = [state for task, state in tasks.items() if task.startswith("observe-kubernetes")]
    assert kube == ["COMPLETED"], tasks
