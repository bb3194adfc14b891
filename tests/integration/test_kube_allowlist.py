"""The allowlist against a real kube-apiserver: a context whose *name* is allowed but whose API
server is not in ``allowed_servers`` is observed read-only, and a scale there is refused in the
adapter itself, just before acting, with the workload left as it was."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from stackwarden.adapters.kubernetes import observe_kubernetes, scale_workload
from stackwarden.errors import RefusedError
from stackwarden.model.profile import KubernetesSpec
from tests.support.kube import delete_namespace, deployment, new_namespace

pytestmark = pytest.mark.kube
CONTEXT = "stackwarden-test"


def test_allowed_servers_is_enforced_when_observing_and_when_acting(control_plane: Any) -> None:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-allow")
    apps = k8s.AppsV1Api(api)
    try:
        apps.create_namespaced_deployment(ns, deployment("web", 2))
        web = apps.read_namespaced_deployment("web", ns)
        pinned_elsewhere = KubernetesSpec(
            namespace=ns,
            kubeconfig=str(control_plane.admin_kubeconfig),
            allowed_contexts=(CONTEXT,),
            allowed_servers=("https://prod.example.com:*",),
        )
        seen = observe_kubernetes(pinned_elsewhere).observation.context
        assert seen is not None and seen.name == CONTEXT and seen.allowed is False
        with pytest.raises(RefusedError, match="allowed_servers"):
            scale_workload(
                pinned_elsewhere,
                context=CONTEXT,
                kind="Deployment",
                name="web",
                uid=web.metadata.uid,
                replicas=0,
                expected_generation=web.metadata.generation,
            )
        assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2  # untouched

        pinned_here = pinned_elsewhere.model_copy(update={"allowed_servers": (f"{control_plane.server}*",)})
        assert observe_kubernetes(pinned_here).observation.context.allowed  # type: ignore[union-attr]
        scale_workload(
            pinned_here,
            context=CONTEXT,
            kind="Deployment",
            name="web",
            uid=web.metadata.uid,
            replicas=0,
            expected_generation=web.metadata.generation,
        )
        assert apps.read_namespaced_deployment("web", ns).spec.replicas == 0
    finally:
        delete_namespace(api, ns)
