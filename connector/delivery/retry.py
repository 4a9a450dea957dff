"""When to try a request again: exponential waits, capped, and the server's Retry-After."""
from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any, Generator


@dataclass(frozen=True)
class RetryPolicy:
    max_retry: int  # resends after the first attempt
    initial_wait: float  # seconds before the first resend; doubles on each
    max_wait: float  # cap of one wait, and of a Retry-After


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_waits(initial: float, maximum: float) -> Generator[float, Any, None]:
    """backoff wait generator: doubling from `initial` up to `maximum`, or the server's Retry-After.

    backoff sends the exception that caused the retry into the generator, which is how the
    Retry-After header reaches the wait.
    """
    exc = yield  # type: ignore[misc]
    step = 0
    while True:
        wait = min(initial * (2 ** step), maximum)
        step += 1
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, maximum)
        exc = yield wait
