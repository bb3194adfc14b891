"""One retry policy for transport blips: bounded in attempts and seconds, logged
through the caller's logger, honouring Retry-After on 429; exhaustion raises TransientError."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from stackwarden.errors import TransientError

T = TypeVar("T")


class RetryableCall(Exception):
    """Raised inside an adapter call to ask for a retry; ``retry_after`` overrides the backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RetryableCall) and exc.retry_after is not None:
        return min(exc.retry_after, 10.0)
    return float(wait_exponential(multiplier=0.2, max=2.0)(state))


def with_retries(
    call: Callable[[], T],
    what: str,
    logger: logging.Logger,
    attempts: int = 3,
    max_seconds: float = 15.0,
) -> T:
    """Run ``call``; retry it while it raises ``RetryableCall``; then raise ``TransientError``."""

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "%s failed (attempt %d of at most %d, within %gs): %s; retrying",
            what,
            state.attempt_number,
            attempts,
            max_seconds,
            exc,
        )

    retrying = Retrying(
        retry=retry_if_exception_type(RetryableCall),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        wait=_wait,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(call)
    except RetryableCall as exc:
        made = int(retrying.statistics.get("attempt_number", attempts))
        raise TransientError(f"{what}: {exc} (gave up after {made} attempt{'s' if made != 1 else ''})") from exc
