"""Each documented automation, created through Prefect's API on a real server, fires on the events
stackwarden emits: a critical finding runs the compose-only switch deployment (once, and not for
a medium finding); every finding event is posted to a webhook with host, rule and severity."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.blocks.webhook import Webhook
from prefect.events.worker import EventsWorker
from pydantic import SecretStr

from flows.automations import create_automations, critical_finding_switch, finding_webhook
from flows.local_server import LocalServer
from flows.switch import switch_flow
from stackwarden.model import AuditResult
from stackwarden.model.base import Mode, Severity
from stackwarden.model.finding import Finding, ModeRecommendation
from stackwarden.profiles import load_profile
from tasks.diagnose import emit_finding_events_task
from tests.ops.conftest import small_profile
from tests.support.compose import unique_name
from tests.support.prefect_api import Api, client_settings, poll
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint that records every JSON body posted to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/hook", received
    server.shutdown()
    server.server_close()


def _finding(finding_id: str, rule: str, severity: Severity) -> Finding:
    return Finding(
        id=finding_id,
        rule=rule,
        title=f"{rule} test finding",
        severity=severity,
        services=("api",),
        summary=f'{rule}: "quoted" summary of {finding_id}',
    )


def _result(profile: str, *findings: Finding) -> AuditResult:
    return AuditResult(
        profile=profile,
        snapshot_taken_at="2026-01-01T00:00:00+00:00",
        findings=findings,
        recommendation=ModeRecommendation(mode=Mode.COMPOSE_ONLY, reasons=("test",)),
    )


def test_automations_fire_on_finding_events(
    ops_server: LocalServer, api: Api, tmp_path: Path, webhook_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook_receiver
    profile = load_profile(small_profile(tmp_path, free_ports(1)[0]))
    host = unique_name("automation-host")
    # The events worker is a process-wide singleton bound to the API it started with: one left
    # by an earlier test in this session would send these events to that test's server.
    EventsWorker.drain_all()
    with client_settings(ops_server):
        block_id = Webhook(method="POST", url=SecretStr(url)).save(name=unique_name("sw-hook"))
        deployment_id = switch_flow.to_deployment(  # type: ignore[union-attr]
            name=f"switch-{profile.name}-compose-only@{host}",
            parameters={"mode": "compose-only", "profile": profile.name, "apply": True, "approval": "ui"},
        ).apply()
        ids = asyncio.run(
            create_automations(
                [
                    critical_finding_switch(deployment_id, host=host, profile=profile.name),
                    finding_webhook(UUID(str(block_id)), host=host),
                ]
            )
        )
        assert len(ids) == 2
        again = asyncio.run(  # as a re-run of the documented snippet: replaced, not doubled
            create_automations([critical_finding_switch(deployment_id, host=host, profile=profile.name)])
        )
        listed = [a["name"] for a in api.post("/automations/filter", {})]
        ours = [name for name in listed if "critical finding -> compose-only switch" in name and host in name]
        assert len(ours) == 1 and again[0] not in ids, listed
        critical = _finding("port-conflict:1", "port-conflicts", Severity.CRITICAL)
        medium = _finding("runtime-unreachable:compose", "runtime-unreachable", Severity.MEDIUM)
        emit_finding_events_task(_result(profile.name, critical, medium), profile, host=host)
        EventsWorker.drain_all()
        posted = poll(lambda: len(received) >= 2 and received, timeout=90, what="two webhook calls")
        switch_runs = poll(
            lambda: api.flow_runs(deployment_id={"any_": [str(deployment_id)]}),
            timeout=90,
            what="the automation to run the compose-only switch deployment",
        )
        # the medium finding runs no switch; the one critical finding runs exactly one
        assert len(switch_runs) == 1
        assert switch_runs[0]["parameters"]["mode"] == "compose-only"
        assert {(p["event"], p["severity"], p["rule"]) for p in posted} == {
            ("stackwarden.finding.opened", "critical", "port-conflicts"),
            ("stackwarden.finding.opened", "medium", "runtime-unreachable"),
        }
        assert all(p["host"] == host and p["profile"] == profile.name for p in posted)
        assert '"quoted" summary' in next(p["summary"] for p in posted if p["severity"] == "critical")
        # the next audit finds nothing: both resolve, the webhook hears it, no new switch
        emit_finding_events_task(_result(profile.name), profile, host=host)
        EventsWorker.drain_all()
        poll(lambda: len(received) >= 4, timeout=90, what="two more webhook calls")
        resolved = [p for p in received if p["event"] == "stackwarden.finding.resolved"]
        assert {p["finding"].rsplit(".", 1)[-1] for p in resolved} == {"port-conflict:1", "runtime-unreachable:compose"}
        # a resolved event says which finding it closes: rule, severity and summary
        assert {(p["rule"], p["severity"]) for p in resolved} == {
            ("port-conflicts", "critical"),
            ("runtime-unreachable", "medium"),
        }
        assert all("summary of" in p["summary"] for p in resolved)
        assert len(api.flow_runs(deployment_id={"any_": [str(deployment_id)]})) == 1
