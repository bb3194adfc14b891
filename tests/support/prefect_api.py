"""A real Prefect server for the operations tests, and a thin client of its REST API.

The server is ``prefect server start`` in its own process group (the same code ``stackwarden
serve`` uses: API secret required, CSRF protection on), on a free port, with its own
PREFECT_HOME, SQLite by default or PostgreSQL when given a database URL. Tests read runs,
artifacts and events over HTTP as the UI does, with the secret and a CSRF token as the UI sends them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from flows.local_server import LocalServer, local_server
from tests.support.realparts import REPO, free_ports

T = TypeVar("T")


@contextlib.contextmanager
def client_settings(server: LocalServer) -> Iterator[None]:
    """Prefect's client settings (this process) pointed at ``server``, with its secret."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
        yield


@contextlib.contextmanager
def real_prefect_server(home: Path, database_url: str | None = None) -> Iterator[LocalServer]:
    """A real server on a free high port (never 4200, which a person's server may hold)."""
    (port,) = free_ports(1)
    with local_server(home, port=port, timeout_seconds=180, database_url=database_url) as server:
        yield server


def basic_auth(secret: str) -> dict[str, str]:
    """The Authorization header Prefect's client and UI send for ``PREFECT_API_AUTH_STRING``."""
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


class Api:
    """The few REST calls the tests need; each returns plain JSON. With ``secret`` every request
    carries it, and writes carry a CSRF token, as the UI's do; without, it is an anonymous caller."""

    def __init__(self, api_url: str, secret: str | None = None) -> None:
        self.api_url = api_url
        self.http = httpx.Client(base_url=api_url, timeout=30, headers=basic_auth(secret) if secret else {})
        self._csrf: dict[str, str] | None = None

    @classmethod
    def of(cls, server: LocalServer) -> Api:
        """An authenticated client of ``server``."""
        return cls(server.api_url, server.auth_string)

    def csrf_headers(self) -> dict[str, str]:
        """A CSRF token for this client (fetched once; the server keeps it for an hour)."""
        if self._csrf is None:
            client = str(uuid.uuid4())
            response = self.http.get("/csrf-token", params={"client": client})
            response.raise_for_status()
            self._csrf = {"Prefect-Csrf-Token": response.json()["token"], "Prefect-Csrf-Client": client}
        return self._csrf

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST, retried a few times on 503/429: a busy SQLite server answers 503 for a lock,
        as Prefect's own client retries."""
        for attempt in range(6):
            response = self.http.post(path, json=body, headers=self.csrf_headers())
            if response.status_code not in {429, 503} or attempt == 5:
                break
            time.sleep(1 + attempt)
        response.raise_for_status()
        return response.json()

    def flow_runs(self, **flow_runs: Any) -> list[dict[str, Any]]:
        """Flow runs matching a FlowRunFilter given as keyword fields (e.g. tags={...})."""
        return list(self.post("/flow_runs/filter", {"flow_runs": flow_runs, "limit": 200}))

    def deployments(self) -> list[dict[str, Any]]:
        return list(self.post("/deployments/filter", {"limit": 200}))

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        return list(self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}))

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        return list(self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}))

    def events(
        self, prefix: str, since: datetime | None = None, labels: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """Events whose name starts with ``prefix`` (the API pages by 50; tests filter by labels)."""
        start = since or datetime.now(UTC) - timedelta(hours=1)
        until = datetime.now(UTC) + timedelta(minutes=1)
        body: dict[str, Any] = {
            "filter": {
                "event": {"prefix": [prefix]},
                "occurred": {"since": start.isoformat(), "until": until.isoformat()},
                "order": "ASC",
            },
            "limit": 50,
        }
        if labels:
            body["filter"]["resource"] = {"labels": labels}
        return list(self.post("/events/filter", body)["events"])

    def close(self) -> None:
        self.http.close()


def poll(fetch: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """Call ``fetch`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def stackwarden_serve(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``stackwarden serve ARGS`` as a child process group; SIGTERM (as systemd would) on exit.
    Its audit socket is ``LOG.sock`` unless ``env`` names another."""
    # the audit socket of a test's serve is the test's own, never the machine's /run/stackwarden.sock
    own_socket = {"STACKWARDEN_SOCKET": str(log.with_suffix(".sock"))}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", *args],
            cwd=REPO,
            env={**os.environ, **own_socket, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
