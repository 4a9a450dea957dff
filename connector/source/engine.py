"""Run the user's SQL through SQLAlchemy and stream the rows in fixed-size partitions.

`exec_driver_sql` passes the SQL to the driver untouched (`text()` would read `:name` as a bind
parameter), and `partitions(N)` keeps memory flat: only N rows are held at a time.

For outputs that compile their encoder into the engine's SQL, the result also comes in the
engine's cheapest batch form: Arrow record batches from DuckDB, and from Trino the rows as the
client decoded them from JSON, before its per-value conversion (`RowBatch`).
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from connector.cancel import CancelToken
from connector.errors import ConfigError, SourceError
from connector.masking import mask_value

from . import spill, tdtime
from .urls import parse_database_url, safe_url

DEFAULT_PARTITION_ROWS = 5000
# DuckDB's vector size: each Arrow batch is one chunk of the engine's work. Bigger batches held
# ~40 MB more (1M rows, 100,000-event requests) for no speed.
ARROW_BATCH_ROWS = 2048


# The embedded DuckDB's memory cap, unless the URL sets `memory_limit`. Without one, DuckDB keeps
# the blocks it has read (up to 80% of RAM): the export's memory grew with the file it scanned.
# Bigger sorts and joins spill to a temporary directory instead of failing.
DUCKDB_MEMORY_LIMIT = "64MB"


def _connect_args(url: sa.engine.URL, writable: bool = False, schema: str | None = None,
                  temp_dir: str | None = None) -> dict[str, Any]:
    """Driver options the SQLAlchemy URL cannot carry on its own."""
    if url.get_backend_name() == "duckdb":
        args: dict[str, Any] = {}
        if (not writable and url.database not in (None, "", ":memory:")
                and "access_mode" not in url.query):
            # An export only reads: read-only lets N shards open one file at once (DuckDB
            # locks a file opened for writing), and a mistyped path fails instead of creating
            # an empty database.
            args["read_only"] = True
        config: dict[str, str] = {}
        if "memory_limit" not in url.query and "max_memory" not in url.query:
            config["memory_limit"] = DUCKDB_MEMORY_LIMIT
        if temp_dir is not None:
            # Next to a read-only database file DuckDB could not create its own.
            config["temp_directory"] = temp_dir
        if config:
            args["config"] = config
        return args
    if url.get_backend_name() == "trino":
        args: dict[str, Any] = {}
        scheme = url.query.get("http_scheme")
        if scheme:
            args["http_scheme"] = scheme
        elif url.password or "access_token" in url.query:
            # Credentials only travel over TLS; the trino client would refuse http anyway.
            args["http_scheme"] = "https"
        if schema is not None:
            args["schema"] = schema
        from . import trino_client  # requests and the trino client only when used

        trino_client.check_url(url)
        return args
    return {}


def open_engine(url: str, *, writable: bool = False, schema: str | None = None,
                scheduled_time: int | None = None,
                temp_dir: str | None = None) -> sa.engine.Engine:
    """A SQLAlchemy engine for `url`: DuckDB files read-only unless `writable`; `schema` the
    default schema for unqualified names; `temp_dir` where DuckDB spills; on DuckDB, TD's time
    functions for `scheduled_time` on every connection (Trino gets them in front of each
    statement, see `prepare`)."""
    parsed = parse_database_url(url)
    try:
        engine = sa.create_engine(parsed, connect_args=_connect_args(parsed, writable, schema,
                                                                     temp_dir))
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise ConfigError(f"--database: cannot use {safe_url(url)}: "
                          f"{type(exc).__name__}") from None
    if engine.dialect.name == "duckdb":
        moment = int(time.time()) if scheduled_time is None else scheduled_time

        def install(dbapi_connection: Any, _record: Any) -> None:
            for statement in tdtime.duckdb_macros(moment):
                dbapi_connection.execute(statement)
            if schema is not None:
                # DuckDB still finds tables in main, and the temporary TD functions.
                dbapi_connection.execute(f"SET schema = {quote_literal(schema)}")

        sa.event.listen(engine, "connect", install)
    elif engine.dialect.name == "trino":
        from . import trino_client

        trino_client.install(engine)
    return engine


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def prepare_sql(dialect: str, sql: str, scheduled_time: int) -> str:
    """The SQL the engine runs for `sql`: on Trino, the TD time functions it calls are
    declared in front of it as inline routines."""
    if dialect == "trino":
        return tdtime.trino_sql(sql, scheduled_time)
    return sql


# Engine messages may quote the data they choke on (DuckDB's CSV reader prints the whole line).
_QUOTED_LINE = re.compile(r"(Original Line:).*", re.IGNORECASE)
_EMAIL_LIKE = re.compile(r"[^\s@,;:'\"()<>\[\]]+@[^\s@,;:'\"()<>\[\]]+")
_PHONE_LIKE = re.compile(r"\+?\d[\d\- ().]{6,}\d")


def _driver_message(exc: BaseException) -> str:
    """The engine's own message, without SQLAlchemy's echo of the statement and without data."""
    orig = getattr(exc, "orig", None) or exc
    message = str(getattr(orig, "message", None) or orig)
    message = _QUOTED_LINE.sub(r"\1 (not shown: it may hold personal data)", message)
    message = _EMAIL_LIKE.sub(lambda m: mask_value(m.group(0)), message)
    message = _PHONE_LIKE.sub("***", message)
    return " ".join(message.split())[:2000]


@contextmanager
def connection(engine: sa.engine.Engine, url: str, cancel: CancelToken) -> Iterator[Any]:
    """A connection that `cancel` interrupts while it is open (where the driver can)."""
    # Any exception, not only SQLAlchemy's: drivers raise their own (and may put the URL's
    # credentials in the text, which the run's redactor then removes).
    try:
        conn = engine.connect()
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"cannot connect to {safe_url(url)}: {_driver_message(exc)}") from None
    interrupt = _interrupter(conn)
    remove = cancel.add_callback(interrupt) if interrupt is not None else None
    try:
        yield conn
    finally:
        if remove is not None:
            remove()
        conn.close()


@dataclass
class Stream:
    columns: list[str]
    partitions: Iterator[Any]
    result: Any  # a SQLAlchemy result or a DB-API cursor: closing it stops the query

    def cancel(self) -> None:
        """Stop the query on the engine (for Trino, closing an unfinished result cancels it)."""
        try:
            self.result.close()
        except Exception:  # noqa: BLE001 - best effort on an already broken connection
            pass


def _interrupter(conn: Any) -> Any:
    """A thread-safe way to stop what the connection is running, if the driver has one."""
    try:
        dbapi = conn.connection.dbapi_connection
    except Exception:  # noqa: BLE001
        return None
    return getattr(dbapi, "interrupt", None)  # DuckDB


class Source:
    """One engine, reached through SQLAlchemy. `cancel`, when tripped, interrupts a query that is
    running or streaming (DuckDB stops at once; Trino's query is cancelled when its unfinished
    result is closed)."""

    # Engines whose results also come in batches (stream_batches), for outputs that compile
    # their encoder into the engine's SQL.
    BATCH_DIALECTS = ("duckdb", "trino")

    def __init__(self, url: str, partition_rows: int = DEFAULT_PARTITION_ROWS,
                 cancel: CancelToken | None = None, scheduled_time: int | None = None,
                 schema: str | None = None) -> None:
        # TD_SCHEDULED_TIME() and the other TD time functions; without a scheduled time, the
        # time the Source was made (the start of the run).
        self.scheduled_time = int(time.time()) if scheduled_time is None else scheduled_time
        parsed = parse_database_url(url)
        self._temp_dir = spill.acquire(parsed)
        try:
            self.engine = open_engine(url, schema=schema, scheduled_time=self.scheduled_time,
                                      temp_dir=self._temp_dir)
        except ConfigError:
            spill.release(self._temp_dir)
            raise
        self.url = url
        self.dialect = self.engine.dialect.name
        self.partition_rows = partition_rows
        self.cancel = cancel or CancelToken()

    def prepare(self, sql: str) -> str:
        """The SQL the engine runs for `sql` (TD's time functions declared on Trino)."""
        return prepare_sql(self.dialect, sql, self.scheduled_time)

    def _connection(self) -> Any:
        return connection(self.engine, self.url, self.cancel)

    def _failure(self, what: str, exc: BaseException) -> Exception:
        """The error to raise for an engine failure; a cancelled run's engine error is the
        cancellation, not a reason to look for another way to read the rows."""
        self.cancel.raise_if_cancelled()
        return SourceError(f"{what}: {_driver_message(exc)}")

    def _execute(self, conn: Any, sql: str) -> Any:
        self.cancel.raise_if_cancelled()
        try:
            result = conn.execution_options(stream_results=True).exec_driver_sql(self.prepare(sql))
        except Exception as exc:  # noqa: BLE001
            raise self._failure("query failed", exc) from None
        if not result.returns_rows:
            raise SourceError("the query returned no result set (is it a SELECT?)")
        return result

    @contextmanager
    def _open(self, sql: str, partitions: Any) -> Iterator[Stream]:
        with self._connection() as conn:
            result = self._execute(conn, sql)
            stream = Stream(list(result.keys()), partitions(result), result)
            try:
                yield stream
            finally:
                # Closing an unfinished result cancels the query on the engine (Trino frees
                # its workers at once instead of waiting to declare the query abandoned).
                stream.cancel()

    def stream(self, sql: str) -> Any:
        """Rows of the query in partitions of `partition_rows` Python tuples."""
        return self._open(sql, self._partitions)

    def describe(self, sql: str) -> list[tuple[str, str]] | None:
        """(name, type) of the query's columns without running it, or None if not available."""
        if self.dialect not in self.BATCH_DIALECTS:
            return None
        # DuckDB: the query itself, not `SELECT * FROM (query)`: a subquery renames a second
        # `email` or `EMAIL` to `EMAIL_1`, where the query's own result keeps both names (and
        # the binding must refuse them on every path alike). Trino plans `LIMIT 0` to an empty
        # result without reading anything.
        probe = (f"DESCRIBE\n{sql}\n" if self.dialect == "duckdb"
                 else f"SELECT * FROM (\n{sql}\n) AS q LIMIT 0")
        with self._connection() as conn:
            try:
                if self.dialect == "duckdb":
                    rows = conn.exec_driver_sql(probe).fetchall()
                    return [(str(r[0]), str(r[1])) for r in rows]
                result = conn.exec_driver_sql(self.prepare(probe))
                description = result.cursor.description
                result.fetchall()
                return [(str(d[0]), str(d[1])) for d in description]
            except Exception:  # noqa: BLE001 - not describable: the standard path reports errors
                self.cancel.raise_if_cancelled()
                return None

    def column_names(self, sql: str) -> list[str]:
        """The names of the query's columns, in order, without reading its rows."""
        described = self.describe(sql)
        if described is not None:
            return [name for name, _ in described]
        with self._connection() as conn:
            result = self._execute(conn, f"SELECT * FROM (\n{sql}\n) AS q LIMIT 0")
            try:
                return list(result.keys())
            finally:
                result.close()

    def stream_batches(self, sql: str) -> Any:
        """The query's result in the engine's batch form: Arrow record batches of at most
        ARROW_BATCH_ROWS rows (DuckDB), RowBatches (Trino, see trino_client.py)."""
        if self.dialect == "trino":
            return self._open_trino_rows(sql)
        return self._open(sql, self._arrow_batches)

    def _arrow_batches(self, result: Any) -> Iterator[Any]:
        try:
            cursor = result.cursor
            # to_arrow_reader since DuckDB 1.4; fetch_record_batch before (deprecated since)
            reader = getattr(cursor, "to_arrow_reader", None) or cursor.fetch_record_batch
            yield from reader(ARROW_BATCH_ROWS)
        except Exception as exc:  # noqa: BLE001
            raise self._failure("query failed while reading rows", exc) from None

    @contextmanager
    def _open_trino_rows(self, sql: str) -> Iterator[Stream]:
        from . import trino_client

        with self._connection() as conn:
            self.cancel.raise_if_cancelled()
            # The client's raw JSON values: its per-value conversion is applied only to the
            # values the consumer needs (RowBatch.converters).
            cursor = conn.connection.dbapi_connection.cursor(legacy_primitive_types=True)
            try:
                cursor.execute(self.prepare(sql))
                columns = [str(d[0]) for d in cursor.description]
                converters = trino_client.converters(cursor, columns)
            except SourceError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._failure("query failed", exc) from None
            stream = Stream(columns, self._trino_batches(cursor, converters), cursor)
            try:
                yield stream
            finally:
                stream.cancel()

    def _trino_batches(self, cursor: Any, converters: list[Any]) -> Iterator[Any]:
        from . import trino_client

        try:
            yield from trino_client.batches(cursor, converters)
        except Exception as exc:  # noqa: BLE001
            raise self._failure("query failed while reading rows", exc) from None

    def _partitions(self, result: Any) -> Iterator[Any]:
        try:
            yield from result.partitions(self.partition_rows)
        except Exception as exc:  # noqa: BLE001
            raise self._failure("query failed while reading rows", exc) from None

    def dispose(self) -> None:
        self.engine.dispose()
        spill.release(self._temp_dir)
        self._temp_dir = None
