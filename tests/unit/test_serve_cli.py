"""``stackwarden serve`` inputs, and flow parameters that all have working defaults."""

from __future__ import annotations

import argparse
import inspect
from datetime import timedelta
from pathlib import Path

import pytest

from flows.audit import audit_flow
from flows.cli import EXIT_USAGE, main, parse_duration
from flows.switch import switch_flow
from stackwarden.profiles import bundled_profile_path, default_profile_path, load_profile


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("90s", 90), ("1h30m", 5400), ("1d", 86400), ("600", 600), ("2H", 7200)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "9", "5s", "15 minutes", "1h-30m", "m", "-1h"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_serve_rejects_a_bad_duration_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--audit-every", "soon"]) == EXIT_USAGE
    assert "'soon' is not a duration" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["-1", "3601", "nan", "inf", "five"])
def test_serve_rejects_a_bad_drain_timeout_with_exit_2(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--drain-timeout", text]) == EXIT_USAGE
    assert f"{text!r} is not" in capsys.readouterr().err


def test_serve_rejects_a_malformed_profile_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert main(["serve", "--profile", str(bad)]) == EXIT_USAGE


@pytest.mark.parametrize("flow", [audit_flow, switch_flow])
def test_every_flow_parameter_has_a_default(flow: object) -> None:
    """A schedule or ``prefect flow serve`` binds no parameter: each must have a default."""
    missing = [
        name
        for name, p in inspect.signature(flow.fn).parameters.items()  # type: ignore[attr-defined]
        if p.default is inspect.Parameter.empty
    ]
    assert missing == []


def test_the_bundled_profile_is_found_through_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """It ships as package data (stackwarden/bundled_profiles) so an installed package finds it
    from any working directory."""
    monkeypatch.delenv("STACKWARDEN_PROFILE", raising=False)
    monkeypatch.chdir("/")
    path = default_profile_path()
    assert path == bundled_profile_path()
    assert load_profile(path).name == "reconciliation-platform"
    package_copy = Path(__import__("stackwarden").__file__).parent / "bundled_profiles" / path.name
    assert package_copy.is_file()
