"""Every secret shape of the sanitizer's corpus (``tests/unit/test_secret_shapes.py``) sent through
the Prefect ways out as they ship, against a real ``prefect server start``, and read back from
the server as the UI and an automation would read them: markdown and table artifacts, events,
the open-findings Variable, log records of a flow run, and the state message of a refused
switch run. The unit test checks the same shapes at the call; this one checks what the server
stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from flows.local_server import LocalServer
from stackwarden.sanitize import MASK
from tests.support.compose import unique_name
from tests.support.prefect_api import Api, poll
from tests.support.realparts import REPO
from tests.unit.test_secret_shapes import SHAPES

# The ways out, from a process of its own configured as serve's runs are (the server's client
# settings), inside a flow run (so artifacts and logs belong to it, as an audit's do).
PUBLISHER = """
import json, sys
from prefect import flow, get_run_logger
from tasks import publish

tag, texts = sys.argv[1], json.loads(sys.stdin.read())

@flow(name="secret-ways-out", persist_result=False)
def ways_out() -> None:
    log = get_run_logger()
    for i, text in enumerate(texts):
        publish.markdown_artifact(f"# Finding\\n\\n{text}\\n", f"{tag}-md-{i}", f"about {text}")
        publish.table_artifact([{"title": text, "evidence": text}], f"{tag}-table-{i}", text)
        publish.event(
            "stackwarden.test.secret",
            {"prefect.resource.id": f"stackwarden.test.{tag}.{i}", "stackwarden.profile": tag},
            {"summary": text, "cmdline": text.split()},
        )
        publish.set_variable(f"{tag}-open-findings-{i}", {"secret-shape": {"summary": text, "severity": "high"}})
        log.warning("observed %s", text)

state = ways_out(return_state=True)
print(state.state_details.flow_run_id)
"""

# A switch refused before it has a plan ends its run Failed with the refusal as the state's
# message (``flows.switch._refuse_unplanned``, as shipped), one run per group of shapes (a
# message is one capped line), read back as the UI shows it.
REFUSER = """
import json, sys
from prefect import flow
from flows.switch import _refuse_unplanned
from stackwarden.errors import StackwardenError

groups = json.loads(sys.stdin.read())

@flow(name="secret-state-message", persist_result=False)
def refused(text: str):
    return _refuse_unplanned(StackwardenError(text))

for group in groups:
    state = refused(" | ".join(group), return_state=True)
    print(state.state_details.flow_run_id)
"""


def _groups(texts: list[str], limit: int = 1500) -> list[list[str]]:
    """The texts in groups whose joined length fits one state message line."""
    groups: list[list[str]] = [[]]
    for text in texts:
        if groups[-1] and len(" | ".join([*groups[-1], text])) > limit:
            groups.append([])
        groups[-1].append(text)
    return groups


def _leaked(secret: str, stored: str) -> bool:
    return secret in stored or secret in stored.replace("\\/", "/")


def _run_with_server(script: str, args: list[str], stdin: object, server: LocalServer, home: Path) -> list[str]:
    """``script`` run in a process of its own with the server's client settings (as serve's
    runs are), ``stdin`` sent as JSON; its output lines."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PREFECT_HOME": str(home / "prefect"), **server.client_env}
    ran = subprocess.run(
        [sys.executable, "-c", script, *args],
        input=json.dumps(stdin),
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran.stdout.strip().splitlines()


def test_no_secret_is_stored_by_any_prefect_way_out(ops_server: LocalServer, api: Api, tmp_path: Path) -> None:
    tag = unique_name("swsecret").lower()
    texts = [text for text, _ in SHAPES]
    run_id = _run_with_server(PUBLISHER, [tag], texts, ops_server, tmp_path)[-1]

    artifacts = api.artifacts(run_id)
    assert len(artifacts) == 2 * len(texts), len(artifacts)
    logs = poll(
        lambda: (
            (found := list(api.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})))
            and sum("observed" in r["message"] for r in found) >= len(texts)
            and found
        ),
        120,
        "the run's log records",
    )
    ids = [f"stackwarden.test.{tag}.{i}" for i in range(len(texts))]
    chunks = [ids[i : i + 40] for i in range(0, len(ids), 40)]  # the API pages events by 50
    events: list[dict[str, Any]] = []
    for chunk in chunks:

        def persisted(chunk: list[str] = chunk) -> list[dict[str, Any]] | None:
            found = api.events("stackwarden.test.secret", labels={"prefect.resource.id": chunk})
            return found if len(found) >= len(chunk) else None

        events += poll(persisted, 120, "the events (persisted in batches)")
    variables = list(api.post("/variables/filter", {"variables": {"name": {"like_": f"{tag}-open-findings-"}}}))
    assert len(variables) == len(texts), len(variables)

    stored = {
        "artifacts": json.dumps(artifacts, ensure_ascii=False),
        "logs": json.dumps(logs, ensure_ascii=False),
        "events": json.dumps(events, ensure_ascii=False),
        "variables": json.dumps(variables, ensure_ascii=False),
    }
    leaks: dict[str, list[str]] = {}
    for _, secret in SHAPES:
        for way, text in stored.items():
            if _leaked(secret, text):
                leaks.setdefault(way, []).append(secret)
    assert not leaks, leaks
    # what stays is the evidence, masked: the texts arrived, they were not dropped
    for way, text in stored.items():
        assert text.count(MASK) >= len(texts) // 2, (way, text[:500])


def test_no_secret_is_stored_in_a_refused_runs_state_message(ops_server: LocalServer, api: Api, tmp_path: Path) -> None:
    groups = _groups([text for text, _ in SHAPES])
    run_ids = _run_with_server(REFUSER, [], groups, ops_server, tmp_path)[-len(groups) :]
    runs = api.flow_runs(id={"any_": run_ids})
    assert len(runs) == len(groups), len(runs)
    assert all(r["state"]["type"] == "FAILED" for r in runs), [r["state"] for r in runs]
    messages = [r["state"]["message"] or "" for r in runs]
    logs = poll(
        lambda: (
            (found := list(api.post("/logs/filter", {"logs": {"flow_run_id": {"any_": run_ids}}, "limit": 200})))
            and sum("switch refused" in r["message"] for r in found) >= len(groups)
            and found
        ),
        120,
        "the refusals' log records",
    )
    stored = {"state messages": json.dumps(messages, ensure_ascii=False), "logs": json.dumps(logs, ensure_ascii=False)}
    leaks = {way: [sec for _, sec in SHAPES if _leaked(sec, text)] for way, text in stored.items()}
    assert not any(leaks.values()), leaks
    assert all(m.startswith("refused: ") and MASK in m for m in messages), messages
