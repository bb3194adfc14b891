"""A workload that changed between the plan and the step is not acted on, on a real
kube-apiserver: a Deployment whose spec was edited (a new generation) or that was deleted and
created again under the same name (a new uid) is refused in the adapter, just before the
patch, and keeps its replicas. StatefulSets are scaled as Deployments are: to 0 with the
previous count recorded on the object, and back to exactly that count."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from stackwarden.adapters.kubernetes import observe_kubernetes, scale_workload
from stackwarden.errors import RefusedError
from stackwarden.model.profile import KubernetesSpec
from stackwarden.model.steps import PREVIOUS_REPLICAS
from tests.support.kube import delete_namespace, deployment, new_namespace

pytestmark = pytest.mark.kube
CONTEXT = "stackwarden-test"


@pytest.fixture
def cluster(control_plane: Any) -> Iterator[tuple[k8s.AppsV1Api, KubernetesSpec]]:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-changed")
    spec = KubernetesSpec(namespace=ns, kubeconfig=str(control_plane.admin_kubeconfig), allowed_contexts=(CONTEXT,))
    try:
        yield k8s.AppsV1Api(api), spec
    finally:
        delete_namespace(api, ns)


def _scale(spec: KubernetesSpec, kind: str, name: str, uid: str, *, replicas: int, generation: int | None) -> str:
    return scale_workload(
        spec, context=CONTEXT, kind=kind, name=name, uid=uid, replicas=replicas, expected_generation=generation
    )


def test_a_deployment_edited_since_the_plan_is_refused_and_untouched(
    cluster: tuple[k8s.AppsV1Api, KubernetesSpec],
) -> None:
    apps, spec = cluster
    apps.create_namespaced_deployment(spec.namespace, deployment("web", 2))
    planned = apps.read_namespaced_deployment("web", spec.namespace).metadata
    # someone edits the pod template after the plan was made: a new generation
    apps.patch_namespaced_deployment(
        "web", spec.namespace, {"spec": {"template": {"metadata": {"annotations": {"edited": "after-the-plan"}}}}}
    )
    assert apps.read_namespaced_deployment("web", spec.namespace).metadata.generation != planned.generation
    with pytest.raises(RefusedError, match="changed since the plan"):
        _scale(spec, "Deployment", "web", planned.uid, replicas=0, generation=planned.generation)
    assert apps.read_namespaced_deployment("web", spec.namespace).spec.replicas == 2


def test_a_deployment_recreated_under_its_name_is_refused_and_untouched(
    cluster: tuple[k8s.AppsV1Api, KubernetesSpec],
) -> None:
    apps, spec = cluster
    apps.create_namespaced_deployment(spec.namespace, deployment("web", 2))
    planned = apps.read_namespaced_deployment("web", spec.namespace).metadata
    apps.delete_namespaced_deployment("web", spec.namespace)
    apps.create_namespaced_deployment(spec.namespace, deployment("web", 3))
    with pytest.raises(RefusedError, match="was recreated"):
        _scale(spec, "Deployment", "web", planned.uid, replicas=0, generation=planned.generation)
    assert apps.read_namespaced_deployment("web", spec.namespace).spec.replicas == 3


def test_a_statefulset_is_scaled_to_zero_and_back_to_exactly_its_count(
    cluster: tuple[k8s.AppsV1Api, KubernetesSpec],
) -> None:
    apps, spec = cluster
    template = deployment("db", 3).spec.template
    apps.create_namespaced_stateful_set(
        spec.namespace,
        k8s.V1StatefulSet(
            metadata=k8s.V1ObjectMeta(name="db", labels={"app": "db"}),
            spec=k8s.V1StatefulSetSpec(
                replicas=3,
                service_name="db",
                selector=k8s.V1LabelSelector(match_labels={"app": "db"}),
                template=template,
            ),
        ),
    )
    seen = observe_kubernetes(spec).observation
    db = next(w for w in seen.workloads if w.name == "db")
    assert db.kind == "StatefulSet" and db.replicas == 3
    said = _scale(spec, "StatefulSet", "db", db.uid, replicas=0, generation=db.generation)
    assert "scaled 3 -> 0" in said
    now = apps.read_namespaced_stateful_set("db", spec.namespace)
    assert now.spec.replicas == 0 and now.metadata.annotations[PREVIOUS_REPLICAS] == "3"
    _scale(spec, "StatefulSet", "db", db.uid, replicas=3, generation=None)  # an undo: no generation to compare
    assert apps.read_namespaced_stateful_set("db", spec.namespace).spec.replicas == 3
    # and the uid is checked for StatefulSets too
    with pytest.raises(RefusedError, match="was recreated"):
        _scale(spec, "StatefulSet", "db", "not-" + db.uid, replicas=0, generation=None)
    assert apps.read_namespaced_stateful_set("db", spec.namespace).spec.replicas == 3
