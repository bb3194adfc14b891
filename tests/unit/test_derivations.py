"""The pure diagnosis is computed once per observation: one audit derives the shared stack view
once and runs the rules once, whoever asks (rules, report, its three plans, the recommendation,
metrics, verdict); a new observation is derived afresh; the memory goes with its snapshot."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from stackwarden import derivations, placement, rules
from stackwarden.model.base import Mode
from stackwarden.pipeline import diagnose_step, render_step
from stackwarden.planner import plan
from stackwarden.report.prometheus import render_prometheus
from stackwarden.verdict import verdict
from tests.support.builders import profile, seed_snapshot


def _count(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any) -> Any:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_one_audit_derives_the_view_once_and_runs_the_rules_once(monkeypatch: pytest.MonkeyPatch) -> None:
    views = _count(monkeypatch, placement, "_derive_stack_view")
    runs = _count(monkeypatch, rules, "_run_rules")
    prof, snap = profile(), seed_snapshot()
    result = diagnose_step(snap, prof)
    markdown = render_step(result, snap, prof)  # plans every mode, each asking for the view and findings
    render_prometheus(result, snap, prof, duration_seconds=0.1, finished_at=datetime.now(UTC))
    for mode in Mode:
        plan(snap, prof, mode)
        verdict(snap, prof, mode)
    assert (views[0], runs[0]) == (1, 1)
    assert "crash-loop:backend" in markdown


def test_the_memory_answers_what_a_fresh_derivation_answers() -> None:
    prof, snap = profile(), seed_snapshot()
    assert rules.diagnose(snap, prof) == rules._run_rules(snap, prof)
    assert placement.stack_view(snap, prof) == placement._derive_stack_view(snap, prof)


def test_a_new_observation_is_derived_afresh() -> None:
    prof, snap = profile(), seed_snapshot()
    before = {f.id for f in rules.diagnose(snap, prof)}
    healed = snap.model_copy(update={"containers": tuple(c for c in snap.containers if c.compose_service != "backend")})
    after = {f.id for f in rules.diagnose(healed, prof)}
    assert "crash-loop:backend" in before
    assert "crash-loop:backend" not in after
    assert placement.stack_view(healed, prof).placements["backend"].containers == ()


def test_the_memory_goes_with_its_snapshot() -> None:
    prof = profile()
    gc.collect()
    held = derivations.remembered()
    snap = seed_snapshot()
    rules.diagnose(snap, prof)
    assert derivations.remembered() >= held + 2  # the findings and the view they read
    del snap
    gc.collect()
    assert derivations.remembered() == held


def test_the_shared_view_cannot_be_changed_by_a_reader() -> None:
    view = placement.stack_view(seed_snapshot(), profile())
    with pytest.raises(TypeError):
        view.placements["backend"] = view.placements["frontend"]  # type: ignore[index]
