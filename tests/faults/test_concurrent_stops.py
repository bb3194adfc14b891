"""Independent stops run concurrently: two host services that each take 3 s to shut down cleanly
are stopped in about 3 s, not 6 (the break phase, bounded by the flow's task runner)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from flows.switch import run_switch
from stackwarden.model.plan import StepStatus, SwitchStatus
from tests.support.realparts import free_ports, host_listener

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

SLOW = 3.0


def test_two_slow_stops_take_about_the_longest_not_the_sum(
    tmp_path: Path, docker_engine: None, prefect_server: None
) -> None:
    one, two = free_ports(2)
    services = {
        name: {
            "ports": [port],
            "host": {"executables": [f"swfault-{name}"], "grace_period_seconds": 10},
            "no_home": "stop",
        }
        for name, port in (("one", one), ("two", two))
    }
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": "swfault-conc",
                "compose": {"project": f"swfault-conc-{secrets.token_hex(3)}", "files": ["/nonexistent.yml"]},
                "services": services,
            }
        )
    )
    with (
        host_listener("swfault-one", "127.0.0.1", one, slow_stop=SLOW),
        host_listener("swfault-two", "127.0.0.1", two, slow_stop=SLOW),
    ):
        outcome = run_switch(mode="k8s-only", profile_path=str(profile), apply=True, deadline_seconds=20)
    assert outcome.status is SwitchStatus.SWITCHED, outcome.message
    assert [s.phase for s in outcome.plan.steps] == ["break", "break"]
    assert all(r.status is StepStatus.APPLIED for r in outcome.journal)
    span = max(r.ended for r in outcome.journal) - min(r.started for r in outcome.journal)
    assert SLOW <= span.total_seconds() < 2 * SLOW - 0.5, span
