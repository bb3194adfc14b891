"""When the last failure line says nothing the classifier knows ("giving up, exiting"), the
whole log is scanned: a bind failure or a refusal on a profile port anywhere in it is the
deployment conflict it was, with its port; a refusal elsewhere is a dependency that is down.
Written against mutants of the crash classifier that survived the unit suite (docs/testing.md):
this path was never reached by it."""

from __future__ import annotations

import pytest

from stackwarden.crash import classify_crash
from stackwarden.model import CrashCategory
from stackwarden.model.finding import CrashCause

PROFILE_PORTS = (5432, 6379, 2000, 1000)


def _classify(middle: str, exit_code: int = 1) -> CrashCause:
    return classify_crash(exit_code, ["starting worker", middle, "ERROR giving up, exiting"], PROFILE_PORTS)


def test_a_refusal_on_a_profile_port_earlier_in_the_log_is_a_deployment_conflict() -> None:
    line = "WARN connect to 127.0.0.1:5432 failed: Connection refused; retrying"
    cause = _classify(line, exit_code=3)
    assert (cause.category, cause.signature, cause.port) == (
        CrashCategory.DEPLOYMENT_CONFLICT,
        "connection-refused-profile-port",
        5432,
    )
    assert cause.evidence == (line,) and cause.decisive_line == line
    assert cause.exit_code == 3 and cause.confidence == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("line", "port"),
    [
        ("listen tcp 0.0.0.0:9090: bind: address already in use (retrying)", 9090),
        ("bind 0.0.0.0:8080 and 127.0.0.1:2000 failed: address already in use", 2000),
    ],
)
def test_a_bind_failure_earlier_in_the_log_names_the_profile_port_first(line: str, port: int) -> None:
    cause = _classify(line)
    assert (cause.category, cause.signature, cause.port) == (
        CrashCategory.DEPLOYMENT_CONFLICT,
        "address-in-use",
        port,
    )
    assert cause.evidence == (line,) and cause.exit_code == 1


def test_a_refusal_on_another_port_is_a_dependency_that_is_down() -> None:
    cause = _classify("WARN connect to 127.0.0.1:9999 failed: Connection refused")
    assert cause.category is CrashCategory.CONFIGURATION
    assert cause.signature == "dependency-unreachable"
    assert cause.dependency is not None and cause.dependency.port == 9999
