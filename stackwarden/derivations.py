"""Pure derivations of one observation, computed once per snapshot.

A snapshot is immutable, so whatever is derived from it and the profile (the shared stack view,
the findings of every rule) is the same every time it is asked for. One audit used to derive the
stack view 45 times and run every rule 4 times (each rule, each plan of the report's three modes,
the recommendation and the renderers asked again); the live view re-diagnoses on every change,
so that cost would be paid per event.

The memory is keyed by the identity of the snapshot and profile objects, never by their
content: hashing 5,000 pods would cost what it saves, and a changed observation is always a new
object (``model_copy`` included). It holds neither object: an entry goes when its snapshot is
garbage-collected, so the live view's stream of snapshots does not pile up here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot

T = TypeVar("T")

_Entry = tuple["weakref.ReferenceType[Snapshot]", "weakref.ReferenceType[Profile]", Any]
_MEMORY: dict[tuple[str, int, int], _Entry] = {}
_LOCK = threading.Lock()


def _forget(key: tuple[str, int, int]) -> None:
    with _LOCK:
        _MEMORY.pop(key, None)


def per_snapshot(name: str) -> Callable[[Callable[[Snapshot, Profile], T]], Callable[[Snapshot, Profile], T]]:
    """Memoise a pure ``(snapshot, profile) -> T`` for as long as the snapshot lives.

    Two threads asking at once may both compute (the function is pure, so either answer is the
    answer); the entry is checked against both objects, so a recycled ``id()`` never matches."""

    def decorate(derive: Callable[[Snapshot, Profile], T]) -> Callable[[Snapshot, Profile], T]:
        @wraps(derive)
        def once(snapshot: Snapshot, profile: Profile) -> T:
            key = (name, id(snapshot), id(profile))
            with _LOCK:
                entry = _MEMORY.get(key)
            if entry is not None and entry[0]() is snapshot and entry[1]() is profile:
                value: T = entry[2]
                return value
            value = derive(snapshot, profile)
            with _LOCK:
                if key not in _MEMORY:
                    weakref.finalize(snapshot, _forget, key)
                _MEMORY[key] = (weakref.ref(snapshot), weakref.ref(profile), value)
            return value

        return once

    return decorate


def remembered() -> int:
    """How many derivations are held now (tests check that they go with their snapshots)."""
    with _LOCK:
        return len(_MEMORY)
