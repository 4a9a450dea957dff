"""Cooperative cancellation of a run: a token that signal handlers, schedulers and workflow
runners trip, and that every stage of the run watches.

`cancel()` may be called from a signal handler: it never blocks and never raises. Stages
register callbacks to wake up what a flag cannot (an engine query, requests in flight);
callbacks must be quick and non-blocking for the same reason.
"""
from __future__ import annotations

import threading
from typing import Callable

from connector.errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        # Re-entrant: a signal handler runs on the main thread, possibly while that same thread
        # is inside add_callback.
        self._lock = threading.RLock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self.reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "interrupted") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - a failing waker must not stop the others
                pass

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to `timeout` seconds; True as soon as the token is cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("the export was interrupted")

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` on cancellation (at once if already cancelled); returns a remover."""
        with self._lock:
            if not self._event.is_set():
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
                return lambda: self._callbacks.pop(key, None)  # type: ignore[func-returns-value]
        callback()
        return lambda: None
