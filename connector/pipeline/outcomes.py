"""Apply batch outcomes to the report in batch order, whatever order they arrive in.

Several requests may be in flight; the report's row ranges grow in query order, so an outcome
that arrives early waits here for the ones before it.
"""
from __future__ import annotations

import threading

from connector.records import Batch, BatchOutcome
from connector.report import JobReport


class OutcomeSequencer:
    def __init__(self, report: JobReport) -> None:
        self._report = report
        self._next = 1
        self._waiting: dict[int, BatchOutcome] = {}
        self._lock = threading.Lock()

    def __call__(self, batch: Batch, outcome: BatchOutcome) -> None:
        with self._lock:
            self._waiting[batch.index] = outcome
            while self._next in self._waiting:
                self._report.apply(self._waiting.pop(self._next))
                self._next += 1

    def flush(self) -> None:
        """Apply what is still waiting (a gap means a batch never got an outcome: its rows
        stay unsettled, so the report counts them failed)."""
        with self._lock:
            for index in sorted(self._waiting):
                self._report.apply(self._waiting.pop(index))
