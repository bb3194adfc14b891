"""A printed stop waits as long as the switch would: the profile's grace period for that
service, not a default. Pasted, a shorter wait lets the next line (the start on the freed port)
race a database still shutting down ("address already in use"), the drift between printed advice
and executed steps that the run layer exists to prevent."""

from __future__ import annotations

import re
import shlex

from stackwarden.model.base import Mode
from stackwarden.planner import plan
from stackwarden.rules import diagnose
from tests.support.builders import profile, profile_data, seed_snapshot


def _waits(lines: tuple[str, ...] | list[str]) -> set[int]:
    return {int(m.group(1)) for line in lines for m in re.finditer(r"\btimeout (\d+) sh -c", line)}


def test_the_audits_advice_waits_for_the_services_own_grace_period() -> None:
    data = profile_data()
    data["services"]["postgres"]["host"]["grace_period_seconds"] = 95
    data["services"]["redis"]["host"]["grace_period_seconds"] = 41
    seeded = profile(services=data["services"])
    findings = diagnose(seed_snapshot(), seeded)
    printed = [c for f in findings for c in f.commands if "timeout" in c]
    assert printed, [f.commands for f in findings]
    waits = _waits(printed)
    assert waits <= {95, 41} and waits, printed
    assert 30 not in waits


def test_the_advice_and_the_plan_wait_alike() -> None:
    data = profile_data()
    data["services"]["postgres"]["host"]["grace_period_seconds"] = 95
    seeded = profile(services=data["services"])
    snapshot = seed_snapshot()
    advised = _waits([c for f in diagnose(snapshot, seeded) if "postgres" in f.services for c in f.commands])
    steps = plan(snapshot, seeded, Mode.COMPOSE_ONLY).steps
    planned = _waits([shlex.join(argv) for step in steps for argv in step.commands()])
    assert 95 in advised and 95 in planned, (advised, planned)
