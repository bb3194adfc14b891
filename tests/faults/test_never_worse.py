"""A rollback never makes things worse, on the real kube-apiserver (its own control plane here:
these tests kill and freeze it), a real Docker engine and Compose v2. Every service that was
served before the switch is served by at least one owner after it, and the status says exactly
what happened: the apiserver killed or frozen after the break (the compose owners serve, the
cluster cannot be seen: unverified, nothing undone on a guess), a make phase whose new owner
never serves (rolled back; the old owner never stopped), and an undo that fails halfway
(rollback-incomplete: the owner that serves is kept, the commands to finish are printed), a
break step that fails outright (a 500) stops the switch there, and a stateful stop that fails
after its signal went out keeps the new owner (the old one is on its way out).

The switch runs in process (``stackwarden.run``): the decisions are under test, not Prefect."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.model import Mode
from stackwarden.model.plan import Step, StepResult, StepStatus, SwitchOutcome, SwitchStatus
from stackwarden.profiles import load_profile
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
from tests.support.compose import Project, compose_project, tcp_service, unique_name
from tests.support.http_proxy import CountingProxy
from tests.support.kube import (
    FakeKubelet,
    cluster_ip_service,
    delete_namespace,
    deployment,
    frozen_apiserver,
    kill_apiserver,
    new_namespace,
    pods_settled,
    restart_apiserver,
    start_control_plane,
)
from tests.support.realparts import IMAGE, free_ports, wait_for
from tests.support.webhook import DENIAL, denying_webhook

pytestmark = [pytest.mark.docker, pytest.mark.kube]

REPLICAS = 2


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A control plane of these tests' own (they kill and freeze its apiserver) and its kubelet."""
    cp = start_control_plane(tmp_path_factory.mktemp("own-controlplane"))
    kubelet = FakeKubelet(cp.admin_kubeconfig).start()
    try:
        yield cp, kubelet
    finally:
        kubelet.stop()
        cp.stop()


@dataclass(frozen=True)
class Stack:
    """Services served by Kubernetes (ClusterIP), each with a stopped compose container."""

    project: Project
    namespace: str
    profile_path: Path
    ports: dict[str, int]
    api: Any


@contextlib.contextmanager
def k8s_served(
    tmp: Path,
    cp: Any,
    services: Sequence[str],
    *,
    compose: Callable[[str, int], dict[str, Any]] | None = None,
    health_paths: dict[str, str] | None = None,
    service_settings: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    api = cp.admin_api_client()
    ns = new_namespace(api, "swnw")
    ports = dict(zip(services, free_ports(len(services)), strict=True))
    make = compose or (lambda name, port: tcp_service(8080, f"127.0.0.1:{port}:8080"))
    name = unique_name("swnw")
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    try:
        for service in services:
            apps.create_namespaced_deployment(ns, deployment(service, REPLICAS))
            core.create_namespaced_service(ns, cluster_ip_service(f"{service}-service", service, 80))
        with compose_project(tmp, name, {s: make(s, p) for s, p in ports.items()}) as project:
            project.compose("stop", "--timeout", "2")  # the k8s-only state: the containers exist, stopped
            pods_settled(api, ns, {s: (REPLICAS, "Running") for s in services})
            profile = tmp / f"{name}.yaml"
            data = {
                "name": name,
                "compose": {"project": name, "files": [str(project.file)]},
                "kubernetes": {
                    "namespace": ns,
                    "kubeconfig": str(cp.admin_kubeconfig),
                    "allowed_contexts": ["stackwarden-test"],
                },
                "switch": {"settle_seconds": 1},
                "services": {
                    s: {
                        "ports": [p],
                        "kubernetes": {"name": s, "service": f"{s}-service", "replicas": REPLICAS},
                        **(service_settings or {}),
                    }
                    for s, p in ports.items()
                },
            }
            for service, path in (health_paths or {}).items():
                data["services"][service]["health"] = {"http": f"http://127.0.0.1:{ports[service]}{path}"}
            profile.write_text(yaml.safe_dump(data, sort_keys=False))
            yield Stack(project, ns, profile, ports, api)
    finally:
        with contextlib.suppress(Exception):
            delete_namespace(api, ns)


class AfterTheBreak(LocalExecutor):
    """The in-process executor, with something happening right after the break phase's stops."""

    def __init__(self, profile: Any, hook: Callable[[], None]) -> None:
        super().__init__(profile)
        self.hook: Callable[[], None] | None = hook

    def apply(
        self, steps: Sequence[Step], *, concurrent: bool, force: bool, recheck_generation: bool
    ) -> list[StepResult]:
        results = super().apply(steps, concurrent=concurrent, force=force, recheck_generation=recheck_generation)
        forward_break = any(s.phase == "break" and not s.id.startswith(("undo:", "redo:")) for s in steps)
        if forward_break and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        return results


def _switch(
    stack: Stack, executor: LocalExecutor | None = None, deadline: float = 12, mode: Mode = Mode.COMPOSE_ONLY
) -> SwitchOutcome:
    profile = load_profile(stack.profile_path)
    outcome = run(
        profile,
        mode,
        executor or LocalExecutor(profile),
        apply=True,
        options=Options(deadline_seconds=deadline, poll_seconds=1),
    )
    assert isinstance(outcome, SwitchOutcome)
    return outcome


def _answers(port: int) -> bool:
    """Something accepts a connection on the port and keeps it open (a docker-proxy with nothing
    behind it closes at once)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.settimeout(0.5)
            try:
                return conn.recv(1) != b""
            except TimeoutError:
                return True
    except OSError:
        return False


def _container_serves(stack: Stack, service: str) -> bool:
    return bool(stack.project.inspect(service)["State"]["Running"]) and _answers(stack.ports[service])


def _cluster_serves(stack: Stack, service: str) -> bool:
    d = k8s.AppsV1Api(stack.api).read_namespaced_deployment(service, stack.namespace)
    return (d.spec.replicas or 0) > 0 and (d.status.ready_replicas or 0) > 0


def test_apiserver_killed_after_the_break_leaves_the_new_owners_serving(tmp_path: Path, own_cluster: Any) -> None:
    cp, _ = own_cluster
    try:
        with k8s_served(tmp_path, cp, ["web", "api"]) as stack:
            profile = load_profile(stack.profile_path)
            outcome = _switch(stack, AfterTheBreak(profile, lambda: kill_apiserver(cp)))
            assert outcome.status is SwitchStatus.UNVERIFIED, outcome.message
            assert "kubernetes could not be observed" in outcome.message and "left as it is" in outcome.message
            assert "web: up under compose" in outcome.message and "api: up under compose" in outcome.message
            assert not [r for r in outcome.journal if r.step_id.startswith("undo:")], "nothing undone on a guess"
            for service in stack.ports:
                assert _container_serves(stack, service), f"{service} lost its owner"
    finally:
        restart_apiserver(cp)


def test_apiserver_frozen_after_the_break_is_not_a_failure(tmp_path: Path, own_cluster: Any) -> None:
    cp, _ = own_cluster
    with k8s_served(tmp_path, cp, ["web"]) as stack, contextlib.ExitStack() as frozen:
        profile = load_profile(stack.profile_path)
        outcome = _switch(stack, AfterTheBreak(profile, lambda: frozen.enter_context(frozen_apiserver(cp))))
        frozen.close()  # SIGCONT
        assert outcome.status is SwitchStatus.UNVERIFIED, outcome.message
        assert outcome.verdict is not None
        assert any("kubernetes could not be observed" in u for u in outcome.verdict.unobserved)
        assert _container_serves(stack, "web")
        assert k8s.AppsV1Api(stack.api).read_namespaced_deployment("web", stack.namespace).spec.replicas == 0


def test_a_new_owner_that_never_serves_is_undone_before_anything_stops(tmp_path: Path, own_cluster: Any) -> None:
    cp, _ = own_cluster

    def sick(name: str, port: int) -> dict[str, Any]:  # its own healthcheck never passes
        return {
            **tcp_service(8080, f"127.0.0.1:{port}:8080"),
            "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "timeout": "1s", "retries": 1},
        }

    with k8s_served(tmp_path, cp, ["web"], compose=sick) as stack:
        outcome = _switch(stack, deadline=6)
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
        assert "new owners did not serve before the old ones were stopped" in outcome.message
        assert [s.kind for s in outcome.plan.steps] == ["start-container", "scale-workload"]
        assert not stack.project.inspect("web")["State"]["Running"]  # the make was undone
        assert _cluster_serves(stack, "web")  # the old owner was never touched


def test_an_undo_that_fails_halfway_keeps_what_serves_and_says_how_to_finish(tmp_path: Path, own_cluster: Any) -> None:
    """web's container dies right after the break, so the switch rolls back; the policy webhook
    then denies scaling api back up. web is back in the cluster; api keeps its container,
    which serves it, and the outcome says how to finish once the policy allows it."""
    cp, _ = own_cluster

    def scale_up_of_api(request: dict[str, Any]) -> bool:
        replicas = ((request.get("object") or {}).get("spec") or {}).get("replicas") or 0
        return bool(request.get("name") == "api" and replicas > 0)

    with k8s_served(tmp_path, cp, ["web", "api"]) as stack:
        profile = load_profile(stack.profile_path)
        dies = AfterTheBreak(profile, lambda: stack.project.compose("kill", "web"))
        with denying_webhook(tmp_path, stack.api, stack.namespace, deny=scale_up_of_api) as seen:
            outcome = _switch(stack, dies, deadline=6)
        assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
        assert "web: not up under compose: no running container" in outcome.message
        statuses = {r.step_id: r for r in outcome.journal}
        scale_api = next(s for s in outcome.plan.steps if s.kind == "scale-workload" and s.service == "api")
        start_api = next(s for s in outcome.plan.steps if s.kind == "start-container" and s.service == "api")
        start_web = next(s for s in outcome.plan.steps if s.kind == "start-container" and s.service == "web")
        assert statuses[f"undo:{scale_api.id}"].status is StepStatus.REFUSED
        assert DENIAL in (statuses[f"undo:{scale_api.id}"].error or "")
        assert statuses[f"undo:{start_api.id}"].status is StepStatus.KEPT
        assert statuses[f"undo:{start_web.id}"].status is StepStatus.SKIPPED  # it was down already
        assert any(r["name"] == "api" for r in seen)
        # every service that was served before still is: web by the cluster again, api by its container
        assert not stack.project.inspect("web")["State"]["Running"]
        wait_for(lambda: _cluster_serves(stack, "web"), 30, "web's pods back in the cluster")
        assert _container_serves(stack, "api")
        scale_back = next(line for line in outcome.to_finish if "deployment/api" in line)
        assert scale_back.endswith("scale deployment/api --replicas=2")
        stop_api = f"docker stop --time 10 {stack.project.name}-api-1"
        assert outcome.to_finish.index(scale_back) < outcome.to_finish.index(stop_api)
        assert {w.service: w.serving for w in outcome.where}["api"] is True


@contextlib.contextmanager
def unreachable_webhook(api: Any, namespace: str) -> Iterator[None]:
    """A validating webhook on Deployment updates in ``namespace`` whose server is down, with
    failurePolicy Fail: the apiserver answers every scale with a 500 (not a refusal: the write
    may or may not have been meant to go through, as after a lost answer)."""
    (port,) = free_ports(1)  # nothing listens there
    name = unique_name("swnw-down")
    label = {"stackwarden-test-down": name}
    k8s.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": label}})
    registration = k8s.AdmissionregistrationV1Api(api)
    registration.create_validating_webhook_configuration(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": f"{name}.stackwarden.test",
                    "clientConfig": {"url": f"https://127.0.0.1:{port}/validate"},
                    "rules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["deployments"],
                            "scope": "Namespaced",
                        }
                    ],
                    "namespaceSelector": {"matchLabels": label},
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 2,
                }
            ],
        }
    )
    try:
        yield
    finally:
        registration.delete_validating_webhook_configuration(name)


def test_a_failed_break_step_stops_the_switch_at_once(tmp_path: Path, own_cluster: Any) -> None:
    """The scale to 0 fails (500): the switch stops there and rolls back, saying why, instead of
    going on to verify a break that never happened until the deadline."""
    cp, _ = own_cluster
    with k8s_served(tmp_path, cp, ["web"]) as stack, unreachable_webhook(stack.api, stack.namespace):
        outcome = _switch(stack, deadline=60)
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
        scale = next(s for s in outcome.plan.steps if s.kind == "scale-workload")
        assert outcome.message.startswith(f"step {scale.id} failed:"), outcome.message
        assert outcome.verdict is None, "no verify after a failed step"
        assert not stack.project.inspect("web")["State"]["Running"]  # the make was undone
        assert _cluster_serves(stack, "web")


def test_a_stateful_stop_that_fails_after_its_signal_keeps_the_new_owner(tmp_path: Path, own_cluster: Any) -> None:
    """compose-only -> k8s-only: the database container got its signal and takes longer than its
    grace period to shut down, so its stop fails; it exits a few seconds later. The rollback must
    not scale the cluster's copy back to 0 behind it (nothing would serve db), nor call the host
    restored: rollback-incomplete, the new owner kept, and how to finish once the old one exited."""
    cp, _ = own_cluster
    slow = 'trap "sleep 5; exit 0" TERM; httpd -p 8080; while true; do sleep 0.2; done'

    def slow_to_stop(name: str, port: int) -> dict[str, Any]:
        return {**tcp_service(8080, f"127.0.0.1:{port}:8080"), "command": ["sh", "-c", slow]}

    settings = {"stateful": True, "host": {"executables": ["swnw-no-such-exe"], "grace_period_seconds": 1}}
    with k8s_served(tmp_path, cp, ["db"], compose=slow_to_stop, service_settings=settings) as stack:
        apps = k8s.AppsV1Api(stack.api)
        apps.patch_namespaced_deployment("db", stack.namespace, {"spec": {"replicas": 0}})  # compose-only
        stack.project.compose("start")
        wait_for(lambda: _answers(stack.ports["db"]), 30, "db's container to serve")
        outcome = _switch(stack, deadline=30, mode=Mode.K8S_ONLY)
        assert outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE, outcome.message
        assert "did not stop within 1s" in outcome.message and "may have got its signal" in outcome.message
        scale = next(s for s in outcome.plan.steps if s.kind == "scale-workload")
        assert {r.step_id: r.status for r in outcome.journal}[f"undo:{scale.id}"] is StepStatus.KEPT
        wait_for(lambda: not stack.project.inspect("db")["State"]["Running"], 30, "the old owner to finish its stop")
        assert _cluster_serves(stack, "db"), "db is served by its new owner"
        container = stack.project.inspect("db")["Name"].lstrip("/")
        start = outcome.to_finish.index(f"docker start {container}")
        assert outcome.to_finish[start - 1].startswith("# db: wait until container")
        assert any(line.endswith("scale deployment/db --replicas=0") for line in outcome.to_finish[start:])


def test_a_restart_policy_a_failed_stop_left_paused_is_put_back_by_the_rollback(
    tmp_path: Path, docker_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stateful container whose image says SIGKILL, under ``restart: always``: the graceful stop
    pauses the policy, sends SIGTERM, the container exits, and then the engine answers the
    restore with 503s, so the step fails with the policy at ``no``. The rollback starts the
    container again and must put the policy back too: a database left at ``no`` does not come
    back after a reboot, and nothing else would ever say so (the journal ends with the run)."""
    name = unique_name("swnw")
    db = {
        "image": IMAGE,
        "command": ["sh", "-c", 'trap "exit 0" TERM; while true; do sleep 0.2; done'],
        "stop_signal": "SIGKILL",
        "restart": "always",
    }
    restore_fails = threading.Event()

    def restore_of_the_policy(method: str, path: str, body: bytes) -> bool:
        return restore_fails.is_set() and path.endswith("/update") and b'"always"' in body

    proxy = CountingProxy(tmp_path / "docker.sock", fail_if=restore_of_the_policy)
    with compose_project(tmp_path, name, {"db": db}) as project:
        profile_path = tmp_path / f"{name}.yaml"
        data = {
            "name": name,
            "compose": {"project": name, "files": [str(project.file)]},
            "switch": {"settle_seconds": 0},
            "services": {
                "db": {
                    "stateful": True,
                    "no_home": "stop",  # k8s-only stops it: a break step and nothing else
                    "host": {"executables": ["swnw-no-such-exe"], "grace_period_seconds": 10},
                }
            },
        }
        profile_path.write_text(yaml.safe_dump(data))
        profile = load_profile(profile_path)
        proxy.start()
        try:
            monkeypatch.setenv("DOCKER_HOST", proxy.docker_host)  # the switch's engine, not the test's
            restore_fails.set()
            outcome = run(
                profile,
                Mode.K8S_ONLY,
                AfterTheBreak(profile, restore_fails.clear),  # the engine answers again for the rollback
                apply=True,
                options=Options(deadline_seconds=10, poll_seconds=1),
            )
        finally:
            monkeypatch.delenv("DOCKER_HOST")
            proxy.stop()
        assert isinstance(outcome, SwitchOutcome)
        assert "restore restart policy" in outcome.message, outcome.message
        container = project.inspect("db")
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "always", "the policy is put back"
        assert container["State"]["Running"], "the rollback started the database again"
        statuses = {r.step_id: r.status for r in outcome.journal}
        assert statuses[f"restore-policy:{container['Id']}"] is StepStatus.ROLLED_BACK
        assert outcome.status is SwitchStatus.ROLLED_BACK, outcome.message
