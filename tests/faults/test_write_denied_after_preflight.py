"""A write that preflight could not foresee: RBAC allows the patch (the SelfSubjectAccessReview
says yes), but a real validating admission webhook on the real kube-apiserver denies it with 403,
as a policy engine (Gatekeeper, Kyverno) would. The switch's first write is that patch: it ends
"refused" (exit 4 on a terminal), says nothing changed, and nothing did; it is not reported as a
rollback of a change that never happened."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.model.plan import StepStatus, SwitchStatus
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.kube import cluster_ip_service, delete_namespace, deployment, new_namespace
from tests.support.realparts import free_ports, require

pytestmark = [pytest.mark.docker, pytest.mark.kube, pytest.mark.prefect]

DENIAL = "frozen by the change-freeze policy"


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
def denying_webhook(directory: Path, api: k8s.ApiClient, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """A validating webhook that denies (403) every update of a Deployment or its scale in
    ``namespace``; yields the admission requests it received."""
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
                "response": {"uid": request["uid"], "allowed": False, "status": {"code": 403, "message": DENIAL}},
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


def test_a_403_on_the_first_write_that_preflight_could_not_see_ends_refused(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    api = control_plane.admin_api_client()
    (port,) = free_ports(1)
    name = unique_name("swtest-freeze")
    ns = new_namespace(api, "swtest-freeze")
    apps = k8s.AppsV1Api(api)
    try:
        apps.create_namespaced_deployment(ns, deployment("api", 2))
        k8s.CoreV1Api(api).create_namespaced_service(ns, cluster_ip_service("api-service", "api", 80))
        with (
            compose_project(tmp_path, name, {"api": tcp_service(8080, f"127.0.0.1:{port}:8080")}) as project,
            denying_webhook(tmp_path, api, ns) as denied,
        ):
            profile_path = tmp_path / f"{name}.yaml"
            profile = {
                "name": name,
                "default_mode": "compose-only",
                "compose": {"project": name, "files": [str(project.file)]},
                "kubernetes": {
                    "namespace": ns,
                    "kubeconfig": str(control_plane.admin_kubeconfig),
                    "allowed_contexts": ["stackwarden-test"],
                },
                "services": {
                    "api": {"ports": [port], "kubernetes": {"name": "api", "service": "api-service", "replicas": 2}}
                },
            }
            profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
            outcome = run_switch(mode="compose-only", profile_path=str(profile_path), apply=True, deadline_seconds=30)
            assert [s.kind for s in outcome.plan.steps] == ["scale-workload"], outcome.plan.steps
            assert denied and denied[0]["name"] == "api", "the webhook never saw the patch"
            assert outcome.status is SwitchStatus.REFUSED, outcome.message
            assert "nothing changed" in outcome.message
            assert DENIAL in outcome.message or any(DENIAL in (r.error or "") for r in outcome.journal)
            assert [r.status for r in outcome.journal] == [StepStatus.REFUSED]
            assert apps.read_namespaced_deployment("api", ns).spec.replicas == 2
            assert project.inspect("api")["State"]["Running"]
    finally:
        delete_namespace(api, ns)
