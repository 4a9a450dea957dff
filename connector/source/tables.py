"""Writing tables on the engine, for workflow tasks that prepare data (`td>` with `create_table`
or `insert_into`, `td_ddl>`). Exports never write: this is a separate door to the same engine,
opened writable, with TD's time functions for the run's scheduled time.

Table and schema names are identifiers, quoted for the engine; a name `db.table` is the table in
schema `db`, as Treasure Data reads it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.cancel import CancelToken
from connector.errors import SourceError

from .engine import _driver_message, connection, open_engine, prepare_sql


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableName:
    table: str
    schema: str | None = None

    @classmethod
    def parse(cls, text: str, default_schema: str | None = None) -> "TableName":
        schema, dot, table = text.partition(".")
        if dot:
            return cls(table, schema)
        return cls(text, default_schema)

    def sql(self) -> str:
        if self.schema is None:
            return quote_ident(self.table)
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    def __str__(self) -> str:
        return self.table if self.schema is None else f"{self.schema}.{self.table}"


def _bounded_text(type_name: str) -> bool:
    return re.fullmatch(r"(var)?char\(\d+\)", type_name.strip().lower()) is not None


class TableWriter:
    """One writable connection's worth of table operations. Use as a context manager; every
    statement commits on its own."""

    def __init__(self, url: str, scheduled_time: int, cancel: CancelToken | None = None) -> None:
        self.url = url
        self.scheduled_time = scheduled_time
        self.cancel = cancel or CancelToken()
        self.engine = open_engine(url, writable=True, scheduled_time=scheduled_time)
        self.dialect = self.engine.dialect.name

    def use_schema(self, schema: str | None) -> None:
        """Look unqualified names in the queries up in `schema` from now on (it must exist)."""
        self.engine.dispose()
        self.engine = open_engine(self.url, writable=True, schema=schema,
                                  scheduled_time=self.scheduled_time)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> Any:
        return connection(self.engine, self.url, self.cancel)

    def _run(self, sql: str, what: str) -> list[Any]:
        self.cancel.raise_if_cancelled()
        with self._conn() as conn:
            try:
                result = conn.exec_driver_sql(sql)
                rows = list(result.fetchall()) if result.returns_rows else []
                conn.commit()
            except Exception as exc:  # noqa: BLE001
                self.cancel.raise_if_cancelled()
                raise SourceError(f"{what}: {_driver_message(exc)}") from None
        return rows

    def _count(self, rows: list[Any]) -> int:
        return int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0

    def query_columns(self, query: str) -> list[tuple[str, str]]:
        """(name, type) of the query's result columns, without reading its rows."""
        self.cancel.raise_if_cancelled()
        sql = prepare_sql(self.dialect, f"SELECT * FROM (\n{query}\n) AS q LIMIT 0", self.scheduled_time)
        with self._conn() as conn:
            try:
                result = conn.exec_driver_sql(sql)
                description = result.cursor.description or []
                result.fetchall()
            except Exception as exc:  # noqa: BLE001
                self.cancel.raise_if_cancelled()
                raise SourceError(f"query failed: {_driver_message(exc)}") from None
        return [(str(d[0]), str(d[1])) for d in description]

    def table_columns(self, table: TableName) -> list[str] | None:
        """The table's columns, or None when it does not exist."""
        if not self.table_exists(table):
            return None
        with self._conn() as conn:
            result = conn.exec_driver_sql(f"SELECT * FROM {table.sql()} LIMIT 0")
            names = list(result.keys())
            result.fetchall()
        return [str(n) for n in names]

    def table_exists(self, table: TableName) -> bool:
        with self._conn() as conn:
            try:
                return sa.inspect(conn).has_table(table.table, schema=table.schema)
            except Exception as exc:  # noqa: BLE001
                raise SourceError(f"cannot look up table {table}: {_driver_message(exc)}") from None

    def schema_exists(self, schema: str) -> bool:
        if self.dialect == "duckdb":  # SQLAlchemy lists every attached catalog's schemas
            sql = ("SELECT schema_name FROM information_schema.schemata "
                   "WHERE catalog_name = current_database()")
        else:
            sql = "SELECT schema_name FROM information_schema.schemata"
        return schema in {str(r[0]) for r in self._run(sql, "cannot list schemas")}

    # ------------------------------------------------------------------ tables from queries
    def _widened(self, query: str) -> str:
        """On Trino a text literal is varchar(N): the table's column would refuse longer text
        later. Text columns are stored unbounded, as Treasure Data's are."""
        if self.dialect != "trino":
            return query
        columns = self.query_columns(query)
        if not any(_bounded_text(t) for _, t in columns):
            return query
        select = ", ".join(
            f"CAST({quote_ident(n)} AS varchar) AS {quote_ident(n)}" if _bounded_text(t)
            else quote_ident(n) for n, t in columns)
        return f"SELECT {select} FROM (\n{query}\n) AS q"

    def create_table_as(self, table: TableName, query: str) -> int:
        """Replace `table` with the query's rows (Treasure Data's create_table); rows written."""
        body = prepare_sql(self.dialect, self._widened(query), self.scheduled_time)
        if self.dialect == "duckdb":
            rows = self._run(f"CREATE OR REPLACE TABLE {table.sql()} AS\n{body}",
                             f"create_table {table}")
        else:
            self._run(f"DROP TABLE IF EXISTS {table.sql()}", f"create_table {table}")
            rows = self._run(f"CREATE TABLE {table.sql()} AS\n{body}", f"create_table {table}")
        return self._count(rows)

    def insert_into(self, table: TableName, query: str) -> int:
        """Append the query's rows (Treasure Data's insert_into): a missing table is created, and
        columns the table lacks are added, as Treasure Data's tables take new columns."""
        existing = self.table_columns(table)
        if existing is None:
            return self.create_table_as(table, query)
        have = {c.lower() for c in existing}
        columns = self.query_columns(query)
        for name, type_name in columns:
            if name.lower() not in have:
                if _bounded_text(type_name):
                    type_name = "varchar"
                self._run(f"ALTER TABLE {table.sql()} ADD COLUMN {quote_ident(name)} {type_name}",
                          f"insert_into {table}: adding column {name}")
        names = ", ".join(quote_ident(n) for n, _ in columns)
        body = prepare_sql(self.dialect, f"SELECT {names} FROM (\n{query}\n) AS q",
                           self.scheduled_time)
        rows = self._run(f"INSERT INTO {table.sql()} ({names})\n{body}", f"insert_into {table}")
        return self._count(rows)

    # ------------------------------------------------------------------ DDL
    def create_empty(self, table: TableName) -> None:
        """A new table as Treasure Data makes one: only its `time` column (an existing table is
        kept)."""
        self._run(f"CREATE TABLE IF NOT EXISTS {table.sql()} (time BIGINT)", f"create table {table}")

    def drop(self, table: TableName) -> None:
        self._run(f"DROP TABLE IF EXISTS {table.sql()}", f"drop table {table}")

    def rename(self, source: TableName, target: str) -> None:
        """Rename within the table's schema, replacing a table of the new name."""
        if not self.table_exists(source):
            raise SourceError(f"rename_tables: table {source} does not exist")
        replaced = TableName(target, source.schema)
        self.drop(replaced)
        new = quote_ident(target) if self.dialect == "duckdb" else replaced.sql()
        self._run(f"ALTER TABLE {source.sql()} RENAME TO {new}", f"rename {source} to {target}")

    def create_schema(self, schema: str) -> None:
        self._run(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}", f"create database {schema}")

    def drop_schema(self, schema: str) -> None:
        self._run(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE", f"drop database {schema}")
