"""Progress of a long export: a live line on a terminal, a log line every few seconds elsewhere."""
from __future__ import annotations

import sys
import threading
from typing import Callable, TextIO

from .report import JobReport

LOG_INTERVAL_SECONDS = 5.0


def _line(report: JobReport) -> str:
    elapsed = report.duration_seconds
    rate = report.events_sent / elapsed if elapsed > 0 else 0.0
    return (f"rows read {report.rows_read:,} | events sent {report.events_sent:,} | "
            f"invalid {report.invalid_records:,} | rejected {report.rejected_events:,} | "
            f"{rate:,.0f} events/s | {elapsed:,.0f}s")


class Progress:
    """Context manager that reports while the job runs. Reads counters only, never row data."""

    def __init__(self, report: JobReport, stream: TextIO = sys.stderr, enabled: bool = True,
                 interval: float = LOG_INTERVAL_SECONDS,
                 redact: Callable[[str], str] = lambda s: s) -> None:
        self.report = report
        self.stream = stream
        self.enabled = enabled
        self.interval = interval
        self.redact = redact
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = None

    def __enter__(self) -> "Progress":
        if not self.enabled:
            return self
        if self.stream.isatty():
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            console = Console(file=self.stream)
            self._live = Live(Text(""), console=console, refresh_per_second=4, transient=True,
                              get_renderable=lambda: Text(_line(self.report)))
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._log_loop, name="connector-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def _log_loop(self) -> None:
        while not self._stop.wait(self.interval):
            print(f"[connector] {_line(self.report)}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.enabled:
            print(self.redact(text), file=self.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
        if self._thread is not None:
            self._thread.join(timeout=1)
