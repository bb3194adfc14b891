"""What serve's audit socket answers, without a socket: only a profile it serves, named by path
and content; the report an in-process audit renders from the same snapshot, plus the line
saying how old the observations are; anything else is a one-line refusal."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwarden.model.base import Runtime
from stackwarden.pipeline import diagnose_step, render_step
from stackwarden.watch.answer import AnswerServer, Served, observed_line
from stackwarden.watch.runner import View
from tests.support.builders import profile, seed_snapshot

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _view() -> View:
    prof, snap = profile(), seed_snapshot()
    result = diagnose_step(snap, prof)
    return View(
        profile=prof,
        snapshot=snap,
        result=result,
        effective=result.findings,
        heard={Runtime.COMPOSE: NOW - timedelta(seconds=2), Runtime.HOST: NOW - timedelta(seconds=0.5)},
        gaps={},
        diagnosed_at=NOW - timedelta(seconds=1),
        started_at=NOW - timedelta(hours=1),
    )


def _server(view: View | None) -> AnswerServer:
    return AnswerServer(Path("/nonexistent/s.sock"), [Served(path="/etc/p.yaml", sha256="ab" * 32, view=lambda: view)])


def _ask(server: AnswerServer, **question: object) -> dict[str, object]:
    base = {"protocol": 1, "profile_path": "/etc/p.yaml", "profile_sha256": "ab" * 32, "format": "markdown"}
    return server.answer(json.dumps({**base, **question}).encode() + b"\n")


def test_the_report_is_the_in_process_one_plus_how_old_it_is() -> None:
    view = _view()
    answer = _ask(_server(view))
    assert answer["ok"] is True
    report = str(answer["report"])
    observed = [line for line in report.splitlines() if line.startswith("**Observed:**")]
    assert len(observed) == 1 and "Docker events stream, last word" in observed[0]
    rendered = render_step(view.result, view.snapshot, view.profile)
    assert [line for line in report.splitlines() if not line.startswith("**Observed:**")] == rendered.splitlines()
    assert ("critical", "crash-loop:backend") in {(s, i) for s, i, _ in answer["findings"]}  # type: ignore[attr-defined]


def test_a_profile_not_served_or_edited_is_refused_in_one_line() -> None:
    server = _server(_view())
    edited = _ask(server, profile_sha256=hashlib.sha256(b"edited").hexdigest())
    other = _ask(server, profile_path="/etc/other.yaml")
    assert edited == {"ok": False, "reason": "profile /etc/p.yaml: its file changed since serve read it"}
    assert other["ok"] is False and "not served here" in str(other["reason"])


def test_garbage_and_other_protocols_are_refused() -> None:
    server = _server(_view())
    assert server.answer(b"\x00\xffnot json\n")["ok"] is False
    assert "protocol" in str(_ask(server, protocol=99)["reason"])
    assert server.answer(b"[1, 2]\n")["ok"] is False


def test_a_view_still_starting_is_said_so() -> None:
    assert _ask(_server(None)) == {"ok": False, "reason": "the live view is still starting"}


def test_a_gap_and_what_it_holds_are_in_the_observed_line() -> None:
    view = _view()
    held = View(
        profile=view.profile,
        snapshot=view.snapshot,
        result=view.result.model_copy(update={"findings": ()}),
        effective=view.result.findings,
        heard=view.heard,
        gaps={Runtime.COMPOSE: (NOW - timedelta(seconds=30), "the engine closed its event stream")},
        diagnosed_at=NOW,
        started_at=view.started_at,
    )
    line = observed_line(held, NOW)
    assert "Docker NOT observed since 11:59:30 (the engine closed its event stream)" in line
    assert "held open until the runtime is seen again: " in line and "crash-loop:backend" in line
