"""A served instance as its actors meet it: ``stackwarden serve`` starting its own Prefect server
(the default), a stack a switch would change, and callers of every kind.

- An anonymous caller gets 401; a process running as ``nobody`` (uid 65534) reads none of the
  server's files (secret, client.env, database, log) nor the secret from any process, and
  creates no run and resumes none; no command line on the host shows the secret.
- A caller with the secret chooses no file: a path parameter, an unknown profile name, another
  host, a metrics path, job variables and an edited deployment (pull steps) change nothing that
  root reads or runs; each refusal is one line.
- A second switch of the profile is refused while the first waits for approval (the switch
  lock, not a Prefect slot); a rejection with a comment and an approval timeout end Cancelled
  with one warning line: no ERROR, no traceback, in the run's log or on serve's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.ops.conftest import SwitchableStack, switchable_stack
from tests.support.prefect_api import Api, poll, stackwarden_serve
from tests.support.realparts import REPO, free_ports, require

pytestmark = [pytest.mark.prefect, pytest.mark.docker]

NOBODY = 65534
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
MODES = ("compose-only", "k8s-only", "hybrid-guarded")


@dataclass
class Served:
    """One ``stackwarden serve`` with its own server, and what the tests need to reach it."""

    home: Path
    api: Api
    secret: str
    stack: SwitchableStack
    host: str
    log: Path
    serve: subprocess.Popen[bytes]

    def deployment_id(self, name: str) -> str:
        return str(next(d["id"] for d in self.api.deployments() if d["name"] == name))

    def run(self, deployment: str, parameters: dict[str, Any] | None = None, **body: Any) -> str:
        """A run created as the UI's Run button (or any API caller with the secret) does."""
        payload = {"parameters": parameters or {}, **body}
        created = self.api.post(f"/deployments/{self.deployment_id(deployment)}/create_flow_run", payload)
        return str(created["id"])

    def state(self, run_id: str) -> dict[str, Any]:
        return dict(self.api.http.get(f"/flow_runs/{run_id}").json())

    def final(self, run_id: str, timeout: float = 240) -> dict[str, Any]:
        return poll(lambda: (s := self.state(run_id))["state_type"] in FINAL and s, timeout, f"run {run_id} to end")

    def paused(self, run_id: str) -> None:
        def check() -> bool:
            state = self.state(run_id)
            assert state["state_type"] not in FINAL, (state["state"], self.log.read_text()[-3000:])
            return bool(state["state_type"] == "PAUSED")

        poll(check, 240, f"run {run_id} to pause for approval")

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.api.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}))


def _private_parent() -> Path:
    """A directory every user may traverse (as /var/lib is): what keeps ``nobody`` out of the
    home below it must be the home's own modes, not a private pytest directory above it."""
    parent = Path(tempfile.mkdtemp(prefix="sw-served-"))
    parent.chmod(0o755)
    return parent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    parent = _private_parent()
    work = tmp_path_factory.mktemp("served")
    home = parent / "prefect"
    log = work / "serve.log"
    host = "served-safely-host"
    (port,) = free_ports(1)
    env = {
        "PREFECT_API_URL": "",
        "PREFECT_API_AUTH_STRING": "",
        "STACKWARDEN_PREFECT_HOME": str(home),
        "PREFECT_HOME": str(work / "unused"),
    }
    try:
        with (
            switchable_stack(work, "swsafe") as stack,
            stackwarden_serve(
                ["--profile", str(stack.profile_path), "--port", str(port), "--host-name", host, "--audit-every", "1h"],
                env,
                log,
            ) as serve,
        ):
            client_env = home / "client.env"
            poll(lambda: "Prefect UI: " in log.read_text(), 240, "serve to start its server and register")
            settings = dict(line.split("=", 1) for line in client_env.read_text().splitlines())
            assert settings["PREFECT_API_URL"] == f"http://127.0.0.1:{port}/api"
            api = Api(settings["PREFECT_API_URL"], settings["PREFECT_API_AUTH_STRING"])
            # serve registers its deployments one after another (the audit first): wait for all of
            # them, or a test that starts a switch may find it not yet registered under load
            name = stack.name
            expected = {f"audit-{name}@{host}"} | {f"switch-{name}-{m}@{host}" for m in MODES}
            poll(lambda: expected <= {d["name"] for d in api.deployments()}, 240, "serve's deployments")
            yield Served(home, api, settings["PREFECT_API_AUTH_STRING"], stack, host, log, serve)
            api.close()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _switch(served: Served) -> str:
    return f"switch-{served.stack.name}-compose-only@{served.host}"


def _audit(served: Served) -> str:
    return f"audit-{served.stack.name}@{served.host}"


def _no_error_no_traceback(served: Served, run_id: str) -> list[dict[str, Any]]:
    # the run's process sends its logs in batches: wait for its last line
    logs = poll(
        lambda: (
            (found := served.logs(run_id))
            and any(r["task_run_id"] is None and "Finished in state" in r["message"] for r in found)
            and found
        ),
        60,
        f"the logs of run {run_id}",
    )
    loud = [(r["level"], r["message"][:300]) for r in logs if r["level"] >= 40 or "Traceback" in r["message"]]
    assert not loud, loud
    return logs


_NOBODY_SCRIPT = r"""
import json, sys, urllib.error, urllib.request
api, files, deployment_id, paused_id = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
read = []
for path in files:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        read.append(path)
    except OSError:
        pass
def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
guess = {"Authorization": "Basic YWRtaW46YWRtaW4="}  # admin:admin
statuses = {
    "read run": call("GET", f"/flow_runs/{paused_id}"),
    "csrf token": call("GET", "/csrf-token?client=nobody"),
    "create run": call("POST", f"/deployments/{deployment_id}/create_flow_run", {}),
    "create run, guessed secret": call("POST", f"/deployments/{deployment_id}/create_flow_run", {}, guess),
    "resume": call("POST", f"/flow_runs/{paused_id}/resume", {"run_input": {"approve": True}}),
    "resume, guessed secret": call("POST", f"/flow_runs/{paused_id}/resume", {"run_input": {"approve": True}}, guess),
}
print(json.dumps({"read": read, "statuses": statuses}))
"""


def test_home_and_files_are_private_and_anonymous_calls_get_401(served: Served) -> None:
    home_mode = stat.S_IMODE(served.home.stat().st_mode)
    assert home_mode == 0o700, oct(home_mode)
    for name in ("api-auth-string", "client.env", "prefect.db", "server.log", "serve.lock"):
        mode = stat.S_IMODE((served.home / name).stat().st_mode)
        assert mode == 0o600, f"{name}: {mode:o}"
    assert (served.home / "api-auth-string").read_text().strip() == served.secret
    assert len(served.secret) >= 32
    api_url = served.api.api_url
    assert httpx.get(f"{api_url}/health", timeout=10).status_code == 200  # health stays open, for probes
    for path in ("/admin/version", "/flow_runs/00000000-0000-0000-0000-000000000000", "/csrf-token?client=x"):
        assert httpx.get(f"{api_url}{path}", timeout=10).status_code == 401, path
    wrong = httpx.get(f"{api_url}/admin/version", timeout=10, auth=("admin", "admin"))
    assert wrong.status_code == 401
    settings = httpx.get(f"{api_url.removesuffix('/api')}/ui-settings", timeout=10).json()
    assert settings["auth"] == "BASIC" and settings["csrf_enabled"] is True


def test_nobody_reads_no_file_and_creates_or_resumes_no_run(served: Served) -> None:
    switch = _switch(served)
    run_id = served.run(switch)
    served.paused(run_id)
    pids = [served.serve.pid, *_children(served.serve.pid)]
    files = [str(served.home / n) for n in ("api-auth-string", "client.env", "prefect.db", "server.log", "serve.lock")]
    files += [f"/proc/{pid}/environ" for pid in pids]
    runs_before = served.api.flow_runs(deployment_id={"any_": [served.deployment_id(switch)]})
    done = subprocess.run(
        [
            _system_python(),
            "-c",
            _NOBODY_SCRIPT,
            served.api.api_url,
            ",".join(files),
            served.deployment_id(switch),
            run_id,
        ],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["read"] == [], f"nobody read {result['read']}"
    assert all(code in {401, 403} for code in result["statuses"].values()), result["statuses"]
    # what nobody may read of every process: its command line; the secret is in none
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert served.secret.encode() not in cmdline.read_bytes(), cmdline
        except OSError:
            continue
    runs_after = served.api.flow_runs(deployment_id={"any_": [served.deployment_id(switch)]})
    assert len(runs_after) == len(runs_before), "nobody created a run"
    assert served.state(run_id)["state_type"] == "PAUSED", "nobody resumed the run"
    assert served.stack.shadow.poll() is None, "the host process was touched"
    served.api.post(f"/flow_runs/{run_id}/resume", {"run_input": {"approve": False, "comment": "cleanup"}})
    served.final(run_id)


def _system_python() -> str:
    """A Python ``nobody`` may execute (this test's own may live under root's home)."""
    found = shutil.which("python3", path="/usr/bin:/bin")
    require(found is not None, "/usr/bin/python3 is missing")
    return str(found)


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the server, the runner's flow-run processes)."""
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def test_a_caller_with_the_secret_chooses_no_file(served: Served, tmp_path: Path) -> None:
    switch, audit = _switch(served), _audit(served)
    elsewhere = tmp_path / "elsewhere.yaml"
    shutil.copyfile(served.stack.profile_path, elsewhere)
    refused = {
        "a path": served.run(switch, {"profile_path": str(elsewhere)}),
        "an unknown name": served.run(switch, {"profile": "not-served"}),
        "another host": served.run(switch, {"host": "some-other-host"}),
        "a metrics path": served.run(audit, {"prometheus_path": str(tmp_path / "owned.prom")}),
    }
    for what, run_id in refused.items():
        state = served.final(run_id)
        assert state["state_type"] == "FAILED", (what, state["state"])
        assert state["state"]["message"].startswith("refused: "), (what, state["state"]["message"])
        _no_error_no_traceback(served, run_id)
    assert not (tmp_path / "owned.prom").exists()
    # the environment of the run's process is serve's: job variables do not reach it, and the
    # server's copy of the deployment (pull steps, entrypoint) is not what the run executes
    marker = tmp_path / "pulled"
    served.api.http.patch(
        f"/deployments/{served.deployment_id(audit)}",
        json={"pull_steps": [{"prefect.deployments.steps.run_shell_script": {"script": f"touch {marker}"}}]},
        headers=served.api.csrf_headers(),
    ).raise_for_status()
    run_id = served.run(audit, job_variables={"env": {"STACKWARDEN_PROFILES": str(elsewhere), "KUBECONFIG": "/x"}})
    state = served.final(run_id)
    assert state["state_type"] == "COMPLETED", state["state"]
    assert state["name"] == f"audit-{served.stack.name}"
    assert not marker.exists(), "a pull step edited through the API ran as root"


def test_a_second_switch_waits_for_no_slot_and_rejection_and_timeout_are_quiet(served: Served) -> None:
    switch = _switch(served)
    first = served.run(switch)
    served.paused(first)
    second = served.final(served.run(switch))
    assert second["state_type"] == "FAILED" and "another switch of profile" in second["state"]["message"], second
    _no_error_no_traceback(served, second["id"])
    served.api.post(
        f"/flow_runs/{first}/resume", {"run_input": {"approve": False, "comment": "not tonight, see OPS-12"}}
    )
    rejected = served.final(first)
    assert rejected["state_type"] == "CANCELLED" and rejected["state"]["name"] == "Rejected", rejected["state"]
    logs = _no_error_no_traceback(served, first)
    assert any("OPS-12" in r["message"] and "nothing was changed" in r["message"] for r in logs), [
        r["message"][:200] for r in logs
    ]
    poll(  # the server persists events in batches
        lambda: [
            e
            for e in served.api.events(
                "stackwarden.switch.rejected", labels={"stackwarden.profile": [served.stack.name]}
            )
            if e["payload"].get("approval_comment") == "not tonight, see OPS-12"
        ],
        60,
        "the switch.rejected event with the approver's comment",
    )
    timed_out = served.run(switch, {"approval_timeout_seconds": 5})
    state = served.final(timed_out)
    assert state["state_type"] == "CANCELLED" and state["state"]["name"] == "Approval timed out", state["state"]
    _no_error_no_traceback(served, timed_out)
    assert served.stack.shadow.poll() is None, "the host process was touched though nothing was approved"
    output = served.log.read_text(errors="replace")
    assert "Traceback" not in output, output[-4000:]
    assert not re.search(r"\|\s*ERROR\s*\|", output), [line for line in output.splitlines() if "ERROR" in line]
    # serve's live view publishes to serve's own server: a thread that lost Prefect's settings
    # would start a temporary server of its own (and its events would go nowhere)
    assert "Starting temporary server" not in output, output[:3000]


ACTIONS = ("read runs", "start audit", "start switch", "approve", "change files")


def security_table() -> dict[str, dict[str, bool]]:
    """docs/security.md's table of actors and actions: actor -> action -> allowed ("yes..." / "no...")."""
    text = (REPO / "docs" / "security.md").read_text()
    section = text[text.index("## Who can do what") :]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # past the header and |---|
    table: dict[str, dict[str, bool]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) != len(ACTIONS) + 1:
            break
        table[cells[0].split(" (")[0]] = {
            a: c.lower().startswith("yes") for a, c in zip(ACTIONS, cells[1:], strict=True)
        }
    return table


def _as_nobody(served: Served, switch_run: str) -> dict[str, bool]:
    """What a local user gets: each action tried as uid 65534 (True: it worked)."""
    audit_id, switch_id = served.deployment_id(_audit(served)), served.deployment_id(_switch(served))
    script = r"""
import json, sys, urllib.error, urllib.request
api, audit_id, switch_id, run_id, home, profile = sys.argv[1:7]
def ok(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20):
            return True
    except urllib.error.HTTPError:
        return False
def writes(path):
    try:
        with open(path, "a"):
            return True
    except OSError:
        return False
print(json.dumps({
    "read runs": ok("GET", f"/flow_runs/{run_id}"),
    "start audit": ok("POST", f"/deployments/{audit_id}/create_flow_run", {}),
    "start switch": ok("POST", f"/deployments/{switch_id}/create_flow_run", {}),
    "approve": ok("POST", f"/flow_runs/{run_id}/resume", {"run_input": {"approve": True}}),
    "change files": writes(home + "/prefect.db") or writes(home + "/client.env") or writes(profile),
}))
"""
    done = subprocess.run(
        [_system_python(), "-c", script, served.api.api_url, audit_id, switch_id, switch_run, str(served.home),
         str(served.stack.profile_path)],
        user=NOBODY, group=NOBODY, extra_groups=[], env={"PATH": "/usr/bin:/bin"}, cwd="/",
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def _as_secret_holder(served: Served, switch_run: str, tmp_path: Path) -> dict[str, bool]:
    """What the holder of the secret gets (True: it worked); "change files": a run that names a
    file of the caller's choosing is refused, so it changes nothing."""
    did = {"read runs": served.api.http.get(f"/flow_runs/{switch_run}").status_code == 200}
    audit = served.final(served.run(_audit(served)))
    did["start audit"] = audit["state_type"] == "COMPLETED"
    did["start switch"] = served.state(switch_run)["state_type"] == "PAUSED"
    served.api.post(f"/flow_runs/{switch_run}/resume", {"run_input": {"approve": False, "comment": "table"}})
    did["approve"] = served.final(switch_run)["state"]["name"] == "Rejected"  # its answer was taken
    target = tmp_path / "chosen.prom"
    refused = served.final(served.run(_audit(served), {"prometheus_path": str(target)}))
    did["change files"] = refused["state_type"] != "FAILED" or target.exists()
    return did


def test_the_security_table_is_what_each_actor_meets(served: Served, tmp_path: Path) -> None:
    table = security_table()
    assert set(table) == {"local root", "local user", "network peer", "holder of the API secret"}, table
    switch_run = served.run(_switch(served))
    served.paused(switch_run)
    observed = {"local user": _as_nobody(served, switch_run)}
    # a network peer: the server listens on loopback only, so no peer reaches any of it
    server_pids = [served.serve.pid, *_children(served.serve.pid)]
    listening = {
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
        and c.pid in server_pids
        and c.laddr.port == int(served.api.api_url.split(":")[2].split("/")[0])
    }
    assert listening == {"127.0.0.1"}, listening
    observed["network peer"] = dict.fromkeys(ACTIONS, False)
    observed["holder of the API secret"] = _as_secret_holder(served, switch_run, tmp_path)
    observed["local root"] = {
        **dict.fromkeys(ACTIONS, "PREFECT_API_AUTH_STRING=" in (served.home / "client.env").read_text()),
        "change files": os.access(served.home / "prefect.db", os.W_OK),
    }
    for actor, actions in observed.items():
        assert actions == table[actor], (actor, actions, table[actor])
