"""A write that preflight could not foresee: RBAC allows the patch (the SelfSubjectAccessReview
says yes), but a real validating admission webhook on the real kube-apiserver denies it with 403,
as a policy engine (Gatekeeper, Kyverno) would. The switch's first write is that patch: it ends
"refused" (exit 4 on a terminal), says nothing changed, and nothing did; it is not reported as a
rollback of a change that never happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.model.plan import StepStatus, SwitchStatus
from tests.support.compose import compose_project, tcp_service, unique_name
from tests.support.kube import cluster_ip_service, delete_namespace, deployment, new_namespace
from tests.support.realparts import free_ports
from tests.support.webhook import DENIAL, denying_webhook

pytestmark = [pytest.mark.docker, pytest.mark.kube, pytest.mark.prefect]


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
