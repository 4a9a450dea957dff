"""The engine a workflow run works on.

Tables one task writes must be visible to the tasks after it. An in-memory DuckDB lives only as
long as one connection, so a run whose database is the default in-memory DuckDB works on a
scratch DuckDB file in its run folder instead (removed when the run ends). A DuckDB file, or
Trino, keeps what the run wrote.

DuckDB refuses to open a file read-only in a process that has it open for writing, and exports
open files read-only: on DuckDB, table writes take the database alone (a readers-writer lock),
while queries and exports share it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

import result_url
from connector.cancel import CancelToken
from connector.errors import ConfigError
from connector.masking import Redactor
from connector.source import database_url, safe_url, url_secrets
from connector.source.tables import TableWriter

from .errors import TaskFailed, WorkflowError


class ReadersWriterLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class _NoLock:
    @contextmanager
    def reading(self) -> Iterator[None]:
        yield

    @contextmanager
    def writing(self) -> Iterator[None]:
        yield


class Database:
    """The run's database: the URL exports get, the writable door for table tasks, the lock."""

    def __init__(self, given: str | None, run_dir: Path, redactor: Redactor,
                 warn: Callable[[str], None]) -> None:
        raw = database_url(given)
        try:
            expanded = result_url.Expander(redactor=redactor, warn=warn).text("--database", raw)
        except ConfigError as exc:
            raise WorkflowError(str(exc)) from None
        for secret in url_secrets(expanded):
            redactor.add(secret)
        try:
            parsed = sa.engine.make_url(expanded)
        except sa_exc.ArgumentError:
            raise WorkflowError(f"--database: cannot use {safe_url(expanded)}") from None
        self.dialect = parsed.get_backend_name()
        self.scratch: Path | None = None
        self.export_url = raw  # run_export expands ${...} itself, with its own redactor
        self.url = expanded
        if self.dialect == "duckdb" and parsed.database in (None, "", ":memory:"):
            self.scratch = run_dir / "scratch.duckdb"
            self.url = self.export_url = f"duckdb:///{self.scratch}"
            import duckdb

            duckdb.connect(str(self.scratch)).close()  # exports open it read-only: it must exist
        self.lock: ReadersWriterLock | _NoLock = (
            ReadersWriterLock() if self.dialect == "duckdb" else _NoLock())
        self._schemas: set[str] = set()
        self._schema_lock = threading.Lock()

    @property
    def keeps_data(self) -> bool:
        return self.scratch is None

    def describe(self) -> str:
        if self.scratch is not None:
            return "in-memory DuckDB (a scratch file for this run)"
        return safe_url(self.url)

    @contextmanager
    def writer(self, scheduled_time: int, cancel: CancelToken) -> Iterator[TableWriter]:
        with self.lock.writing():
            writer = TableWriter(self.url, scheduled_time, cancel)
            try:
                yield writer
            finally:
                writer.close()

    def ensure_schema(self, schema: str | None, writer: TableWriter, what: str) -> None:
        """A task's `database` must exist on an engine that keeps data; on the scratch database
        (nothing to find there anyway) it is created."""
        if schema is None:
            return
        with self._schema_lock:
            if schema in self._schemas:
                return
            if not writer.schema_exists(schema):
                if self.scratch is None:
                    raise TaskFailed(f"{what}: database {schema!r} does not exist on "
                                     f"{self.describe()} (a database is a schema there: create "
                                     "it with td_ddl> create_databases, or CREATE SCHEMA)")
                writer.create_schema(schema)
            self._schemas.add(schema)

    def schema_ready(self, schema: str | None, scheduled_time: int, cancel: CancelToken,
                     what: str) -> None:
        """For a task that only reads: the same check, through a short writable visit."""
        if schema is None or schema in self._schemas:
            return
        with self.writer(scheduled_time, cancel) as writer:
            self.ensure_schema(schema, writer, what)

    def close(self) -> None:
        if self.scratch is not None:
            for suffix in ("", ".wal"):
                Path(str(self.scratch) + suffix).unlink(missing_ok=True)
