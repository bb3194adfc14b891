"""The rule registry: every rule is a pure ``(Snapshot, Profile) -> Iterable[Finding]``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot

Rule = Callable[[Snapshot, Profile], Iterable[Finding]]

RULES: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    """Register a rule under ``name``; a name registered twice is a programming error."""

    def register(func: Rule) -> Rule:
        if name in RULES:
            raise ValueError(f"rule {name!r} registered twice")
        RULES[name] = func
        func.__rule_name__ = name  # type: ignore[attr-defined]
        return func

    return register
