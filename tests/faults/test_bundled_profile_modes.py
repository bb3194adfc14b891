"""The bundled profile reaches every mode: on the seed scenario (compose project, host processes
and cluster, all real), compose-only, k8s-only and hybrid-guarded each plan without a refusal.
The profile is the bundled file itself, moved only where the test must be hermetic: its ports
(to free high ports), its compose file, namespace and kubeconfig (the test's own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.model.base import Mode
from stackwarden.pipeline import observe_all
from stackwarden.planner import plan
from stackwarden.profiles import bundled_profile_path, load_profile
from tests.support.realparts import free_ports
from tests.support.stack import Stack, fresh_stack

pytestmark = [pytest.mark.docker, pytest.mark.kube]


def _bundled_on(stack: Stack, kubeconfig: Path, tmp: Path) -> Path:
    data: dict[str, Any] = yaml.safe_load(bundled_profile_path().read_text())
    others = [n for n in data["services"] if n not in stack.ports]
    ports = {**stack.ports, **dict(zip(others, free_ports(len(others)), strict=True))}
    for name, spec in data["services"].items():
        (old,) = spec["ports"]
        spec["ports"] = [ports[name]]
        health = spec.get("health") or {}
        if "tcp" in health:
            health["tcp"] = ports[name]
        if "http" in health:
            health["http"] = health["http"].replace(f":{old}/", f":{ports[name]}/")
    data["name"] = stack.project.name
    data["compose"].update(project=stack.project.name, files=[str(stack.project.file)], working_dir=str(tmp))
    data["kubernetes"].update(
        namespace=stack.namespace, kubeconfig=str(kubeconfig), allowed_contexts=["stackwarden-test"]
    )
    path = tmp / "bundled-on-seed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_bundled_profile_plans_all_three_modes_on_the_seed_scenario(
    tmp_path: Path, control_plane: Any, kubelet: Any
) -> None:
    with fresh_stack(tmp_path, control_plane, kubelet) as s:
        profile = load_profile(_bundled_on(s, control_plane.admin_kubeconfig, tmp_path))
        snapshot = observe_all(profile)
        plans = {mode: plan(snapshot, profile, mode) for mode in Mode}
        for mode, the_plan in plans.items():
            assert the_plan.applicable, f"{mode}: {the_plan.refusals}"
            assert the_plan.steps, f"{mode} has nothing to do on the seed scenario"
        leave = [n for n in plans[Mode.K8S_ONLY].notes if "no_home: leave" in n]
        assert {n.split(":", 1)[0] for n in leave} == {
            "prometheus",
            "grafana",
            "elasticsearch",
            "kibana",
            "logstash",
            "apm-server",
        }
        k8s_only = plans[Mode.K8S_ONLY]
        assert {s.service for s in k8s_only.steps if s.kind == "stop-process"} == {"postgres", "redis"}
