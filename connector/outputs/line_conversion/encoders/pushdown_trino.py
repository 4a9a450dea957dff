"""The field table compiled to Trino SQL: the cluster builds the events, on every worker.

What the engine decides and what Python completes is described in `sqlcore.py`; this module
spells it in Trino's SQL and completes the rows the trino client returns.

Where Trino differs from DuckDB:
- Regexes run on Joni (or RE2J, by configuration): every pattern is anchored with `\\A...\\z`
  (`$` would also match before a final newline) and `.` becomes `[^\\n]`, Python's `.`.
- `length()` counts code points, as len() does.
- `json_format(CAST(s AS JSON))` escapes like orjson except for upper-case `\\u00XX` digits and
  characters beyond the BMP, which it writes as surrogate-pair escapes; Python rewrites both
  (`fix_escapes`) in the events that hold a `\\u`.
- Timestamps: integer types, digit strings, `timestamp(p)` (naive = UTC) and `timestamp(p) with
  time zone` in UTC or a fixed offset (a named zone is read by the client from its wall-clock
  text, which is ambiguous once a year), both with p <= 6 (the client rounds finer fractions);
  integral decimals and doubles.
- Rows come back as the client decoded them from JSON, without its per-value conversion. Every
  value the reference may need is converted by the client's own mappers (`RowBatch`), so
  nothing differs from the standard path. Only rows the engine did not build carry their raw
  columns; an event the engine built but Python could not complete (a phone number the fast
  hasher is unsure of, the window, custom_data) is decided by the reference on the values the
  event was built from: the wire values of the checked fields, which the reference reads as
  the raw ones, and the raw phone, email, timestamp and custom_data.
- Trino drops an ORDER BY inside a subquery: the wrapper sorts by the query's own ORDER BY
  columns again (`connector.mapping.ordering`); a query sorted by an expression keeps the
  standard path.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson

from connector.mapping import ColumnBinding
from connector.mapping.ordering import UnorderableQuery, top_level_order
from connector.outputs.base import Pushdown, PushdownUnavailable

from . import LineEventEncoder
from ..fields import (
    BY_COLUMN,
    CUSTOM_COLUMN,
    HASH_EMAIL,
    HASH_PHONE,
    TIMESTAMP,
    TIMESTAMP_FUTURE_SECONDS,
    TIMESTAMP_PAST_SECONDS,
)
from ..hashing import make_fast_phone_hasher, sha256_hex
from .sqlcore import (
    CUSTOM_RAW,
    EMAIL_RAW,
    EMAIL_SLOT,
    PHONE_RAW,
    PHONE_SLOT,
    SOURCE,
    TS,
    SqlDialect,
    builds_events,
    compile_events,
    ident,
    lit,
    plan_columns,
    with_custom,
)

_INT_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT"})
_TIMESTAMP = re.compile(r"TIMESTAMP(?:\((\d+)\))?( WITH TIME ZONE)?\Z")
_DECIMAL = re.compile(r"DECIMAL\(\d+,\s*\d+\)\Z")
# The client's datetime holds microseconds; it rounds finer fractions, which SQL would truncate.
_MAX_TIMESTAMP_PRECISION = 6
# The start and the very end of the text (`$` also matches before a final newline).
_START, _END = "\\A(?:", ")\\z"


def python_regex(body: str) -> str:
    """`body` for Joni and RE2J with Python's meaning of `.` (anything but a newline)."""
    out, in_class, i = [], False, 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            out.append(body[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if body[i + 1:i + 2] == "]":  # a leading ] is a literal inside the class
                out.append("[]")
                i += 2
                continue
        elif c == ".":
            c = "[^\\n]"
        out.append(c)
        i += 1
    return "".join(out)


class TrinoDialect(SqlDialect):
    name = "trino"

    def __init__(self, email_in_engine: bool = False) -> None:
        self.email_in_engine = email_in_engine

    def full_match(self, s: str, body: str) -> str:
        return f"regexp_like({s}, {lit(_START + python_regex(body) + _END)})"

    def prefix_match(self, s: str, body: str) -> str:
        return f"regexp_like({s}, {lit(_START + python_regex(body) + ')')})"

    def length(self, s: str) -> str:
        return f"length({s})"

    def json_text(self, s: str) -> str:
        return f"json_format(CAST({s} AS JSON))"

    def contains(self, s: str, sub: str) -> str:
        return f"strpos({s}, {lit(sub)}) > 0"

    def concat_nullable(self, parts: Sequence[str]) -> str:
        return f"concat_ws('', {', '.join(parts)})"  # Trino's concat() is NULL if a part is

    def sha256_hex(self, s: str) -> str:
        return f"lower(to_hex(sha256(to_utf8({s}))))"

    def is_text(self, typ: str) -> bool:
        return typ == "VARCHAR" or typ.startswith("VARCHAR(")

    def text_of(self, v: str, typ: str) -> str | None:
        if self.is_text(typ):
            return v
        if typ in _INT_TYPES or typ == "UUID":  # str(int), str(uuid.UUID): lower-case
            return f"CAST({v} AS VARCHAR)"
        return None

    def seconds_of(self, v: str, typ: str) -> tuple[str, str] | None:
        if typ in _INT_TYPES:
            return f"CAST({v} AS BIGINT)", "TRUE"
        if self.is_text(typ):  # digit strings; anything with spaces or signs: the reference
            return f"TRY_CAST({v} AS BIGINT)", self.full_match(v, "[0-9]{1,18}")
        if _DECIMAL.match(typ):
            return f"TRY_CAST({v} AS BIGINT)", f"{v} = floor({v})"
        if typ == "DOUBLE":
            return f"TRY_CAST({v} AS BIGINT)", f"is_finite({v}) AND {v} = floor({v})"
        m = _TIMESTAMP.match(typ)
        if m is None or int(m.group(1) or 3) > _MAX_TIMESTAMP_PRECISION:
            return None
        # date_diff truncates toward zero, as int() of the float seconds does.
        if not m.group(2):  # naive = UTC
            return f"date_diff('second', TIMESTAMP '1970-01-01 00:00:00', {v})", "TRUE"
        zone = f"timezone({v})"
        return (f"date_diff('second', from_unixtime(0), {v})",
                f"{zone} = 'UTC' OR {self.full_match(zone, '[+-][0-9]{2}:[0-9]{2}')}")


# Raw email addresses are hashed by hashlib in Python: see the README's performance section.
TRINO = TrinoDialect(email_in_engine=False)

# json_format's escapes that orjson writes otherwise (escaped backslashes skipped).
_ESCAPE = re.compile(rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u00[0-9A-F]{2}|.)")


def _escape(m: re.Match[bytes]) -> bytes:
    s = m.group(0)
    if len(s) == 12:  # a surrogate pair: orjson writes the character itself
        hi, lo = int(s[2:6], 16), int(s[8:12], 16)
        return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).encode()
    return s.lower() if s[1:2] == b"u" else s


def fix_escapes(event: bytes) -> bytes:
    """orjson's bytes where json_format wrote upper-case \\u00XX or a surrogate-pair escape."""
    return _ESCAPE.sub(_escape, event)


# The extra column holding the raw value of each hashing kind, when Python hashes it.
_HASHED_RAW = {HASH_EMAIL: EMAIL_RAW, HASH_PHONE: PHONE_RAW}


@dataclass(frozen=True)
class _Layout:
    """Where each value is in a result row of the wrapped query."""
    extras: dict[str, int]  # extra column -> position
    ts_raw: int | None  # the timestamp column's own value (when not an integer type)
    raw: int  # the raw columns (a ROW), for rows the engine did not build
    order: tuple[str, ...]  # output columns, in the raw columns' order


class TrinoPushdown(Pushdown):
    """The wrapped SQL, and the per-batch Python that completes its events (a RowBatch)."""

    def __init__(self, sql: str, columns: ColumnBinding, layout: _Layout,
                 encoder: LineEventEncoder, default_phone_region: str | None) -> None:
        self.sql = sql
        self.columns = columns
        self.encoder = encoder
        self._layout = layout
        self._phone = make_fast_phone_hasher(default_phone_region)

    def encode_batch(self, batch: Any) -> list[bytes | None]:
        extras = self._layout.extras
        ts_i = extras.get(TS)
        if ts_i is None:  # no timestamp the engine could read: it built no event
            return [None] * len(batch)
        email_i, phone_i, custom_i = extras.get(EMAIL_RAW), extras.get(PHONE_RAW), extras.get(CUSTOM_RAW)
        convert_custom = batch.converters[custom_i] if custom_i is not None else None
        fast = self._phone
        now = self.encoder.now
        lo, hi = now - TIMESTAMP_PAST_SECONDS, now + TIMESTAMP_FUTURE_SECONDS
        out: list[bytes | None] = []
        append = out.append
        for row in batch.rows:
            event = row[0]
            if event is None:
                append(None)
                continue
            ts = row[ts_i]
            if ts < lo or ts > hi:
                append(None)  # the reference names the reason
                continue
            data = event.encode()
            if "\\u" in event:
                data = fix_escapes(data)
            if email_i is not None:
                raw = row[email_i]
                if raw is not None:
                    data = data.replace(EMAIL_SLOT, sha256_hex(raw.strip().lower()).encode(), 1)
            if phone_i is not None:
                raw = row[phone_i]
                if raw is not None:
                    digest = fast(raw)
                    if digest is None:
                        append(None)
                        continue
                    data = data.replace(PHONE_SLOT, digest.encode(), 1)
            if custom_i is not None:
                raw = row[custom_i]
                if raw is not None:
                    data = with_custom(data, convert_custom(raw))  # type: ignore[misc]
            append(data)
        return out

    def rows(self, batch: Any, indices: list[int]) -> list[tuple[Any, ...]]:
        """The rows at `indices` as the reference reads them (see the module's docstring)."""
        layout = self._layout
        out = []
        for i in indices:
            row = batch.rows[i]
            if row[0] is None:
                out.append(tuple(batch.converters[layout.raw](row[layout.raw])))
            else:
                out.append(self._built_row(batch, i))
        return out

    def _built_row(self, batch: Any, i: int) -> tuple[Any, ...]:
        """An event the engine built, as the row of values it was built from."""
        layout = self._layout
        row, conv = batch.rows[i], batch.converters
        wire = orjson.loads(row[0].replace(PHONE_SLOT.decode(), "").replace(EMAIL_SLOT.decode(), ""))
        values: list[Any] = []
        for column in layout.order:
            if column == CUSTOM_COLUMN:
                k = layout.extras[CUSTOM_RAW]
                values.append(conv[k](row[k]))
                continue
            f = BY_COLUMN[column]
            raw_at = layout.extras.get(_HASHED_RAW.get(f.hashing or "", ""))
            if raw_at is not None and row[raw_at] is not None:
                values.append(row[raw_at])
            elif f.value == TIMESTAMP:
                k = layout.ts_raw
                values.append(row[layout.extras[TS]] if k is None else conv[k](row[k]))
            else:
                values.append(wire.get(f.section, {}).get(f.key))
        return tuple(values)


def compile_trino_pushdown(sql: str, columns: ColumnBinding, *, channel_id_present: bool,
                           test_flag: bool, default_phone_region: str | None,
                           clock: Callable[[], float] = time.time,
                           dialect: TrinoDialect = TRINO) -> TrinoPushdown | None:
    """The pushdown for this query's bound columns and their described types, or None (a
    required column of a type the engine does not read: use the standard path).

    Raises PushdownUnavailable when the query's own order could not be kept around it."""
    plan = plan_columns(columns)
    if not builds_events(dialect, plan):
        return None
    try:
        order_by = top_level_order(sql, columns.names)
    except UnorderableQuery as exc:
        raise PushdownUnavailable(
            f"{exc}; Trino drops the order of a wrapped query, so rows are encoded in Python "
            "(sort by result columns, by name or position, to let the engine build the events)"
        ) from None
    events = compile_events(dialect, columns, plan, channel_id_present=channel_id_present,
                            test_flag=test_flag)
    extras = {name: expr for name, expr in events.extras.items() if expr is not None}
    ts_type = plan.types.get("event_timestamp", "")
    ts_raw = (columns.name("event_timestamp")
              if "event_timestamp" in plan.types and ts_type not in _INT_TYPES else None)
    # The sort keys are named at the first level: a key need not be an output column.
    orders = [f"{SOURCE}.{ident(key.column)} AS connector_order_{k}"
              for k, key in enumerate(order_by or ())]
    outer = [
        "connector_event",
        *extras,
        *([f"CASE WHEN connector_event IS NOT NULL THEN {ident(ts_raw)} END AS connector_ts_raw"]
          if ts_raw is not None else []),
        # One value (a ROW), NULL for the events the engine built: each column costs the
        # coordinator and the client a JSON value per row, even a null.
        f"CASE WHEN connector_event IS NULL THEN ROW({', '.join(ident(n) for n in plan.raw_columns)})"
        " END AS connector_raw",
    ]
    sort = ""
    if order_by:
        sort = "\nORDER BY " + ", ".join(
            f"connector_order_{k}" + (f" {key.modifiers}" if key.modifiers else "")
            for k, key in enumerate(order_by))
    raw = [ident(n) for n in plan.raw_columns]
    keys = [f"connector_order_{k}" for k in range(len(orders))]
    wrapped = events.query(sql, [*(f"{SOURCE}.{n}" for n in raw), *orders], extras,
                           [*extras, *raw, *keys], outer, sort)
    layout = _Layout(extras={name: 1 + k for k, name in enumerate(extras)},
                     ts_raw=1 + len(extras) if ts_raw is not None else None,
                     raw=1 + len(extras) + (ts_raw is not None), order=plan.order)
    returned = plan.returned()
    encoder = LineEventEncoder(returned.index, channel_id_present=channel_id_present,
                               test_flag=test_flag, default_phone_region=default_phone_region,
                               clock=clock)
    return TrinoPushdown(wrapped, returned, layout, encoder, default_phone_region)
