"""The field table compiled to DuckDB SQL: the engine builds the events, next to the data.

What the engine decides and what Python completes is described in `sqlcore.py`, which holds the
compiler every engine shares; this module spells it in DuckDB's SQL and completes Arrow batches.

Only when every known column has a type whose Arrow form converts to the same Python values as
DuckDB's own fetch (so that rows handed to the reference are the rows the standard path would
have read). Otherwise `compile_pushdown` returns None and the job streams rows the standard
way. The equivalence tests check the bytes against the reference.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import time
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from connector.mapping import ColumnBinding
from connector.outputs.base import Pushdown

from . import LineEventEncoder
from ..fields import CUSTOM_COLUMN, TIMESTAMP_FUTURE_SECONDS, TIMESTAMP_PAST_SECONDS
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

# HUGEINT travels as text (Arrow would make it a decimal) and is turned back into an int.
_WIDE_INT_TYPES = frozenset({"HUGEINT", "UHUGEINT"})
_INT_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT",
                        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}) | _WIDE_INT_TYPES
# Dates and times Python's datetime cannot hold (beyond year 9999, before year 1, ±infinity)
# would abort Arrow's conversion to Python. DuckDB's own fetch gives them as text, and ±infinity
# as datetime's largest and smallest value; the SQL sends such values as text beside the column
# (`connector_text_<k>`), and `rows` gives the reference what the fetch would have.
_PY_RANGE = {"TIMESTAMP": ("TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999999'",
                           dt.datetime.min, dt.datetime.max),
             "DATE": ("DATE '0001-01-01'", "DATE '9999-12-31'", dt.date.min, dt.date.max)}
# Types whose Arrow → Python conversion equals DuckDB's fetchall() (HUGEINT, and dates and times
# outside Python's range: see above); UUID
# (Arrow string), MAP (Arrow list of pairs), TIMESTAMP WITH TIME ZONE... do not.
_SAFE_TYPE = re.compile(r"(VARCHAR|BOOLEAN|FLOAT|DOUBLE|DATE|TIMESTAMP|DECIMAL\(\d+,\d+\)|"
                        + "|".join(sorted(_INT_TYPES)) + r")\Z")

# DuckDB's to_json writes a string exactly as orjson does, except for nine control characters
# (\x0b, \x0e, \x0f, \x1a-\x1f), which it writes as \u00XX with upper-case hex digits; Python
# lower-cases those (see `_lower_escapes`). tests/test_pushdown_equivalence.py holds both to it.
_UPPER_ESCAPE = re.compile(rb"\\(?:u00[0-9A-F]{2}|.)")

_BINARY = pa.binary()


def _values(arr: Any) -> list[Any]:
    """Python values of an Arrow array (None for nulls); through NumPy, ~10x faster than to_pylist."""
    return arr.to_numpy(zero_copy_only=False).tolist()


def _present(arr: Any) -> Any:
    """(row index, value) for the non-null entries of an Arrow array."""
    if arr.null_count == len(arr):
        return ()
    if arr.null_count == 0:
        return enumerate(_values(arr))
    idx = pc.indices_nonzero(pc.is_valid(arr))
    return zip(_values(idx), _values(arr.take(idx)))


# The plan's own columns, in front of the raw ones.
LEADING = ("connector_event", "connector_ts", "connector_email", "connector_phone",
           "connector_custom", "connector_upper_escape")
_EVENT, _TS, _EMAIL_COL, _PHONE_COL, _CUSTOM_COL, _UPPER = range(len(LEADING))


class DuckDBDialect(SqlDialect):
    name = "duckdb"

    def full_match(self, s: str, body: str) -> str:
        return f"regexp_full_match({s}, {lit(body)})"

    def prefix_match(self, s: str, body: str) -> str:
        return f"regexp_matches({s}, {lit('^' + body)})"

    def length(self, s: str) -> str:
        # bytes >= characters, so this never accepts what len() refuses
        return f"strlen({s})"

    def json_text(self, s: str) -> str:
        return f"CAST(to_json({s}) AS VARCHAR)"

    def contains(self, s: str, sub: str) -> str:
        return f"contains({s}, {lit(sub)})"

    def null(self, sql_type: str) -> str:
        return f"NULL::{sql_type}"

    def concat_nullable(self, parts: Sequence[str]) -> str:
        return f"concat({', '.join(parts)})"  # DuckDB's concat skips NULLs

    def is_text(self, typ: str) -> bool:
        return typ == "VARCHAR"

    def text_of(self, v: str, typ: str) -> str | None:
        if typ == "VARCHAR":
            return v
        if typ in _INT_TYPES:
            return f"CAST({v} AS VARCHAR)"
        return None

    def seconds_of(self, v: str, typ: str) -> tuple[str, str] | None:
        if typ in _INT_TYPES:
            return f"TRY_CAST({v} AS BIGINT)", "TRUE"
        if typ == "VARCHAR":  # digit strings; anything with spaces or signs: the reference
            return f"TRY_CAST({v} AS BIGINT)", f"regexp_full_match({v}, '[0-9]{{1,18}}')"
        if typ == "TIMESTAMP":  # naive = UTC; int() of the float seconds truncates like //
            return f"epoch_us({v}) // 1000000", f"isfinite({v})"
        return None


DUCKDB = DuckDBDialect()


def _lower_escapes(event: bytes) -> bytes:
    """orjson's lower-case \\u00xx where to_json wrote upper case (escaped backslashes skipped)."""
    return _UPPER_ESCAPE.sub(lambda m: m.group(0).lower() if m.group(0)[1:2] == b"u" else m.group(0),
                             event)


class DuckDBPushdown(Pushdown):
    """The wrapped SQL, and the per-batch Python that completes its events."""

    def __init__(self, sql: str, columns: ColumnBinding, wide_ints: set[int],
                 encoder: LineEventEncoder, default_phone_region: str | None,
                 out_of_range: dict[int, str] | None = None) -> None:
        self.sql = sql
        self.columns = columns  # what follows the LEADING columns, for the reference
        self.encoder = encoder
        self._wide_ints = wide_ints  # positions in raw_columns sent as text
        # position in raw_columns -> its type, for dates and times sent beside it as text
        # when Python cannot hold them; the text columns follow the raw ones, in this order
        self._out_of_range = out_of_range or {}
        self._phone = make_fast_phone_hasher(default_phone_region)

    def encode_batch(self, batch: Any) -> list[bytes | None]:
        """One encoded event per row of an Arrow record batch, or None: ask the reference."""
        # VARCHAR in Arrow is UTF-8 bytes: viewed as binary, the values are the bytes to send.
        events: list[bytes | None] = _values(batch.column(_EVENT).view(_BINARY))
        for i, _ in _present(batch.column(_UPPER)):
            events[i] = _lower_escapes(events[i])  # type: ignore[arg-type]
        now = self.encoder.now
        ts = batch.column(_TS)
        # Integer bounds: an int64 compared with a float is cast to a double, which Arrow refuses
        # for values beyond ±2^53. For an integer t, t < x iff t < ceil(x), t > x iff t > floor(x).
        earliest = pa.scalar(math.ceil(now - TIMESTAMP_PAST_SECONDS), pa.int64())
        latest = pa.scalar(math.floor(now + TIMESTAMP_FUTURE_SECONDS), pa.int64())
        outside = pc.or_(pc.less(ts, earliest), pc.greater(ts, latest))
        for i in _values(pc.indices_nonzero(pc.fill_null(outside, False))):
            events[i] = None  # the reference names the reason
        for i, raw in _present(batch.column(_EMAIL_COL)):
            event = events[i]
            if event is not None:
                events[i] = event.replace(EMAIL_SLOT, sha256_hex(raw.strip().lower()).encode(), 1)
        fast = self._phone
        for i, raw in _present(batch.column(_PHONE_COL)):
            event = events[i]
            if event is not None:
                digest = fast(raw)
                events[i] = None if digest is None else event.replace(PHONE_SLOT, digest.encode(), 1)
        for i, raw in _present(batch.column(_CUSTOM_COL)):
            event = events[i]
            if event is not None:
                events[i] = with_custom(event, raw)
        return events

    def rows(self, batch: Any, indices: list[int]) -> list[tuple[Any, ...]]:
        """The raw rows at `indices`, as Python values, for the reference encoder."""
        picked = batch.take(indices)
        first = len(LEADING)
        n = len(self.columns.names)
        cols = [picked.column(first + k).to_pylist() for k in range(n)]
        for k in self._wide_ints:
            cols[k] = [None if x is None else int(x) for x in cols[k]]
        for j, (k, typ) in enumerate(self._out_of_range.items()):
            *_, smallest, largest = _PY_RANGE[typ]
            for i, text in _present(picked.column(first + n + j)):
                cols[k][i] = {"infinity": largest, "-infinity": smallest}.get(text, text)
        return list(zip(*cols))


def compile_pushdown(sql: str, columns: ColumnBinding, *, channel_id_present: bool,
                     test_flag: bool, default_phone_region: str | None,
                     clock: Callable[[], float] = time.time) -> DuckDBPushdown | None:
    """The pushdown for this query's bound columns and their described types, or None (use the
    standard path)."""
    plan = plan_columns(columns)
    types = plan.types
    if any(_SAFE_TYPE.match(types[c]) is None for c in plan.present):
        return None
    if CUSTOM_COLUMN in types and types[CUSTOM_COLUMN] != "VARCHAR":
        return None
    if not builds_events(DUCKDB, plan):
        return None
    raw_columns = plan.raw_columns
    wide_ints = {k for k, c in enumerate(plan.order) if types[c] in _WIDE_INT_TYPES}
    out_of_range = {k: types[c] for k, c in enumerate(plan.order) if types[c] in _PY_RANGE}

    events = compile_events(DUCKDB, columns, plan, channel_id_present=channel_id_present,
                            test_flag=test_flag)
    nulls = {TS: "NULL::BIGINT", EMAIL_RAW: "NULL::VARCHAR", PHONE_RAW: "NULL::VARCHAR",
             CUSTOM_RAW: "NULL::VARCHAR"}
    extras = {name: expr or nulls[name] for name, expr in events.extras.items()}
    raw = []
    for k, n in enumerate(raw_columns):
        if k in wide_ints:
            raw.append(f"CAST({ident(n)} AS VARCHAR) AS {ident(n)}")
        elif k in out_of_range:
            lo, hi, *_ = _PY_RANGE[out_of_range[k]]
            raw.append(f"CASE WHEN {ident(n)} BETWEEN {lo} AND {hi} THEN {ident(n)} END "
                       f"AS {ident(n)}")
        else:
            raw.append(ident(n))
    texts = []
    for k, typ in out_of_range.items():
        lo, hi, *_ = _PY_RANGE[typ]
        v = ident(raw_columns[k])
        texts.append(f"CASE WHEN NOT ({v} BETWEEN {lo} AND {hi}) THEN CAST({v} AS VARCHAR) END "
                     f"AS connector_text_{k}")
    wrapped = events.query(sql, [f"{SOURCE}.{ident(n)}" for n in raw_columns], extras,
                           [*LEADING[1:_UPPER], *raw, *texts], [
        *LEADING[:_UPPER],
        # to_json's upper-case \u00XX (see _lower_escapes); NULL, not false, when absent
        f"CASE WHEN contains(connector_event, '\\u00') THEN TRUE END AS {LEADING[_UPPER]}",
        *(ident(n) for n in raw_columns),
        *(f"connector_text_{k}" for k in out_of_range),
    ])
    # The rows handed to the reference hold only these columns, in this order.
    returned = plan.returned()
    encoder = LineEventEncoder(returned.index, channel_id_present=channel_id_present,
                               test_flag=test_flag, default_phone_region=default_phone_region,
                               clock=clock)
    return DuckDBPushdown(wrapped, returned, wide_ints, encoder, default_phone_region,
                          out_of_range)
