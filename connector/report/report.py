"""The job report: every row's outcome, counted, sampled and rendered.

Every row read ends in exactly one bucket: accepted (`events_sent`), invalid, rejected by the API,
or failed (sent without confirmation, or never sent). `failed` is derived as the complement of the
other three, so `rows_read == events_sent + invalid_records + rejected_events + failed_events`
holds by construction, whatever way the job ended.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from connector.masking import is_code_like, mask_value, show_value
from connector.records import BatchOutcome
from connector.wording import plural

from .ranges import RangeList, complement

MAX_INVALID_SAMPLES = 10
MAX_REJECTED_LISTED = 1000
MAX_INVALID_ROWS_LISTED = 1000


@dataclass
class JobReport:
    output_type: str
    destination: str
    dry_run: bool = False
    status: str = "running"
    reason: str | None = None
    error: str | None = None
    rows_read: int = 0
    requests: int = 0
    retries: int = 0
    batches: int = 0
    spilled_batches: int = 0  # batches that waited on disk while the sender was behind
    peak_in_flight: int = 0  # requests in flight at once, at the most
    concurrency_limit: int = 0  # how many the delivery allowed at the end
    concurrency_lowered: dict[str, int] = field(default_factory=dict)  # cause -> times lowered
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    warnings: list[str] = field(default_factory=list)
    invalid_by_column: Counter[str] = field(default_factory=Counter)
    invalid_samples: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    accepted_rows: RangeList = field(default_factory=RangeList)
    invalid_rows: RangeList = field(default_factory=RangeList)
    rejected_rows: RangeList = field(default_factory=RangeList)
    # Sections an output adds (its own counters), merged into the report after the core keys.
    sections: list[Callable[[], Mapping[str, Any]]] = field(default_factory=list)
    # Every message that enters the report passes this (the run's secrets redactor).
    redact: Callable[[str], str] = field(default=lambda text: text, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ counting
    @property
    def events_sent(self) -> int:
        return self.accepted_rows.count

    @property
    def invalid_records(self) -> int:
        return self.invalid_rows.count

    @property
    def rejected_events(self) -> int:
        return self.rejected_rows.count

    def failed_rows(self) -> RangeList:
        return complement(self.rows_read, self.accepted_rows, self.invalid_rows, self.rejected_rows)

    @property
    def failed_events(self) -> int:
        return self.rows_read - self.events_sent - self.invalid_records - self.rejected_events

    @property
    def duration_seconds(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def read_up_to(self, row: int) -> None:
        """Rows 1..row have left the engine (called by the reading thread)."""
        self.rows_read = row

    def warn(self, message: str) -> str:
        """Record a warning; returns it redacted, for display."""
        message = self.redact(message)
        with self._lock:
            self.warnings.append(message)
        return message

    def add_invalid(self, row: int, column: str, rule: str, reason: str, value: Any,
                    show_plain: bool) -> None:
        self.invalid_rows.add(row)
        self.invalid_by_column[column] += 1
        if len(self.invalid_samples) < MAX_INVALID_SAMPLES:
            sample: dict[str, Any] = {"row": row, "column": column, "rule": rule, "reason": reason}
            if value is not None:
                # Even a code column may hold shifted data (an email in event_name): show only
                # numbers and short codes as they are.
                plain = show_plain and (isinstance(value, (int, float)) or is_code_like(value))
                sample["value"] = show_value(value) if plain else mask_value(value)
            self.invalid_samples.append(sample)

    def apply(self, outcome: BatchOutcome) -> None:
        self.batches += 1
        self.requests += outcome.requests
        self.retries += outcome.retries
        self.accepted_rows.extend(outcome.accepted)
        for r in outcome.rejected:
            self.rejected_rows.add(r.row)
            if len(self.rejected) < MAX_REJECTED_LISTED:
                self.rejected.append({"row": r.row, "batch": r.batch, "position": r.position,
                                      "reason": r.reason})

    def fail(self, reason: str, error: str | None = None) -> None:
        """Record the first cause of failure; later ones are consequences."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.error = None if error is None else self.redact(error)

    def finish(self) -> None:
        self.finished = time.monotonic()
        if self.reason is None and (self.rejected_events or self.failed_events):
            self.reason = "events_not_accepted"
            self.error = (f"{plural(self.rejected_events, 'event')} rejected and "
                          f"{self.failed_events:,} not accepted by the API")
        self.status = "error" if self.reason else "success"

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        duration = self.duration_seconds
        failed = self.failed_rows()
        return {
            "status": self.status,
            "reason": self.reason,
            "error": self.error,
            "output_type": self.output_type,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "events_sent": self.events_sent,
            "invalid_records": self.invalid_records,
            "rejected_events": self.rejected_events,
            "failed_events": failed.count,
            "requests": self.requests,
            "retries": self.retries,
            "batches": self.batches,
            "spilled_batches": self.spilled_batches,
            "peak_in_flight": self.peak_in_flight,
            "concurrency_limit": self.concurrency_limit,
            "concurrency_lowered": dict(self.concurrency_lowered),
            **{k: v for section in self.sections for k, v in section().items()},
            "duration_seconds": round(duration, 3),
            "events_per_second": round(self.events_sent / duration, 1) if duration > 0 else None,
            "invalid_by_column": dict(self.invalid_by_column.most_common()),
            "invalid_samples": self.invalid_samples,
            "invalid_rows": self.invalid_rows.as_list(MAX_INVALID_ROWS_LISTED),
            "rejected": self.rejected,
            "accepted_rows": self.accepted_rows.as_list(),
            "failed_rows": failed.as_list(),
            "warnings": self.warnings,
        }

    def summary(self, with_error: bool = True) -> str:
        """The text summary; `with_error=False` leaves out the error line (a caller that
        printed the error first). A run that failed before reading a row or sending a request
        has no counters worth showing: one line."""
        d = self.to_dict()
        verb = "written" if self.dry_run else "accepted"
        head = (f"{'Dry run' if self.dry_run else 'Export'} {d['status'].upper()}"
                + (f" ({d['reason']})" if d["reason"] else "")
                + f" in {d['duration_seconds']:.1f}s -> {d['destination']}")
        if d["status"] != "success" and not d["rows_read"] and not d["requests"]:
            return head + (f"\n  error: {d['error']}" if with_error and d["error"] else "")
        lines = [
            head,
            f"  rows read        {d['rows_read']:>12,}",
            f"  events {verb:<9} {d['events_sent']:>12,}",
            f"  invalid, skipped {d['invalid_records']:>12,}",
            f"  rejected by API  {d['rejected_events']:>12,}",
            f"  failed/not sent  {d['failed_events']:>12,}",
            f"  requests {d['requests']:,}, retries {d['retries']:,}, "
            f"{d['events_per_second'] or 0:,.0f} events/s",
        ]
        if d["concurrency_lowered"]:
            causes = ", ".join(f"{k} x{v:,}" for k, v in sorted(d["concurrency_lowered"].items()))
            lines.append(f"  concurrency lowered ({causes}): peak {d['peak_in_flight']} in "
                         f"flight, limit {d['concurrency_limit']} at the end")
        if d["error"] and with_error:
            lines.append(f"  error: {d['error']}")
        if d["invalid_by_column"]:
            lines.append("  invalid by column: " + ", ".join(
                f"{k}={v:,}" for k, v in d["invalid_by_column"].items()))
        for s in d["invalid_samples"][:5]:
            value = f" (value {s['value']})" if "value" in s else ""
            lines.append(f"    row {s['row']}: {s['column']} {s['reason']}{value}")
        for r in d["rejected"][:5]:
            lines.append(f"    row {r['row']} (batch {r['batch']}, position {r['position']}): "
                         f"{r['reason']}")
        if d["failed_events"]:
            lines.append("  not accepted rows: " + _ranges_text(d["failed_rows"]))
        return "\n".join(lines)


def _ranges_text(ranges: list[list[int]], limit: int = 8) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit]]
    if len(ranges) > limit:
        parts.append(f"... ({plural(len(ranges) - limit, 'more range')}; see --report-file)")
    return ", ".join(parts)
