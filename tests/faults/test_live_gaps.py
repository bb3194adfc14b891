"""A lost watch is a gap, reported as such, and the live view resumes: a Docker engine restart
(a dockerd of the test's own: the shared engine is never restarted) and a kube-apiserver
restart mid-watch are survived, each reported as a gap (``gap`` line, the runtime's
``runtime-unreachable`` finding) and then as resumed; a watch whose resourceVersion is too old
for the apiserver (410 Gone) lists its kind again instead of losing the view."""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.adapters.kube_watch import KubeWatch
from stackwarden.live.state import Change, KubeListed, KubeObjectSeen, KubeSeen, Lost
from stackwarden.model.profile import KubernetesSpec, Timeouts
from tests.support.dockerd import own_dockerd
from tests.support.kube import ControlPlane, bind_read_only, deployment, new_namespace, start_control_plane
from tests.support.realparts import free_ports, wait_for
from tests.support.tcp_proxy import TcpProxy
from tests.support.watching import stackwarden_watch


def _profile(path: Path, ports: list[int], kubernetes: dict[str, Any] | None = None) -> Path:
    name = f"swtest-gap-{secrets.token_hex(3)}"
    doc: dict[str, Any] = {
        "name": name,
        "default_mode": "compose-only",
        "compose": {"project": name, "files": [str(path.parent / "compose.yaml")]},
        "services": {"api": {"ports": ports, "runtime": "compose"}},
    }
    if kubernetes is not None:
        doc["kubernetes"] = kubernetes
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.docker
def test_a_docker_engine_restart_is_a_gap_then_resumed(tmp_path: Path) -> None:
    root = Path(f"/tmp/swd-{secrets.token_hex(3)}")  # short: the engine's sockets live under it
    with own_dockerd(root) as engine:
        profile = _profile(tmp_path / "profile.yaml", free_ports(1))
        env = {"DOCKER_HOST": engine.docker_host}
        with stackwarden_watch([profile], env, log=tmp_path / "watch.log") as watch:
            watch.event("open", "service-unavailable:api:compose", timeout=120)
            engine.stop()
            gap = watch.wait(lambda line: line["event"] == "gap" and line["runtime"] == "compose", 60, "the gap")
            assert gap["reason"]
            lost = watch.event("opened", "runtime-unreachable:compose", timeout=60)
            assert "watch lost" in lost["summary"] or "could not be observed" in lost["summary"]
            # what was open before the gap is held open, never read as resolved
            assert not [line for line in watch.seen if line["event"] == "resolved"]
            engine.start()
            watch.wait(lambda line: line["event"] == "resumed" and line["runtime"] == "compose", 90, "the resume")
            watch.event("resolved", "runtime-unreachable:compose", timeout=60)
            assert not [
                line
                for line in watch.seen
                if line["event"] == "resolved" and line["id"] == "service-unavailable:api:compose"
            ]


@pytest.fixture(scope="module")
def own_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of this module's own: its apiserver is restarted here."""
    cp = start_control_plane(tmp_path_factory.mktemp("own-controlplane"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.mark.kube
def test_an_apiserver_restart_mid_watch_is_a_gap_then_resumed(own_control_plane: ControlPlane, tmp_path: Path) -> None:
    from kubernetes import client as k8s

    api = own_control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-gap")
    kube = {
        "namespace": ns,
        "kubeconfig": str(own_control_plane.admin_kubeconfig),
        "allowed_contexts": ["stackwarden-test"],
    }
    profile = _profile(tmp_path / "profile.yaml", free_ports(1), kube)
    with stackwarden_watch([profile], log=tmp_path / "watch.log") as watch:
        watch.event("open", "service-unavailable:api:compose", timeout=120)
        gaps_before = len([line for line in watch.seen if line["event"] == "gap"])

        def still_down() -> None:
            watch.wait(lambda line: line["event"] == "gap" and line["runtime"] == "kubernetes", 60, "the gap")

        own_control_plane.restart_apiserver(while_down=still_down)
        watch.event("opened", "runtime-unreachable:kubernetes", timeout=60)
        watch.wait(lambda line: line["event"] == "resumed" and line["runtime"] == "kubernetes", 120, "the resume")
        watch.event("resolved", "runtime-unreachable:kubernetes", timeout=60)
        assert gaps_before == 0
        # after the restart the watches see changes again
        k8s.AppsV1Api(own_control_plane.admin_api_client()).create_namespaced_deployment(ns, deployment("stray", 0))


@pytest.mark.kube
def test_a_watch_too_old_for_the_apiserver_lists_its_kind_again(
    own_control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A stalled load balancer holds the watches while the apiserver restarts (its watch cache
    starts afresh); released, each watch resumes from a version the new apiserver no longer
    has: 410 Gone, answered by listing that kind again, not by losing the view."""
    from kubernetes import client as k8s

    cp = own_control_plane
    api = cp.admin_api_client()
    ns = new_namespace(api, "swtest-410")
    k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("before", 0))
    proxy = TcpProxy(upstream=("127.0.0.1", cp.apiserver_port)).start()
    kubeconfig = yaml.safe_load(Path(cp.admin_kubeconfig).read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://{proxy.address}"
    proxied = tmp_path / "proxied.kubeconfig"
    proxied.write_text(yaml.safe_dump(kubeconfig))
    changes: queue.Queue[Change] = queue.Queue()
    stop = threading.Event()
    spec = KubernetesSpec(namespace=ns, kubeconfig=str(proxied), allowed_contexts=("stackwarden-test",))
    # no ping: only the watches talk; a restarted apiserver on a loaded machine may take more than
    # the default 3 s to finish six TLS handshakes at once, which would (rightly) be a lost view
    slow = Timeouts(connect_seconds=30, read_seconds=30)
    watch = KubeWatch(spec, changes.put, stop, ping_seconds=3600, timeouts=slow)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    seen: list[Change] = []

    def arrived(kind: type, test: Any = lambda c: True, timeout: float = 60) -> Change:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                change = changes.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(change)
            if isinstance(change, kind) and test(change):
                return change
        raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {[type(c).__name__ for c in seen]}")

    try:
        arrived(KubeSeen)
        # the listing's connection and one per kind's watch: only then are all watches held
        wait_for(lambda: proxy.relaying >= 7, 60, "every watch to be open")
        proxy.hold()
        k8s.CoreV1Api(api).create_namespaced_config_map(  # moves etcd's revision past the held watches'
            ns, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="bump"))
        )
        cp.restart_apiserver()
        proxy.drop()
        listed = arrived(KubeListed, lambda c: c.kind == "deployments")
        assert "before" in listed.listing.objects
        k8s.AppsV1Api(cp.admin_api_client()).create_namespaced_deployment(ns, deployment("after", 0))
        arrived(KubeObjectSeen, lambda c: c.kind == "deployments" and c.name == "after")
        assert not [c for c in seen if isinstance(c, Lost)], "a 410 must relist the kind, not lose the view"
    finally:
        stop.set()
        proxy.stop()
        thread.join(30)
    wait_for(lambda: not thread.is_alive(), 30, "the watch to stop")


@pytest.mark.kube
def test_an_identity_that_may_list_but_not_watch_is_listed_again_instead(own_control_plane: ControlPlane) -> None:
    """A read-only Role with get and list only (what an audit needs): the live view cannot watch,
    so it lists each kind again every few seconds: slower, but never blind and never a gap."""
    from kubernetes import client as k8s

    from stackwarden.adapters import kube_watch

    cp = own_control_plane
    api = cp.admin_api_client()
    ns = new_namespace(api, "swtest-nowatch")
    bind_read_only(api, ns, "viewer")  # get and list, no watch
    changes: queue.Queue[Change] = queue.Queue()
    stop = threading.Event()
    spec = KubernetesSpec(namespace=ns, kubeconfig=str(cp.viewer_kubeconfig), allowed_contexts=("stackwarden-test",))
    original = kube_watch.POLL_SECONDS
    kube_watch.POLL_SECONDS = 1.0
    thread = threading.Thread(target=KubeWatch(spec, changes.put, stop).run, daemon=True)
    thread.start()
    seen: list[Change] = []
    try:
        deadline = time.monotonic() + 60
        while not any(isinstance(c, KubeSeen) for c in seen) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen.append(changes.get(timeout=1))
        k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment("late", 0))
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                change = changes.get(timeout=1)
                seen.append(change)
                if isinstance(change, KubeListed) and "late" in change.listing.objects:
                    break
        else:
            raise AssertionError(f"the new deployment was never listed; saw {[type(c).__name__ for c in seen]}")
        assert not [c for c in seen if isinstance(c, Lost)], "listing instead of watching is no gap"
    finally:
        kube_watch.POLL_SECONDS = original
        stop.set()
        thread.join(30)
