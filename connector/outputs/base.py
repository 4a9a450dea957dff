"""The contract between the runtime and an output plugin.

The runtime owns the query, the streaming, the batching, the threads, delivery and the report.
An output owns what is specific to its destination: its parameter schema, which columns it
needs, how one row becomes one encoded record (or an InvalidRecord), and how a batch is
delivered, which for an HTTP API means configuring the generic delivery layer
(`connector.delivery`) with its request shape and a response classifier. That split keeps new
outputs small, in the way of Singer SDK sinks and Embulk output plugins.

Every optional hook is declared here with its default; the runtime never probes for attributes.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from importlib import resources
from typing import Any, ClassVar, Mapping, Protocol

from connector.delivery import Sink
from connector.mapping import ColumnBinding


class InvalidRecord(ValueError):
    """A row that breaks a rule. `reason` must never contain the value: it may be personal data.

    `column` may be a path into a column (`custom_data.value`); `value` is then the offending
    value at that path, which the report masks unless the path is one of the output's
    `visible_columns`. Without it, the report shows the column's value (masked likewise).
    """

    NOT_GIVEN: ClassVar[object] = object()

    def __init__(self, column: str, rule: str, reason: str, *, value: Any = NOT_GIVEN) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.rule = rule
        self.reason = reason
        self.value = value


class RecordEncoder(ABC):
    """Turns one source row into one encoded record; raises InvalidRecord when the row is invalid."""

    @abstractmethod
    def encode(self, row: Any) -> bytes: ...

    def refresh_clock(self) -> None:  # noqa: B027 - optional hook
        """Called once per partition: an encoder whose rules depend on the time reads the clock
        here rather than per row."""


class Pushdown(ABC):
    """An encoder compiled into the engine's SQL, so that the engine builds most records.

    `sql` wraps the user's query. The runtime fetches its result as Arrow record batches;
    `encode_batch` gives one record per row, or None where `encoder` (the reference, on the
    Python values `rows` returns) must decide, and name the error of an invalid row.
    """

    sql: str
    columns: ColumnBinding  # the raw query columns `rows` returns, in that order
    encoder: RecordEncoder
    engine_rows: int = 0  # rows whose record the engine built

    @abstractmethod
    def encode_batch(self, batch: Any) -> list[bytes | None]: ...

    @abstractmethod
    def rows(self, batch: Any, indices: list[int]) -> list[tuple[Any, ...]]: ...

    def encode_all(self, batch: Any) -> tuple[list[bytes | None],
                                              list[tuple[int, InvalidRecord, tuple[Any, ...]]]]:
        """(records, (index, error, raw row) of invalid rows); a record is None exactly for an
        invalid row."""
        records = self.encode_batch(batch)
        missing = [i for i, r in enumerate(records) if r is None]
        self.engine_rows += len(records) - len(missing)
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
        return records, invalid


class Emulator(Protocol):
    """A local stand-in for an output's destination, for demos (see OutputPlugin.emulator)."""

    url: str  # where it listens
    config: Mapping[str, Any]  # settings that point the output at it

    def banner(self) -> str: ...

    def summary(self) -> str: ...


class OutputPlugin(ABC):
    """One output type, found by its `type` in the `connector.outputs` entry-point group."""

    type: ClassVar[str]
    #: The output's JSON Schema, as (package, resource name). A plugin from another
    #: distribution ships its own.
    schema_resource: ClassVar[tuple[str, str]]
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
        package, name = cls.schema_resource
        return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))

    @property
    @abstractmethod
    def batch_size(self) -> int: ...

    @property
    @abstractmethod
    def ignore_invalid_records(self) -> bool: ...

    @abstractmethod
    def encoder(self, columns: ColumnBinding) -> RecordEncoder:
        """Compile the per-run plan for these (already checked) columns."""

    def pushdown(self, sql: str, dialect: str, columns: ColumnBinding) -> Pushdown | None:
        """The encoder compiled into this engine's SQL for these columns and their described
        types, or None: rows are then fetched and encoded one by one."""
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

    def report_section(self) -> Mapping[str, Any]:
        """The output's own report keys, read when the report is rendered."""
        return {}

    @classmethod
    def docs_sections(cls) -> Mapping[str, str]:
        """Generated Markdown the docs embed, by section name (beside `parameters`)."""
        return {}

    @classmethod
    def emulator(cls) -> AbstractContextManager[Emulator] | None:
        """A local emulator of the destination for `connector demo`, or None."""
        return None
