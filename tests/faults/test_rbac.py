"""RBAC against the real kube-apiserver: an identity that may not list the namespace gets a
refusal, never "passed" over pods it could not see; an identity that may read but not write is
refused by preflight (SelfSubjectAccessReview) with zero write requests in the apiserver's
audit log. Nothing changes in any runtime either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from flows.switch import run_switch
from stackwarden.model.plan import SwitchStatus
from tests.support.kube import audit_events, audit_offset, bind_read_only
from tests.support.realparts import alive
from tests.support.stack import REPLICAS, Stack, fresh_stack

pytestmark = [pytest.mark.docker, pytest.mark.kube, pytest.mark.prefect]

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def _as_viewer(stack: Stack, viewer_kubeconfig: Path) -> Path:
    """The stack's profile, acting as the 'viewer' identity instead of the admin."""
    data = yaml.safe_load(stack.profile_path.read_text())
    data["kubernetes"]["kubeconfig"] = str(viewer_kubeconfig)
    path = stack.profile_path.with_name(stack.profile_path.stem + ".viewer.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _unchanged(stack: Stack) -> None:
    apps = k8s.AppsV1Api(stack.api)
    assert {n: apps.read_namespaced_deployment(n, stack.namespace).spec.replicas for n in REPLICAS} == REPLICAS
    for pid in stack.host_pids.values():
        assert alive(pid), pid


def _writes(events: list[dict[str, Any]]) -> list[str]:
    """Write requests, leaving out access reviews (a create of a virtual object, stored nowhere)."""
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in events
        if e["verb"] in WRITES and (e.get("objectRef") or {}).get("resource") != "selfsubjectaccessreviews"
    ]


def test_a_forbidden_list_refuses_the_switch(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        profile = _as_viewer(s, control_plane.viewer_kubeconfig)
        offset = audit_offset(control_plane)
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=30)
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        for service in ("backend", "frontend", "postgres", "redis"):
            assert f"{service}: kubernetes pods unobserved (forbidden" in outcome.message
        assert outcome.journal == ()
        assert _writes(audit_events(control_plane, "viewer", offset)) == []
        _unchanged(s)


def test_read_allowed_write_forbidden_is_refused_by_preflight_with_zero_writes(
    tmp_path: Path, control_plane: Any, kubelet: Any, prefect_server: None
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        bind_read_only(s.api, s.namespace, "viewer")
        profile = _as_viewer(s, control_plane.viewer_kubeconfig)
        offset = audit_offset(control_plane)
        outcome = run_switch(mode="compose-only", profile_path=str(profile), apply=True, deadline_seconds=30)
        assert outcome.status is SwitchStatus.REFUSED, outcome.message
        for name in REPLICAS:
            assert f"preflight: kubernetes: the identity may not patch deployments/{name} in {s.namespace}" in (
                outcome.message
            )
        assert outcome.journal == ()
        events = audit_events(control_plane, "viewer", offset)
        assert any((e.get("objectRef") or {}).get("resource") == "selfsubjectaccessreviews" for e in events)
        assert _writes(events) == []
        _unchanged(s)
