"""Honour Azure DevOps' 429 `Retry-After` within a bounded total wait; sleep and clock are injected.

Only 429 is retried here: the request was refused before it was processed, so repeating it cannot start
a second run. A 5xx or a timeout may have started the run, so those raise and Lambda's retry decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from .errors import AzureDevOpsThrottledError

T = TypeVar("T")
MAX_ATTEMPTS = 8


class Throttled(Exception):
    """Raised by a call that got a 429; carries the `Retry-After` header, if any."""

    def __init__(self, retry_after: str | None) -> None:
        super().__init__(f"429 Too Many Requests (Retry-After: {retry_after})")
        self.retry_after = retry_after


def retry_after_seconds(header: str | None, attempt: int, now: datetime) -> float:
    """Seconds to wait: the header's delta-seconds or HTTP-date; without one, 1, 2, 4, ... seconds."""
    fallback = float(min(2 ** (attempt - 1), 30))
    if header is None or not header.strip():
        return fallback
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return fallback
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def with_throttle_retries(
    call: Callable[[], T],
    *,
    describe: str,
    max_wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> T:
    waited = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return call()
        except Throttled as throttled:
            delay = retry_after_seconds(throttled.retry_after, attempt, now())
            if waited + delay > max_wait_seconds or attempt == MAX_ATTEMPTS:
                raise AzureDevOpsThrottledError(
                    f"{describe}: Azure DevOps answered 429 {attempt} time(s); waited {waited:g}s, and the next "
                    f"Retry-After ({delay:g}s) would exceed ADO_THROTTLE_MAX_WAIT_SECONDS={max_wait_seconds:g}",
                    hint="nothing was started; Lambda retries the event later, or replay it from the DLQ",
                ) from throttled
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
