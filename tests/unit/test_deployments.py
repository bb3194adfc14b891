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


def test_deployments_are_per_host_carry_it_and_hold_no_slot_a_pause_would_lose() -> None:
    """A second host's deploy must not overwrite the first's; a switch paused for approval must
    not hold a concurrency slot (its lease lapses during the pause and Prefect kills the run);
    no parameter names a file."""
    doc = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    for deployment in doc["deployments"]:
        assert deployment["name"].endswith("@{{ $STACKWARDEN_HOST }}"), deployment["name"]
        assert deployment["parameters"]["host"] == "{{ $STACKWARDEN_HOST }}"
        assert "host:{{ $STACKWARDEN_HOST }}" in deployment["tags"]
        assert deployment["work_pool"]["name"] == "{{ $STACKWARDEN_POOL }}"
        assert not {"profile_path", "prometheus_path"} & set(deployment["parameters"])
        if deployment["entrypoint"].endswith("switch_flow"):
            assert "concurrency_limit" not in deployment, deployment["name"]


def test_served_deployments_name_the_host_and_no_file() -> None:
    from datetime import timedelta

    from flows.serve import Served, served_deployments
    from stackwarden.profiles import bundled_profile_path, load_profile

    path = bundled_profile_path()
    served = served_deployments(Served(path, load_profile(path)), host="web-1", audit_every=timedelta(minutes=15))
    assert len(served) == 4
    for deployment in served:
        settings = deployment.settings
        assert settings["name"].endswith("@web-1") and "host:web-1" in settings["tags"]
        assert settings["parameters"]["profile"] == "reconciliation-platform"
        assert settings["parameters"]["host"] == "web-1"
        assert not {"profile_path", "prometheus_path"} & set(settings["parameters"])
        if deployment.flow.name == "switch-mode":
            assert "concurrency_limit" not in settings


def test_the_served_flows_pickle_by_reference() -> None:
    """serve's runner pickles each flow into its run's process; by value, a function loses the
    globals its annotations name (Literal) and the run cannot validate its parameters."""
    import pickle

    import cloudpickle

    from flows.audit import audit_flow
    from flows.switch import switch_flow

    for flow in (audit_flow, switch_flow):
        assert pickle.loads(cloudpickle.dumps(flow)).fn is flow.fn, flow.name  # noqa: S301 - our own bytes


def test_the_served_forms_offer_no_file_parameter() -> None:
    """A deployment run that names a file is refused; its form in the UI offers no such field
    (the parameter schema Prefect draws the form from), while the choices it may make remain."""
    from datetime import timedelta

    from flows.serve import Served, deployments_for
    from stackwarden.profiles import bundled_profile_path, load_profile

    path = bundled_profile_path()
    for deployment in deployments_for(
        Served(path, load_profile(path)), host="web-1", audit_every=timedelta(minutes=15)
    ):
        form = deployment._parameter_openapi_schema.properties
        assert not {"profile_path", "prometheus_path"} & set(form), deployment.name
        assert "profile" in form and "host" in form, deployment.name
