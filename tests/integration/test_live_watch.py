"""``stackwarden watch`` on real parts sees each kind of change and prints its finding: a
container that starts crash-looping, a process that binds a profile port (and lets it go), a
pod entering CrashLoopBackOff, a pod in ImagePullBackOff, a Deployment scaled to 0.

One watch process and one profile of the test's own (its compose project, ports and namespace)
serve every case, one after the other: the real engine, the real kube-apiserver with the fake
kubelet playing the pods, real listening processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.compose import compose_project, panic_backend, unique_name
from tests.support.kube import CrashLoopBackOff, ImagePullFailure, delete_namespace, deployment, new_namespace
from tests.support.realparts import free_ports, host_listener
from tests.support.watching import Watching, stackwarden_watch

pytestmark = [pytest.mark.docker, pytest.mark.kube]

KUBE_SERVICES = ("api", "img", "scaled")


@dataclass(frozen=True)
class Live:
    watch: Watching
    project: str
    compose_file: Path
    tmp: Path
    namespace: str
    ports: dict[str, int]
    api: Any


def _profile(path: Path, name: str, ns: str, *, kubeconfig: Path, ports: dict[str, int], compose_file: Path) -> Path:
    services: dict[str, Any] = {
        "web": {"ports": [ports["web"]], "runtime": "compose"},
        "cache": {"ports": [ports["cache"]], "runtime": "compose"},
    }
    for service in KUBE_SERVICES:
        services[service] = {"ports": [ports[service]], "runtime": "kubernetes", "kubernetes": {"name": service}}
    doc = {
        "name": name,
        "default_mode": "hybrid-guarded",
        "compose": {"project": name, "files": [str(compose_file)]},
        "kubernetes": {"namespace": ns, "kubeconfig": str(kubeconfig), "allowed_contexts": ["stackwarden-test"]},
        "services": services,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def live(
    docker_engine: None, control_plane: Any, kubelet: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    from kubernetes import client as k8s

    tmp = tmp_path_factory.mktemp("live-watch")
    name = unique_name("swtest-live")
    ports = dict(zip(("web", "cache", *KUBE_SERVICES), free_ports(5), strict=True))
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-live")
    apps = k8s.AppsV1Api(api)
    for service in KUBE_SERVICES:
        apps.create_namespaced_deployment(ns, deployment(service, 1))
    compose_file = tmp / f"{name}.compose.yaml"
    profile = _profile(
        tmp / "profile.yaml",
        name,
        ns,
        kubeconfig=control_plane.admin_kubeconfig,
        ports=ports,
        compose_file=compose_file,
    )
    try:
        with stackwarden_watch([profile], log=tmp / "watch.log") as watch:
            # the compose side does not exist yet: that is open from the start
            watch.event("open", "service-unavailable:web:compose", timeout=120)
            yield Live(watch, name, compose_file, tmp, ns, ports, api)
    finally:
        delete_namespace(api, ns)


def test_a_container_that_starts_crash_looping(live: Live) -> None:
    with compose_project(live.tmp, live.project, {"web": panic_backend()}):
        line = live.watch.event("opened", "crash-loop:web")
        assert line["severity"] == "critical" and line["profile"] == live.project
        assert {"time", "event", "id", "severity", "summary"} <= set(line)
        assert line["services"] == ["web"]


def test_a_process_that_binds_a_profile_port_and_lets_it_go(live: Live) -> None:
    port = live.ports["cache"]
    with host_listener("squatter", "127.0.0.1", port):
        opened = live.watch.event("opened", f"port-foreign-owner:{port}")
        assert "squatter" in opened["summary"]
    live.watch.event("resolved", f"port-foreign-owner:{port}")


def test_a_pod_entering_crash_loop_back_off(live: Live, kubelet: Any) -> None:
    kubelet.set_behaviour(
        CrashLoopBackOff(exit_code=1, restart_count=4, logs="boom\n"), selector="app=api", namespace=live.namespace
    )
    line = live.watch.event("opened", "crash-loop:api")
    assert line["severity"] == "critical"


def test_a_pod_in_image_pull_back_off(live: Live, kubelet: Any) -> None:
    kubelet.set_behaviour(ImagePullFailure(), selector="app=img", namespace=live.namespace)
    line = live.watch.event("opened", "service-unavailable:img:kubernetes")
    assert "ImagePullBackOff" in line["summary"] or "pull" in line["summary"].lower()


def test_a_deployment_scaled_to_zero(live: Live) -> None:
    from kubernetes import client as k8s

    k8s.AppsV1Api(live.api).patch_namespaced_deployment_scale("scaled", live.namespace, {"spec": {"replicas": 0}})
    line = live.watch.event("opened", "service-unavailable:scaled:kubernetes")
    assert "0" in line["summary"]
