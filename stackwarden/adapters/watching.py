"""What every watch of the live view shares: how it reports, and how it waits before trying
again after losing its runtime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from stackwarden.live.state import Change

Emit = Callable[[Change], None]
"""Where a watch reports its changes (the live view's queue); safe to call from any thread."""


def now() -> datetime:
    """The time a change is stamped with (aware, UTC, like the snapshot's)."""
    return datetime.now(UTC)


def why(exc: BaseException) -> str:
    """One line saying why a watch was lost: the error's type and words."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Backoff:
    """Waits between attempts to get a lost runtime back: doubling from ``first`` up to ``cap``
    seconds, from ``first`` again once an attempt succeeded. Short enough that a restarted
    engine is seen again within seconds, long enough not to hammer one that stays down."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        """The wait before the next attempt."""
        wait, self._next = self._next, min(self._next * 2, self.cap)
        return wait

    @property
    def retrying(self) -> bool:
        """Attempts have failed since the last success (the loss was already reported)."""
        return self._next != self.first

    def reset(self) -> None:
        """An attempt succeeded: the next loss starts from ``first`` again."""
        self._next = self.first
