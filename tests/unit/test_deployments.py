"""deployments/prefect.yaml points at real flows with parameters they accept."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

from tests.support.realparts import REPO


def test_every_deployment_entrypoint_and_parameters_resolve() -> None:
    doc = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    assert doc["deployments"], "no deployments"
    for deployment in doc["deployments"]:
        # module paths: a worker imports the installed package, no source directory is pulled
        assert ":" not in deployment["entrypoint"], deployment["entrypoint"]
        module_name, _, name = deployment["entrypoint"].rpartition(".")
        flow = getattr(importlib.import_module(module_name), name)
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, deployment["name"]
        profile = deployment.get("parameters", {}).get("profile_path")
        if profile:
            assert Path(profile).is_absolute(), f"{profile} would depend on the worker's directory"
    assert doc["pull"] == [], "an empty pull list: nothing to fetch, no working directory to set"
