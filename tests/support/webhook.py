"""A real validating admission webhook on the real kube-apiserver that denies (403) updates of
Deployments, as a policy engine (Gatekeeper, Kyverno) would: a write preflight cannot foresee."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from tests.support.compose import unique_name
from tests.support.realparts import free_ports, require

DENIAL = "frozen by the change-freeze policy"


def deny_every_update(request: dict[str, Any]) -> bool:
    """The default policy: every update is denied."""
    return True


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (the apiserver checks the webhook's address against it)."""
    require(subprocess.run(["openssl", "version"], capture_output=True, check=False).returncode == 0, "no openssl")
    cert, key = directory / "webhook.crt", directory / "webhook.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def denying_webhook(
    directory: Path, api: k8s.ApiClient, namespace: str, deny: Callable[[dict[str, Any]], bool] = deny_every_update
) -> Iterator[list[dict[str, Any]]]:
    """A validating webhook that denies (403) the updates of a Deployment or its scale in
    ``namespace`` that ``deny`` picks (by default every one); yields the admission requests it
    received."""
    cert, key = _self_signed(directory)
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            seen.append(request)
            answer = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": request["uid"], "allowed": True}
                if not deny(request)
                else {"uid": request["uid"], "allowed": False, "status": {"code": 403, "message": DENIAL}},
            }
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = unique_name("swtest-freeze")
    label = {"stackwarden-test-freeze": name}
    core = k8s.CoreV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": label}})
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": f"{name}.stackwarden.test",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate",
                    "caBundle": base64.b64encode(cert.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["deployments", "deployments/scale"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": label},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    registration = k8s.AdmissionregistrationV1Api(api)
    registration.create_validating_webhook_configuration(config)
    try:
        yield seen
    finally:
        registration.delete_validating_webhook_configuration(name)
        server.shutdown()
        server.server_close()
