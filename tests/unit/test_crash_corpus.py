"""The crash classifier on a corpus of real-shaped crash logs (tests/data/crash_corpus.yaml):
Rust (tokio, actix), Go, Python (chained tracebacks too), Node, Java/Spring, PostgreSQL, Redis,
nginx, OOM and exit-only cases. Every case must be classified in its category with its decisive
line in the evidence: the gate is 100%. A case the classifier cannot handle yet carries
``known_miss: REASON`` in the corpus: it is listed (pytest -s shows the list), kept out of the
gate, and must still miss, so that a fix removes the marker instead of hiding under a
percentage. New cases are written before the classifier changes: write the case, see it fail,
then fix."""

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


def _misses(case: dict[str, Any]) -> list[str]:
    """What the classifier gets wrong on ``case``: its category, or its decisive line."""
    cause = _classify(case)
    expected = CrashCategory(case["category"])
    wrong = []
    if cause.category is not expected:
        wrong.append(f"{case['id']}: {cause.category} ({cause.signature}), expected {expected}")
    decisive = case["decisive"]
    if not ((decisive and decisive.rstrip() in cause.evidence) or (not decisive and cause.decisive_line is None)):
        wrong.append(f"{case['id']}: decisive line not in evidence {cause.evidence}")
    return wrong


def test_every_case_of_the_corpus_is_right() -> None:
    cases = [c for c in _cases() if not c.get("known_miss")]
    known = [c for c in _cases() if c.get("known_miss")]
    wrong = [line for case in cases for line in _misses(case)]
    print(f"\ncrash corpus: {len(cases)} cases in the gate, {len(cases) - len({w.split(':')[0] for w in wrong})} right")
    for case in known:
        print(f"  known miss {case['id']}: {case['known_miss']}")
    assert wrong == []


def test_a_known_miss_still_misses() -> None:
    """A known miss that the classifier now gets right must lose its marker (and join the gate)."""
    fixed = [c["id"] for c in _cases() if c.get("known_miss") and not _misses(c)]
    assert fixed == [], f"right now, remove their known_miss: {fixed}"


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
