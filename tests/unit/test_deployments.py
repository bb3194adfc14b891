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
        path, _, name = deployment["entrypoint"].partition(":")
        module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
        flow = getattr(module, name)
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, deployment["name"]
        profile = deployment.get("parameters", {}).get("profile_path")
        if profile:
            assert (REPO / profile).is_file(), profile
