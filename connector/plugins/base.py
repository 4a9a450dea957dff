"""The contract between the runtime and an output plugin.

The runtime owns the query, the streaming, the batching, the threads and the report. A plugin owns
what is specific to its destination: its parameter schema, which columns it needs, how one row
becomes one encoded record (or an InvalidRecord), and how one batch is delivered. That split keeps
new outputs small, in the way of Singer SDK sinks and Embulk output plugins.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, Mapping, Sequence


class InvalidRecord(ValueError):
    """A row that breaks a rule. `reason` must never contain the value: it may be personal data."""

    def __init__(self, column: str, rule: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.rule = rule
        self.reason = reason


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
    """Every record of a batch ends accepted, rejected or failed; nothing else."""

    accepted: list[int] = field(default_factory=list)  # row numbers
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    error: str | None = None  # why `failed` is not empty
    fatal: bool = False  # stop the job: later batches cannot succeed either


class RecordEncoder(ABC):
    """Turns one source row into one encoded record; raises FieldError when the row is invalid."""

    @abstractmethod
    def encode(self, row: Sequence[Any]) -> bytes: ...


class Pushdown(ABC):
    """An encoder compiled into the engine's SQL, so that the engine builds most records.

    `sql` wraps the user's query. Its result has columns of the plugin's own, then the raw
    `columns` the plugin reads. The runtime fetches it as Arrow record batches; for each batch
    `encode_batch` gives one record per row, or None where `encoder` (the reference, on the Python
    values `rows` returns) must decide, and name the error of an invalid row.
    """

    sql: str
    columns: list[str]
    encoder: RecordEncoder

    @abstractmethod
    def encode_batch(self, batch: Any) -> list[bytes | None]: ...

    @abstractmethod
    def rows(self, batch: Any, indices: list[int]) -> list[tuple[Any, ...]]: ...

    def encode_all(self, batch: Any) -> tuple[list[bytes | None], int,
                                              list[tuple[int, InvalidRecord, tuple[Any, ...]]]]:
        """(records, how many the engine built, (index, error, raw row) of invalid rows);
        a record is None exactly for an invalid row."""
        records = self.encode_batch(batch)
        missing = [i for i, r in enumerate(records) if r is None]
        invalid = []
        if missing:
            encode = self.encoder.encode
            for i, row in zip(missing, self.rows(batch, missing)):
                try:
                    records[i] = encode(row)
                except InvalidRecord as err:
                    # Without its traceback: that would hold this frame, and with it the whole
                    # batch, in a reference cycle until the next full garbage collection.
                    invalid.append((i, err.with_traceback(None), row))
        return records, len(records) - len(missing), invalid


class Sink(ABC):
    """Delivers batches. `send` never raises for a delivery problem: it reports it in the outcome.

    The caller owns the outcome, so whatever was settled before an interrupt (Ctrl-C in the
    middle of splitting a rejected batch) still reaches the report.
    """

    @abstractmethod
    def send(self, batch: Batch, outcome: BatchOutcome) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class OutputPlugin(ABC):
    """One output type, found by its `type` in the `connector.outputs` entry-point group."""

    type: ClassVar[str]
    #: Columns matched case-insensitively; missing ones are a configuration error.
    required_columns: ClassVar[tuple[str, ...]] = ()
    #: Columns the plugin reads; any other column gets a warning.
    known_columns: ClassVar[tuple[str, ...]] = ()
    #: The column `--shard` hashes: a stable per-event key.
    shard_column: ClassVar[str | None] = None
    #: Columns whose values may appear unmasked in invalid-row samples (never personal data).
    visible_columns: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    @classmethod
    def schema(cls) -> dict[str, Any]:
        text = resources.files("schemas").joinpath(f"{cls.type}.json").read_text(encoding="utf-8")
        return json.loads(text)

    @property
    @abstractmethod
    def batch_size(self) -> int: ...

    @property
    @abstractmethod
    def ignore_invalid_records(self) -> bool: ...

    @abstractmethod
    def encoder(self, columns: Sequence[str]) -> RecordEncoder:
        """Compile the per-job plan for these (already checked) columns."""

    def pushdown(self, sql: str, dialect: str,
                 described: Sequence[tuple[str, str]]) -> Pushdown | None:
        """The encoder compiled into this engine's SQL for these (already checked) columns and
        their types, or None: rows are then fetched and encoded one by one."""
        return None

    @abstractmethod
    def sink(self) -> Sink:
        """A sink that delivers to the destination."""

    @abstractmethod
    def dry_run_sink(self, path: str) -> Sink:
        """A sink that writes the exact request bodies to `path` and sends nothing."""

    def describe_destination(self) -> str:
        """A line for logs, without secrets."""
        return self.type
