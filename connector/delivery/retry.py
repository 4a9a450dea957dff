"""When to try a request again: doubling waits, capped, and the server's Retry-After."""
from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_retry: int  # resends after the first attempt
    initial_wait: float  # seconds before the first resend; doubles on each
    max_wait: float  # cap of one wait, and of a Retry-After

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based). The server's
        Retry-After wins over the doubling, within the cap."""
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        return min(self.initial_wait * 2 ** (attempt - 1), self.max_wait)


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
