"""The standard-library read transports: which kubeconfigs the light Kubernetes reader speaks
(and which it hands to the official client), and the engine's multiplexed log frames."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.adapters.engine_http import demultiplex, unix_path
from stackwarden.adapters.kube_http import endpoint_for


def _kubeconfig(tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "config"
    doc = {
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_token_is_sent_as_bearer(tmp_path: Path) -> None:
    endpoint = endpoint_for([_kubeconfig(tmp_path, {"token": "abc"})], "ctx")
    assert endpoint is not None
    assert (endpoint.host, endpoint.port, endpoint.authorization) == ("10.0.0.1", 6443, "Bearer abc")


def test_a_token_file_is_read_relative_to_its_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    endpoint = endpoint_for([_kubeconfig(tmp_path, {"tokenFile": "token"})], "ctx")
    assert endpoint is not None and endpoint.authorization == "Bearer from-file"


def test_inline_client_certificate_and_ca_are_kept(tmp_path: Path) -> None:
    data = base64.b64encode(b"PEM").decode()
    endpoint = endpoint_for(
        [
            _kubeconfig(
                tmp_path,
                {"client-certificate-data": data, "client-key-data": data},
                {"server": "https://api.example:443/prefix/", "certificate-authority-data": data},
            )
        ],
        "ctx",
    )
    assert endpoint is not None
    assert (endpoint.cert_data, endpoint.key_data, endpoint.ca_data) == (b"PEM", b"PEM", "PEM")
    assert endpoint.base_path == "/prefix"


@pytest.mark.parametrize(
    ("user", "cluster"),
    [
        ({"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}}, None),
        ({"auth-provider": {"name": "oidc", "config": {}}}, None),
        ({"token": "t"}, {"server": "https://10.0.0.1:6443", "proxy-url": "http://proxy:3128"}),
        ({"token": "t"}, {"server": "https://10.0.0.1:6443", "tls-server-name": "kubernetes"}),
    ],
)
def test_what_the_light_reader_does_not_speak_goes_to_the_official_client(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None
) -> None:
    assert endpoint_for([_kubeconfig(tmp_path, user, cluster)], "ctx") is None


def test_an_environment_proxy_goes_to_the_official_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _kubeconfig(tmp_path, {"token": "t"})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert endpoint_for([path], "ctx") is None
    monkeypatch.setenv("NO_PROXY", "10.0.0.1")
    assert endpoint_for([path], "ctx") is not None


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_multiplexed_log_frames_are_unwrapped_in_order() -> None:
    raw = _frame(1, b"Starting\n") + _frame(2, b"panicked at 'x'\n") + _frame(1, b"bye\n")
    assert demultiplex(raw) == b"Starting\npanicked at 'x'\nbye\n"


def test_text_that_is_not_framed_is_kept() -> None:
    assert demultiplex(b"plain tty output\n") == b"plain tty output\n"


def test_only_a_unix_socket_is_spoken_without_docker_py() -> None:
    assert unix_path("unix:///var/run/docker.sock") == "/var/run/docker.sock"
    assert unix_path("tcp://127.0.0.1:2375") is None


def test_reading_imports_neither_docker_py_nor_the_kubernetes_client() -> None:
    code = (
        "import sys, stackwarden.adapters.docker, stackwarden.adapters.kubernetes;"
        "print(sorted(m for m in ('docker', 'kubernetes', 'requests', 'oauthlib', 'tarfile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
