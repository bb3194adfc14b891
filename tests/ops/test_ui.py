"""The Prefect UI explains a run, checked in a real browser: headless Debian chromium driven by
playwright-core opens the pages of a real server while ``stackwarden serve`` runs the flows.

An audit and a compose-only switch of a stack of the test's own (a compose container on
127.0.0.1:P and a host process shadowing it on [::1]:P): the audit's report artifact and
findings table, the plan in the switch's approval form, and after it is resumed through the API
with approve=true, the task run named after its target. Screenshots go to the test's temp dir,
and to docs/screenshots/ with STACKWARDEN_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prefect.flow_runs import resume_flow_run

from flows.local_server import LocalServer
from tests.ops.conftest import switchable_stack
from tests.support.prefect_api import Api, client_settings, poll, stackwarden_serve
from tests.support.realparts import REPO, docker_ready, require

pytestmark = [pytest.mark.prefect, pytest.mark.docker, pytest.mark.timeout(900)]

UI_DIR = REPO / "tests" / "ui"
SCREENSHOTS = REPO / "docs" / "screenshots"


def _browser_ready() -> None:
    require(shutil.which("chromium") is not None, "Debian chromium is not installed (apt-get install chromium)")
    require(shutil.which("node") is not None, "node is not installed")
    require((UI_DIR / "node_modules" / "playwright-core").is_dir(), "playwright-core missing: cd tests/ui && npm ci")


def _login(ui: str, secret: str) -> dict[str, Any]:
    """The UI's login page, as an operator uses it: the secret from client.env, then Login."""
    return {
        "name": "login",
        "steps": [
            {"goto": f"{ui}/login"},
            {"fill": {"selector": "input[type=password]", "value": secret}},
            {"click": {"role": "button", "name": "Login"}},
            {"expect": "Dashboard"},
        ],
    }


def _browse(pages: list[dict[str, Any]], tmp: Path, server: LocalServer) -> dict[str, dict[str, Any]]:
    """Log in, then open ``pages`` in the same browser (the UI keeps the login per origin)."""
    spec, result = tmp / "spec.json", tmp / "result.json"
    spec.touch(mode=0o600)  # it holds the secret
    spec.write_text(json.dumps({"pages": [_login(server.ui_url, server.auth_string), *pages], "timeoutMs": 30000}))
    done = subprocess.run(
        ["node", str(UI_DIR / "check_pages.mjs"), str(spec), str(result)],
        cwd=UI_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {page["name"]: page for page in json.loads(result.read_text())["pages"]}


def _run(api: Api, deployment: str) -> str:
    found = next(d for d in api.deployments() if d["name"] == deployment)
    return str(api.post(f"/deployments/{found['id']}/create_flow_run", {})["id"])


def _state(api: Api, run_id: str) -> dict[str, Any]:
    return dict(api.http.get(f"/flow_runs/{run_id}").json())


def _keep(shots: dict[str, Path]) -> None:
    for name, path in shots.items():
        assert path.is_file() and path.stat().st_size > 10_000, f"screenshot {name} missing or empty"
    if os.environ.get("STACKWARDEN_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


def test_the_ui_shows_report_findings_plan_and_named_task_runs(
    ops_server: LocalServer, api: Api, tmp_path: Path
) -> None:
    ok, why = docker_ready()
    require(ok, why)
    _browser_ready()
    ui = ops_server.ui_url
    shots = {k: tmp_path / f"{k}.png" for k in ("audit-run", "audit-report", "findings", "approval", "switch-tasks")}
    with switchable_stack(tmp_path, "swui") as stack:
        name, shadow = stack.name, stack.shadow
        host = f"{name}-host"
        env = {**ops_server.client_env, "PREFECT_HOME": str(tmp_path / "client-home")}
        args = ["--profile", str(stack.profile_path), "--audit-every", "1h", "--host-name", host]
        with stackwarden_serve(args, env, tmp_path / "serve.log"):
            poll(
                lambda: any(d["name"] == f"switch-{name}-compose-only@{host}" for d in api.deployments()),
                timeout=120,
                what="serve to register its deployments",
            )
            audit_id = _run(api, f"audit-{name}@{host}")
            audit = poll(
                lambda: (s := _state(api, audit_id))["state_type"] in {"COMPLETED", "FAILED", "CRASHED"} and s,
                timeout=180,
                what="the audit run",
            )
            assert audit["state_type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
            artifacts = {a["key"]: a for a in api.artifacts(audit_id)}
            report = artifacts[f"stackwarden-{name}-audit-report"]
            findings = artifacts[f"stackwarden-{name}-findings"]
            switch_id = _run(api, f"switch-{name}-compose-only@{host}")
            poll(lambda: _state(api, switch_id)["state_type"] == "PAUSED", timeout=180, what="the switch to pause")
            before = _browse(
                [
                    {
                        "name": "audit-run",
                        "steps": [
                            {"goto": f"{ui}/runs/flow-run/{audit_id}"},
                            {"expect": f"audit-{name}"},
                            {"clickText": "Artifacts"},
                            {"expect": f"stackwarden-{name}-audit-report"},
                            {"screenshot": str(shots["audit-run"])},
                        ],
                    },
                    {
                        "name": "report",
                        "steps": [
                            {"goto": f"{ui}/artifacts/artifact/{report['id']}"},
                            {"expect": "Executive Summary"},
                            {"expect": "Detected Conflicts"},
                            {"screenshot": str(shots["audit-report"])},
                        ],
                    },
                    {
                        "name": "findings",
                        "steps": [
                            {"goto": f"{ui}/artifacts/artifact/{findings['id']}"},
                            {"expect": "dual-deployment"},
                            {"screenshot": str(shots["findings"])},
                        ],
                    },
                    {
                        "name": "approval",
                        "steps": [
                            {"goto": f"{ui}/runs/flow-run/{switch_id}"},
                            {"clickText": "Resume"},
                            {"expect": "Plan digest"},
                            {"expect": f"pid {shadow.pid}"},
                            {"expect": "The plan artifact"},
                            {"expect": "cannot be undone"},
                            {"expect": "What it acts on"},
                            {"noSideScroll": "cannot be undone"},
                            {"noSideScroll": f"pid {shadow.pid}"},
                            {"screenshot": str(shots["approval"])},
                        ],
                    },
                ],
                tmp_path,
                ops_server,
            )
            for page in before.values():
                assert not page["missing"] and not page["errors"], page
            with client_settings(ops_server):
                resume_flow_run(switch_id, run_input={"approve": True, "comment": "ui test"})
            switched = poll(
                lambda: (
                    (s := _state(api, switch_id))["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} and s
                ),
                timeout=240,
                what="the switch to finish",
            )
            assert switched["state_type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-4000:]
            assert shadow.wait(timeout=30) == 0, "the shadowing host process was stopped by the switch"
            task_name = f"stop-process api pid {shadow.pid}"
            assert task_name in {t["name"] for t in api.task_runs(switch_id)}
            keys = {a["key"]: a for a in api.artifacts(switch_id)}
            for what in ("switch-plan", "switch-journal", "switch-verdict"):
                assert keys[f"stackwarden-{name}-{what}"]["description"], what
            switched_events = poll(
                lambda: api.events("stackwarden.mode.switched", labels={"stackwarden.profile": [name]}),
                timeout=60,
                what="the mode.switched event",
            )
            assert switched_events[0]["payload"]["mode"] == "compose-only"
            after = _browse(
                [
                    {
                        "name": "switch-tasks",
                        "steps": [
                            {"goto": f"{ui}/runs/flow-run/{switch_id}"},
                            {"clickText": "Task Runs"},
                            {"expect": task_name},
                            {"screenshot": str(shots["switch-tasks"])},
                        ],
                    }
                ],
                tmp_path,
                ops_server,
            )
            assert not after["switch-tasks"]["missing"] and not after["switch-tasks"]["errors"], after
    _keep(shots)
