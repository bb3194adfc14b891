"""Kubernetes reads over HTTPS with the standard library, for the kubeconfigs that need nothing
else: a bearer token (inline or a file), a client certificate, or basic auth, against a server
with its CA (or ``insecure-skip-tls-verify``).

Why: importing the official client costs 0.3 s before the first request (its ``config`` module
loads requests-oauthlib and oauthlib for OIDC, its ``client`` package pydantic models for every
API type), more than reading a namespace of 500 pods. An audit and the live view only GET
(lists, one pod's previous logs, watches). Anything this module does not speak (an ``exec``
credential plugin, an ``auth-provider`` such as OIDC or a cloud's, a proxy, a TLS server-name
override) makes ``endpoint_for`` answer None, and the caller uses the official client, whose
behaviour that is.

Errors: a non-2xx answer is ``KubeApiError`` (status, reason, body, headers), as the official
client's ``ApiException`` carries them; transport failures are the standard library's
(``ConnectionRefusedError``, ``TimeoutError``, ``ssl.SSLError``, ``http.client`` errors).
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from stackwarden.adapters.http_stream import Stream


class KubeApiError(Exception):
    """A non-2xx answer of the apiserver."""

    def __init__(self, status: int, reason: str, body: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"({status}) {reason}")
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one apiserver as one user."""

    scheme: str
    host: str
    port: int
    base_path: str
    authorization: str | None
    ca_file: str | None = None
    ca_data: str | None = None
    verify: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None


def _entries(doc: object, key: str, body: str, base: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """name -> (body, directory of the file it came from) for one kubeconfig list."""
    out: dict[str, tuple[dict[str, Any], Path]] = {}
    items = doc.get(key) if isinstance(doc, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get(body), dict):
            out.setdefault(item["name"], (item[body], base))
    return out


def _file_or_data(
    section: Mapping[str, Any], file_key: str, data_key: str, base: Path
) -> tuple[str | None, bytes | None]:
    """(path, None) for a file reference (relative to its kubeconfig), (None, bytes) for
    base64 data in the kubeconfig itself, (None, None) when neither is set."""
    data = section.get(data_key)
    if isinstance(data, str) and data:
        return None, base64.b64decode(data)
    path = section.get(file_key)
    if isinstance(path, str) and path:
        return str((base / path) if not os.path.isabs(path) else Path(path)), None
    return None, None


def _proxied(host: str) -> bool:
    """Whether the environment sends requests to ``host`` through a proxy (the official client
    honours HTTPS_PROXY and NO_PROXY; this module does not speak to proxies)."""
    proxies = urllib.request.getproxies_environment()
    return bool(proxies.get("https") or proxies.get("http")) and not urllib.request.proxy_bypass(host)


def endpoint_for(paths: Sequence[Path], context_name: str) -> Endpoint | None:
    """The endpoint of ``context_name`` in the kubeconfig files (the first definition of each
    name wins, as kubectl merges them), or None when it needs the official client."""
    contexts: dict[str, tuple[dict[str, Any], Path]] = {}
    clusters: dict[str, tuple[dict[str, Any], Path]] = {}
    users: dict[str, tuple[dict[str, Any], Path]] = {}
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return None  # the official loader reports it with its own words
        base = path.resolve().parent
        for name, entry in _entries(doc, "contexts", "context", base).items():
            contexts.setdefault(name, entry)
        for name, entry in _entries(doc, "clusters", "cluster", base).items():
            clusters.setdefault(name, entry)
        for name, entry in _entries(doc, "users", "user", base).items():
            users.setdefault(name, entry)
    context = contexts.get(context_name, ({}, Path()))[0]
    cluster, cluster_base = clusters.get(str(context.get("cluster")), ({}, Path()))
    user, user_base = users.get(str(context.get("user")), ({}, Path()))
    server = cluster.get("server")
    if not isinstance(server, str) or not server or any(k in cluster for k in ("proxy-url", "tls-server-name")):
        return None
    if "auth-provider" in user or "exec" in user:
        return None
    url = urlsplit(server.rstrip("/"))
    if url.scheme not in {"http", "https"} or not url.hostname or _proxied(url.hostname):
        return None
    authorization = None
    token = user.get("token")
    if not token and isinstance(user.get("tokenFile"), str):
        try:
            token = (user_base / user["tokenFile"]).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    if token:
        authorization = f"Bearer {token}"
    elif isinstance(user.get("username"), str) and isinstance(user.get("password"), str):
        basic = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
        authorization = f"Basic {basic}"
    ca_file, ca_data = _file_or_data(cluster, "certificate-authority", "certificate-authority-data", cluster_base)
    cert_file, cert_data = _file_or_data(user, "client-certificate", "client-certificate-data", user_base)
    key_file, key_data = _file_or_data(user, "client-key", "client-key-data", user_base)
    return Endpoint(
        scheme=url.scheme,
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 80),
        base_path=url.path.rstrip("/"),
        authorization=authorization,
        ca_file=ca_file,
        ca_data=ca_data.decode() if ca_data else None,
        verify=not bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=cert_file,
        key_file=key_file,
        cert_data=cert_data,
        key_data=key_data,
    )


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Verify the server against its CA (the system's when the kubeconfig names none), present
    the client certificate if any. Inline certificate data is loaded through a private
    temporary directory removed at once (ssl takes only files)."""
    ctx = ssl.create_default_context(cafile=endpoint.ca_file, cadata=endpoint.ca_data)
    if not endpoint.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if endpoint.cert_data or endpoint.key_data:
        with tempfile.TemporaryDirectory(prefix="stackwarden-kube-") as private:
            cert = Path(private) / "cert.pem"
            key = Path(private) / "key.pem"
            cert.write_bytes(endpoint.cert_data or Path(endpoint.cert_file or "").read_bytes())
            key.touch(mode=0o600)
            key.write_bytes(endpoint.key_data or Path(endpoint.key_file or "").read_bytes())
            ctx.load_cert_chain(str(cert), str(key))
    elif endpoint.cert_file:
        ctx.load_cert_chain(endpoint.cert_file, endpoint.key_file)
    return ctx


Timeout = tuple[float, float] | float | None


def _split(timeout: Timeout) -> tuple[float | None, float | None]:
    """(connect, read) seconds from the official client's ``_request_timeout`` shapes."""
    if isinstance(timeout, tuple):
        return timeout[0], timeout[1]
    return timeout, timeout


class KubeReader:
    """GETs to one apiserver; one keep-alive connection for sequential reads, one of its own
    for each stream (a watch)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._tls = tls_context(endpoint) if endpoint.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None
        self._conn_timeout: Timeout = None

    def _connect(self, timeout: Timeout) -> http.client.HTTPConnection:
        connect, read = _split(timeout)
        conn: http.client.HTTPConnection
        if self._tls is not None:
            conn = http.client.HTTPSConnection(
                self.endpoint.host, self.endpoint.port, timeout=connect, context=self._tls
            )
        else:
            conn = http.client.HTTPConnection(self.endpoint.host, self.endpoint.port, timeout=connect)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(read)
        return conn

    def _send(self, conn: http.client.HTTPConnection, path: str, query: Sequence[tuple[str, Any]] | None) -> Any:
        target = self.endpoint.base_path + path + ("?" + urlencode(list(query)) if query else "")
        headers = {"Accept": "application/json", "User-Agent": "stackwarden"}
        if self.endpoint.authorization:
            headers["Authorization"] = self.endpoint.authorization
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        if not 200 <= response.status < 300:
            body = response.read().decode(errors="replace")
            raise KubeApiError(response.status, response.reason, body, dict(response.getheaders()))
        return response

    def get(self, path: str, query: Sequence[tuple[str, Any]] | None = None, timeout: Timeout = None) -> bytes:
        """The body of one GET; the keep-alive connection is reopened once if the server closed it."""
        for attempt in (1, 2):
            if self._conn is None or self._conn_timeout != timeout:
                self.close()
                self._conn, self._conn_timeout = self._connect(timeout), timeout
            try:
                data: bytes = self._send(self._conn, path, query).read()
                return data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, path: str, query: Sequence[tuple[str, Any]] | None = None, timeout: Timeout = None) -> Stream:
        """The JSON objects of a streaming answer (a watch), one per line, on a connection of
        its own; the read part of ``timeout`` bounds each wait for the next line."""
        conn = self._connect(timeout)
        try:
            response = self._send(conn, path, query)
        except BaseException:
            conn.close()
            raise
        return Stream(conn, response)

    def clone(self) -> KubeReader:
        """A reader of the same endpoint with connections of its own (one per thread)."""
        twin = KubeReader.__new__(KubeReader)
        twin.endpoint, twin._tls, twin._conn, twin._conn_timeout = self.endpoint, self._tls, None, None
        return twin

    def close(self) -> None:
        """Close the keep-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
