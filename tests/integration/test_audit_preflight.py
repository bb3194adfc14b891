"""The audit's mode sections run the switch's own preflight (every check that changes nothing),
so the report never offers a plan the switch would refuse: here a compose service whose image is
not on the host. Real Docker engine and Compose v2; audit and switch in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stackwarden.model import Mode
from stackwarden.model.plan import SwitchOutcome, SwitchStatus
from stackwarden.pipeline import run_audit
from stackwarden.profiles import load_profile
from stackwarden.report import render_json
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import run
from tests.support.compose import unique_name
from tests.support.realparts import free_ports

pytestmark = [pytest.mark.docker]


def test_a_mode_the_switch_would_refuse_is_shown_refused_with_the_same_reason(
    tmp_path: Path, docker_engine: None
) -> None:
    (port,) = free_ports(1)
    name = unique_name("swtest-pfaudit")
    image = f"stackwarden-test/never-pulled-{name}:0"
    compose = tmp_path / "compose.yaml"
    compose.write_text(yaml.safe_dump({"services": {"web": {"image": image, "ports": [f"127.0.0.1:{port}:80"]}}}))
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "compose": {"project": name, "files": [str(compose)]},
                "services": {"web": {"ports": [port]}},
            }
        )
    )
    profile = load_profile(profile_path)
    audit = run_audit(profile)
    refusal = f"preflight: image {image} is not present on this host"
    section = audit.markdown.split("Option 1: Use Docker Compose only", 1)[1].split("**Pros:**", 1)[0]
    assert "`stackwarden switch compose-only` would **refuse**" in section
    assert refusal in section and "```bash" not in section  # no commands for a plan that would be refused
    assert audit.result.mode_refusals[Mode.COMPOSE_ONLY][0].startswith(refusal)
    assert json.loads(render_json(audit.result, audit.snapshot))["mode_refusals"]["compose-only"][0].startswith(refusal)

    switch = run(profile, Mode.COMPOSE_ONLY, LocalExecutor(profile))
    assert isinstance(switch, SwitchOutcome) and switch.status is SwitchStatus.REFUSED
    assert refusal in switch.message
