"""The Docker engine's read API over its unix socket, with the standard library only.

Why not docker-py for reads: importing it costs about 0.1 s (requests, urllib3, and tarfile and
lzma for image builds an audit never does), more than a whole observation of the engine. An
audit and the live view only GET: version, the container and network lists, one container's
inspect and logs, and the events (bounded, or as a stream). Writes (stop, start, update, image
checks) keep docker-py, loaded only when a switch acts.

Errors keep docker-py's shape where the adapter sorts them: an HTTP error carries
``status_code`` and ``explanation``; a missing socket is ``FileNotFoundError`` /
``ConnectionRefusedError``; a timeout is ``TimeoutError``.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from stackwarden.adapters.http_stream import Stream


class EngineHTTPError(Exception):
    """A non-2xx answer of the engine (``status_code``, and its own message as ``explanation``)."""

    def __init__(self, status_code: int, explanation: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status_code}: {explanation}")
        self.status_code = status_code
        self.explanation = explanation
        self.headers = dict(headers or {})


class EngineNotFound(EngineHTTPError):
    """404: the container (or other object) does not exist (any more)."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket; ``timeout`` bounds the connect and every read."""

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def unix_path(docker_host: str) -> str | None:
    """The socket path of a ``unix://`` DOCKER_HOST; None for anything this client does not speak
    (tcp://, ssh://, npipe:): those go through docker-py."""
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://") or None
    return None


def _filters(filters: Mapping[str, Any] | None) -> str | None:
    """The engine's ``filters`` parameter: JSON of name -> list of values."""
    if not filters:
        return None
    return json.dumps(
        {k: [str(v) for v in (vs if isinstance(vs, list | tuple) else [vs])] for k, vs in filters.items()}
    )


class EngineReader:
    """One keep-alive connection for sequential GETs; ``stream`` opens one of its own."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._conn: _UnixConnection | None = None

    def _request(self, conn: http.client.HTTPConnection, target: str) -> http.client.HTTPResponse:
        conn.request("GET", target, headers={"Host": "docker", "Accept": "application/json"})
        response = conn.getresponse()
        if response.status >= 400:
            body = response.read()
            try:
                message = str(json.loads(body).get("message") or body.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = body.decode(errors="replace")
            error = EngineNotFound if response.status == 404 else EngineHTTPError
            raise error(response.status, message.strip() or response.reason, dict(response.getheaders()))
        return response

    @staticmethod
    def _target(path: str, query: Mapping[str, Any] | None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return path + ("?" + urlencode(params) if params else "")

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> bytes:
        """The body of one GET (a broken keep-alive connection is reopened once)."""
        target = self._target(path, query)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = _UnixConnection(self.path, self.timeout)
            try:
                return self._request(self._conn, target).read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """One GET, its body decoded as JSON."""
        return json.loads(self.get(path, query))

    def stream(self, path: str, query: Mapping[str, Any] | None = None, timeout: float | None = None) -> Stream:
        """The JSON objects of a streaming answer (events), one per line, on a connection of
        its own; ``timeout`` bounds each wait for the next line (None: wait for ever)."""
        conn = _UnixConnection(self.path, self.timeout)
        try:
            response = self._request(conn, self._target(path, query))
        except BaseException:
            conn.close()
            raise
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return Stream(conn, response)

    def close(self) -> None:
        """Close the keep-alive connection (a later GET opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- the calls the adapter makes, named as docker-py names them

    def version(self) -> dict[str, Any]:
        """``GET /version``."""
        answer: dict[str, Any] = self.get_json("/version")
        return answer

    def ping(self) -> bool:
        """``GET /_ping``: the engine answers (a live stream's liveness check)."""
        return self.get("/_ping").strip() == b"OK"

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """``GET /containers/json``."""
        answer: list[dict[str, Any]] = self.get_json(
            "/containers/json", {"all": 1 if all else None, "filters": _filters(filters)}
        )
        return answer

    def networks(self) -> list[dict[str, Any]]:
        """``GET /networks``."""
        answer: list[dict[str, Any]] = self.get_json("/networks")
        return answer

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/ID/json``."""
        answer: dict[str, Any] = self.get_json(f"/containers/{quote(container_id, safe='')}/json")
        return answer

    def inspect_image(self, image: str) -> dict[str, Any]:
        """``GET /images/NAME/json`` (``EngineNotFound`` when the engine does not have it)."""
        answer: dict[str, Any] = self.get_json(f"/images/{quote(image, safe='/:')}/json")
        return answer

    def logs(self, container_id: str, *, tail: int, tty: bool | None = None) -> bytes:
        """stdout and stderr of a container, the last ``tail`` lines: the engine's frames
        unwrapped (a container without a TTY sends each chunk behind an 8-byte header)."""
        raw = self.get(
            f"/containers/{quote(container_id, safe='')}/logs", {"stdout": 1, "stderr": 1, "tail": str(tail)}
        )
        return raw if tty else demultiplex(raw)

    def events(
        self, *, since: str | None = None, until: str | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /events`` between ``since`` and ``until`` (both given: a bounded answer)."""
        return list(
            self.stream("/events", {"since": since, "until": until, "filters": _filters(filters)}, self.timeout)
        )

    def follow_events(self, *, since: str, filters: Mapping[str, Any]) -> Stream:
        """``GET /events`` from ``since`` on, open until closed: the live view's stream."""
        return self.stream("/events", {"since": since, "filters": _filters(filters)}, None)


def demultiplex(raw: bytes) -> bytes:
    """The payloads of the engine's multiplexed log stream, in order; text that is not framed
    (a TTY container's) is returned as it is."""
    out: list[bytes] = []
    i = 0
    while i + 8 <= len(raw):
        kind, size = raw[i], struct.unpack(">I", raw[i + 4 : i + 8])[0]
        if kind not in (0, 1, 2) or raw[i + 1 : i + 4] != b"\0\0\0":
            return raw if i == 0 else b"".join(out) + raw[i:]
        out.append(raw[i + 8 : i + 8 + size])
        i += 8 + size
    return b"".join(out) + raw[i:]
