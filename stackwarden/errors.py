"""Errors that cross layers. Each message names the file, field or resource it is about."""

from __future__ import annotations


class StackwardenError(Exception):
    """Base of every error stackwarden reports to a user instead of a traceback."""


class ProfileError(StackwardenError):
    """A profile that cannot be read or does not validate.

    ``problems`` holds one ``(field path, reason)`` pair per validation error so the CLI can
    print them all at once instead of making the user fix one and rerun.
    """

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {field}: {reason}" if field else f"{path}: {reason}" for field, reason in problems]
        super().__init__("\n".join(lines))


class TransientError(StackwardenError):
    """A transport failure that survived the adapter's bounded retries; worth a task retry."""


class PermanentError(StackwardenError):
    """A failure that retrying cannot fix (refused connection to a missing engine, 4xx)."""


class RefusedError(StackwardenError):
    """A step whose target is not what the plan saw (identity changed) or that would break a
    safety invariant; nothing was done."""


class LockedError(StackwardenError):
    """Another switch of the same profile holds the lock."""
