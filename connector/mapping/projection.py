"""The output mapping compiled to a SQL projection around the user's query.

The engine evaluates it, so everything after it (the output's column binding, the engine-built
records, `--shard`, which hashes the mapped key) sees plain columns. The same SQL runs on DuckDB
and Trino: quoted identifiers, text literals, CAST(... AS VARCHAR) and `||`, which makes the
whole built value NULL when one of its source pieces is NULL.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping, Sequence

from connector.errors import ConfigError

from .spec import METADATA_KEYS, MappedColumn, OutputMapping, Piece, timestamp_text

SOURCE_ALIAS = "connector_mapping_source"


@dataclass(frozen=True)
class MappedQuery:
    sql: str
    names: tuple[str, ...]  # the output columns, in order
    sources: Mapping[str, str]  # output column (lower case) -> the query column it renames


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _resolve(name: str, columns: Mapping[str, str], where: str, returned: Sequence[str]) -> str:
    found = columns.get(name.lower())
    if found is None:
        raise ConfigError(f"{where}: the query has no column {name!r} (it returns: "
                          f"{', '.join(returned) or 'none'})")
    return found


def _piece_sql(piece: Piece, mapping: OutputMapping, export_time: dt.datetime,
               columns: Mapping[str, str], where: str, returned: Sequence[str]) -> str:
    if piece.type == "string":
        return _literal(piece.value or "")
    if piece.type == "timestamp":
        return _literal(timestamp_text(piece, export_time))
    if piece.type in METADATA_KEYS:
        return _literal(mapping.metadata[piece.type])
    column = _resolve(piece.value or "", columns, where, returned)
    return f"CAST({SOURCE_ALIAS}.{_ident(column)} AS VARCHAR)"


def compile_mapping(mapping: OutputMapping, sql: str, returned: Sequence[str],
                    export_time: dt.datetime) -> MappedQuery:
    """The query wrapped in the mapping, checked against the columns it returns."""
    columns = {c.lower(): c for c in returned}
    items: list[tuple[str, str]] = []  # (output name, SQL)
    sources: dict[str, str] = {}
    renamed: dict[str, int] = {}  # query column (lower) -> its item, when renamed in place
    if mapping.all_columns:
        for c in returned:
            items.append((c, f"{SOURCE_ALIAS}.{_ident(c)}"))
    positions = {c.lower(): i for i, c in enumerate(returned)}
    origin: dict[str, str] = {}  # output name (lower) -> which entry made it, for messages
    for index, entry in enumerate(mapping.columns):
        where = f"output mapping: columns[{index}] ({entry.name})"
        item = (entry.name, _column_sql(entry, mapping, export_time, columns, where, returned))
        if entry.built:
            items.append(item)
            origin[entry.name.lower()] = where
            continue
        source = _resolve(entry.source or "", columns, where, returned)
        if source.lower() != entry.name.lower():
            sources[entry.name.lower()] = source
        key = source.lower()
        if mapping.all_columns and key not in renamed:
            renamed[key] = positions[key]
            items[positions[key]] = item
        else:
            items.append(item)
        origin[entry.name.lower()] = where
    seen: dict[str, str] = {}
    for name, _ in items:
        lower = name.lower()
        if lower in seen:
            raise ConfigError(f"{origin.get(lower, 'output mapping')}: two output columns are "
                              f"named {name!r} (names are matched without regard to case)")
        seen[lower] = name
    projection = ",\n  ".join(f"{expr} AS {_ident(name)}" for name, expr in items)
    wrapped = f"SELECT\n  {projection}\nFROM (\n{sql}\n) AS {SOURCE_ALIAS}"
    return MappedQuery(wrapped, tuple(n for n, _ in items), sources)


def _column_sql(entry: MappedColumn, mapping: OutputMapping, export_time: dt.datetime,
                columns: Mapping[str, str], where: str, returned: Sequence[str]) -> str:
    if not entry.built:
        return f"{SOURCE_ALIAS}.{_ident(_resolve(entry.source or '', columns, where, returned))}"
    parts = [_piece_sql(p, mapping, export_time, columns, where, returned) for p in entry.pieces]
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"
