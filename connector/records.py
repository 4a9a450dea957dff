"""The vocabulary every stage shares: batches of encoded records and what became of them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Batch:
    """Encoded records in query order, with the 1-based query row number of each."""

    index: int
    records: list[bytes]
    rows: list[int]

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class Rejection:
    row: int
    batch: int
    position: int  # 0-based position of the record inside its batch
    reason: str


@dataclass
class BatchOutcome:
    """What became of a batch's records. A record that is neither accepted nor rejected failed:
    the report derives `failed` as the complement, so an outcome cut short (by a cancellation in
    the middle of splitting a rejected batch) still adds up."""

    accepted: list[int] = field(default_factory=list)  # row numbers
    rejected: list[Rejection] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    error: str | None = None  # why some records are not settled
    fatal: bool = False  # stop the job: later batches cannot succeed either


@dataclass(frozen=True)
class RowBatch:
    """Rows as an engine's driver decoded them from the wire, before its per-value conversion to
    Python types (which costs more than the decoding), with that conversion for each column: a
    consumer converts only the values it needs, and gets exactly what the row path would read."""

    rows: list[list[Any]]
    converters: Sequence[Callable[[Any], Any]]

    def __len__(self) -> int:
        return len(self.rows)
