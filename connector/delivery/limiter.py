"""How many requests may be in flight at once, learnt from the destination's answers.

Fixed, it is the ceiling (`parallelism`). Adaptive, it follows additive increase and
multiplicative decrease, as TCP does for its window:
- it starts at 2 (or the ceiling, if lower);
- after a window of `limit` successes that arrived while every slot was busy, it grows by one
  (a pipe that is not full says nothing about the destination);
- on a push-back (429, 503, a timeout) it halves, never below 1; one push-back per round of
  requests counts once: answers to requests sent before the last decrease are not held against
  the new limit;
- after a push-back at a level, growing to that level again waits for a quiet period (the
  probe), so a destination with a hard concurrency limit is probed every `probe_seconds`, not
  every few round trips. A full window at or above that level forgets it.
A Retry-After from any response closes one shared gate: no request starts before it opens.
A plain 500 is not a push-back (LINE may have accepted part of the batch): it is retried at the
same limit.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

from connector.cancel import CancelToken

START = 2
PROBE_SECONDS = 10.0


class ConcurrencyLimiter:
    def __init__(self, ceiling: int, adaptive: bool, *, start: int = START,
                 probe_seconds: float = PROBE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self.adaptive = adaptive
        self.limit = min(start, self.ceiling) if adaptive else self.ceiling
        self.in_flight = 0
        self.peak_in_flight = 0
        self.lowered: Counter[str] = Counter()  # cause -> how often the limit was lowered
        self._probe_seconds = probe_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._epoch = 0  # bumped on each decrease
        self._successes = 0  # of the current window
        self._pushback: int | None = None  # the level the destination last pushed back at
        self._pushback_at = 0.0
        self._gate_until = 0.0

    def acquire(self, cancel: CancelToken) -> int:
        """Wait for a free slot and an open gate; returns the slot's epoch for `release`.
        Raises Cancelled when `cancel` trips while waiting."""
        with self._cond:
            while True:
                cancel.raise_if_cancelled()
                wait = self._gate_until - self._clock()
                if wait <= 0 and self.in_flight < self.limit:
                    break
                self._cond.wait(min(0.1, wait) if wait > 0 else 0.1)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return self._epoch

    def release(self, epoch: int, *, success: bool = False, pushback: str | None = None) -> None:
        """End a request: a success, a push-back (its cause), or neither (a plain retryable
        failure, a rejection: no signal about the destination's capacity)."""
        with self._cond:
            full = self.in_flight >= self.limit
            self.in_flight -= 1
            if self.adaptive:
                if pushback is not None:
                    self._lower(epoch, pushback)
                elif success and full:
                    self._grow()
            self._cond.notify_all()

    def hold(self, seconds: float) -> None:
        """A Retry-After: no request starts in the next `seconds`."""
        with self._cond:
            self._gate_until = max(self._gate_until, self._clock() + seconds)
            self._cond.notify_all()

    def _lower(self, epoch: int, cause: str) -> None:
        if epoch != self._epoch:
            return  # sent before the last decrease: already answered for
        self._pushback = self.limit
        self._pushback_at = self._clock()
        new = max(1, self.limit // 2)
        if new < self.limit:
            self.lowered[cause] += 1
        self.limit = new
        self._epoch += 1
        self._successes = 0

    def _grow(self) -> None:
        self._successes += 1
        if self._successes < self.limit:
            return
        self._successes = 0
        if self._pushback is not None:
            if self.limit >= self._pushback:
                self._pushback = None  # a full window where it pushed back: it takes more now
            elif self.limit + 1 >= self._pushback and \
                    self._clock() - self._pushback_at < self._probe_seconds:
                return  # not yet time to probe the level it pushed back at
        if self.limit < self.ceiling:
            self.limit += 1
