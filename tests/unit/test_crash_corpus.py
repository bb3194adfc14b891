"""The crash classifier on a corpus of real-shaped crash logs (tests/data/crash_corpus.yaml):
Rust (tokio, actix), Go, Python (chained tracebacks too), Node, Java/Spring, PostgreSQL, Redis,
nginx, OOM and exit-only cases. Category accuracy must be >= 95%, and the decisive line must be
in the evidence every time; the accuracy is printed (pytest -s shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.crash import classify_crash
from stackwarden.model import CrashCategory

CORPUS = Path(__file__).resolve().parent.parent / "data" / "crash_corpus.yaml"
PROFILE_PORTS = (5432, 6379, 2000, 1000)


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]
    return cases


def _classify(case: dict[str, Any]) -> Any:
    lines = str(case["log"] or "").splitlines()
    return classify_crash(case["exit_code"], lines, PROFILE_PORTS, bool(case.get("oom_killed")))


def test_the_corpus_is_broad_enough() -> None:
    cases = _cases()
    assert len(cases) >= 40
    ids = [c["id"] for c in cases]
    assert len(set(ids)) == len(ids)
    for family in (
        "rust-tokio",
        "rust-actix",
        "go-",
        "python-chained",
        "node-",
        "java-spring",
        "postgres-could-not-bind",
        "postgres-wrong-ownership",
        "redis-",
        "nginx-",
        "oom",
        "exit-",
        "-refused",
        "-unresolved",
        "-timeout",
        "wait-for-it",
    ):
        assert any(i.startswith(family) or family in i for i in ids), family


def test_accuracy_on_the_corpus() -> None:
    cases = _cases()
    right_category, decisive_shown, wrong = 0, 0, []
    for case in cases:
        cause = _classify(case)
        expected = CrashCategory(case["category"])
        if cause.category is expected:
            right_category += 1
        else:
            wrong.append(f"{case['id']}: {cause.category} ({cause.signature}), expected {expected}")
        decisive = case["decisive"]
        if (decisive and decisive.rstrip() in cause.evidence) or (not decisive and cause.decisive_line is None):
            decisive_shown += 1
        else:
            wrong.append(f"{case['id']}: decisive line not in evidence {cause.evidence}")
    category_accuracy = right_category / len(cases)
    decisive_accuracy = decisive_shown / len(cases)
    print(
        f"\ncrash corpus: {len(cases)} cases, category accuracy {category_accuracy:.1%}, "
        f"decisive line in evidence {decisive_accuracy:.1%}"
    )
    for line in wrong:
        print("  " + line)
    assert category_accuracy >= 0.95, wrong
    assert decisive_accuracy == 1.0, wrong


@pytest.mark.parametrize("case", [c for c in _cases() if c.get("setting")], ids=lambda c: c["id"])
def test_the_missing_setting_is_named(case: dict[str, Any]) -> None:
    cause = _classify(case)
    assert cause.category is CrashCategory.CONFIGURATION
    assert cause.alternative is CrashCategory.CODE_ISSUE
    assert cause.setting == case["setting"]


@pytest.mark.parametrize("case", [c for c in _cases() if c.get("port")], ids=lambda c: c["id"])
def test_the_port_is_named(case: dict[str, Any]) -> None:
    assert _classify(case).port == case["port"]


@pytest.mark.parametrize("case", [c for c in _cases() if "dependency" in c], ids=lambda c: c["id"])
def test_the_dependency_and_its_address_are_named(case: dict[str, Any]) -> None:
    """Refused, reset, timed out, unresolved or waited for, in the wording of each library, and
    the address it names (never the DNS server it asked): what the dependency graph resolves."""
    cause = _classify(case)
    expected = case["dependency"]
    assert cause.category is not CrashCategory.CODE_ISSUE
    assert cause.dependency is not None, cause
    assert (cause.dependency.kind, cause.dependency.target) == (expected["kind"], expected["target"]), cause
