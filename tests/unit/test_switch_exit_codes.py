"""The CLI's exit codes for the switch's new ends: 6 unverified (nothing undone on a guess), 7
rollback incomplete (with what runs where and the commands to finish), as ``--help`` says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows import cli
from stackwarden.model import Mode
from stackwarden.model.plan import Plan, ServiceWhere, SwitchOutcome, SwitchStatus
from tests.support.builders import profile_data


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: SwitchOutcome) -> int:
    import yaml

    import flows.switch

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(profile_data()))
    monkeypatch.setattr(cli, "_check_prefect", lambda: None)
    monkeypatch.setattr(cli, "_prefect_api", lambda: None)
    monkeypatch.setattr(flows.switch, "run_switch", lambda **_: outcome)
    return cli.main(["switch", "compose-only", "--profile", str(path), "--apply", "--yes"])


def _outcome(status: SwitchStatus, **extra: Any) -> SwitchOutcome:
    return SwitchOutcome(status=status, plan=Plan(profile="seedstack", mode=Mode.COMPOSE_ONLY), **extra)


def test_unverified_is_exit_6_and_says_what_was_not_seen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "unverified: kubernetes could not be observed (timed out) until the deadline; left as it is"
    assert _run(monkeypatch, tmp_path, _outcome(SwitchStatus.UNVERIFIED, message=message)) == 6
    out, err = capsys.readouterr()
    assert "**Result:** unverified" in out and "kubernetes could not be observed" in err


def test_rollback_incomplete_is_exit_7_with_the_table_and_the_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = _outcome(
        SwitchStatus.ROLLBACK_INCOMPLETE,
        message="rollback incomplete: 1 undo step(s) failed",
        where=(
            ServiceWhere(service="api", compose="container(s) shop-api-1", kubernetes="not observed", serving=True),
        ),
        to_finish=("kubectl -n shop scale deployment/api --replicas=2", "docker stop --time 10 shop-api-1"),
    )
    assert _run(monkeypatch, tmp_path, outcome) == 7
    out, _ = capsys.readouterr()
    assert "| api | container(s) shop-api-1 | not observed |" in out
    assert out.index("kubectl -n shop scale deployment/api --replicas=2") < out.index(
        "docker stop --time 10 shop-api-1"
    )


def test_the_help_names_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["switch", "--help"]) == 0
    out = capsys.readouterr().out
    assert "6  unverified" in out and "7  rollback incomplete" in out and "1  verification or a step failed" in out


def test_switched_but_broken_by_a_code_issue_is_exit_5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mode holds, but a service crash-loops from its own code: the switch did its job and
    the exit says a person must fix the code (no switch will)."""
    from stackwarden.model.plan import Outcome, Verdict

    verdict = Verdict(
        mode=Mode.COMPOSE_ONLY,
        outcome=Outcome.BROKEN_BY_CODE_ISSUE,
        code_issues=("backend: crash loop (rust-panic-spawn-local)",),
    )
    outcome = _outcome(SwitchStatus.SWITCHED, verdict=verdict, message="switched")
    assert _run(monkeypatch, tmp_path, outcome) == 5
    _, err = capsys.readouterr()
    assert "code issue" in err


def test_rolled_back_is_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run(monkeypatch, tmp_path, _outcome(SwitchStatus.ROLLED_BACK, message="rolled back: verify failed")) == 1
