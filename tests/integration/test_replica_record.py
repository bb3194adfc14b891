"""A replica count recorded on a real Deployment that stackwarden did not write (too big, not a
number) refuses a k8s-only switch, naming the workload and the value; nothing is scaled. The
planner's strict reading itself is covered in tests/unit/test_planner_verdict.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.model.plan import PREVIOUS_REPLICAS, SwitchStatus
from tests.support.compose import unique_name
from tests.support.kube import delete_namespace, deployment, new_namespace

pytestmark = [pytest.mark.kube, pytest.mark.docker, pytest.mark.prefect]


def test_a_hostile_replica_record_refuses_the_switch_and_scales_nothing(
    tmp_path: Path, control_plane: Any, docker_engine: None, prefect_server: None
) -> None:
    api = control_plane.admin_api_client()
    apps = k8s.AppsV1Api(api)
    ns = new_namespace(api, "swtest-record")
    name = unique_name("swtest-record")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "compose": {"project": name, "files": [str(tmp_path / "compose.yaml")]},
                "kubernetes": {
                    "namespace": ns,
                    "kubeconfig": str(control_plane.admin_kubeconfig),
                    "allowed_contexts": ["stackwarden-test"],
                },
                "services": {"api": {"kubernetes": {"name": "api", "replicas": 2}}},
            }
        )
    )
    try:
        apps.create_namespaced_deployment(ns, deployment("api", 0))
        for hostile in ("100000", "²"):
            apps.patch_namespaced_deployment("api", ns, {"metadata": {"annotations": {PREVIOUS_REPLICAS: hostile}}})
            outcome = run_switch(mode="k8s-only", profile_path=str(profile), apply=True, deadline_seconds=30)
            assert outcome.status is SwitchStatus.REFUSED, outcome.message
            assert f"api: Deployment {ns}/api records {PREVIOUS_REPLICAS}={hostile!r}" in outcome.message
            assert "not a replica count (a whole number 0..1000)" in outcome.message
            assert outcome.journal == ()
            assert apps.read_namespaced_deployment("api", ns).spec.replicas == 0
    finally:
        delete_namespace(api, ns)
