"""The field table compiled to DuckDB SQL: the engine builds the events, next to the data.

For every row the engine decides whether the row is *plainly valid*: each value has a shape whose
outcome the SQL reproduces exactly (the same check, the same hash, the same JSON bytes as orjson,
keys in the reference's order). For such a row it writes the whole event. Python then finishes
what SQL cannot do exactly, or not as cheaply:
- raw phone numbers (E.164 needs libphonenumber): the SQL leaves a placeholder byte where the
  hash goes, and the fast phone hasher fills it in;
- raw email addresses, checked by the SQL, are hashed with hashlib into their placeholder;
- custom_data: parsed, checked and re-serialised with orjson, as the reference does;
- the timestamp window, which moves with the clock: checked per batch against the encoder's now.
Every other row, and any row Python is not sure about, goes to the reference encoder, which also
names the error of an invalid row. The engine only ever accepts; it never rejects.

Only DuckDB, and only when every known column has a type whose Arrow form converts to the same
Python values as DuckDB's own fetch (so that rows handed to the reference are the rows the
standard path would have read). Otherwise `compile_pushdown` returns None and the job streams
rows the standard way. The equivalence tests check the bytes against the reference.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from connector.mapping import ColumnBinding
from connector.outputs.base import Pushdown

from . import LineEventEncoder
from ..custom import parse_custom
from ..fields import (
    CUSTOM_COLUMN,
    CUSTOM_SECTION,
    FIELDS,
    HASH_EMAIL,
    REQUIRED_SECTIONS,
    SECTIONS,
    TEST_FLAG_KEY,
    TEST_FLAG_SECTION,
    TIMESTAMP,
    TIMESTAMP_FUTURE_SECONDS,
    TIMESTAMP_PAST_SECONDS,
    Field,
    FieldError,
)
from ..hashing import DIGEST, EMAIL, make_fast_phone_hasher, sha256_hex
from ..rules import IP_FORMAT, IPV4_PLAIN_PATTERN, IPV6_PLAIN_PATTERN, NumberRule, Pattern, TextRule

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
# Placeholders for digests Python fills in; the JSON the SQL writes holds control characters
# only escaped, so these bytes are unique.
PHONE_SLOT = b"\x01"
EMAIL_SLOT = b"\x02"

_BINARY = pa.binary()
_CUSTOM_KEY = b',"' + CUSTOM_SECTION.encode() + b'":'


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


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_text(s: str) -> str:
    """SQL for the JSON string literal of text `s`."""
    return f"CAST(to_json({s}) AS VARCHAR)"


def _lower_escapes(event: bytes) -> bytes:
    """orjson's lower-case \\u00xx where to_json wrote upper case (escaped backslashes skipped)."""
    return _UPPER_ESCAPE.sub(lambda m: m.group(0).lower() if m.group(0)[1:2] == b"u" else m.group(0),
                             event)


def _re2(pattern: Pattern) -> tuple[str, bool] | None:
    """(RE2 body, full match?) of a pattern, or None if unsure."""
    body = pattern.body
    if not pattern.full:
        # re.match only needs a prefix: `X+` at the end matches iff one X does (`.+` in a URL
        # rule would otherwise make RE2 run to the end of every URL).
        body = "^" + body
        if body.endswith("+") and body[-2:-1] in (".", "]") and not body.endswith("\\+"):
            body = body[:-1]
    # \d \w \s mean Unicode classes in Python and ASCII in RE2; `$` also matches before a final
    # newline in Python. Neither appears in the table today; refuse rather than guess.
    if "\\" in body or "$" in body or "(?" in body:
        return None
    return body, pattern.full


_SAFE_RANGE = re.compile(r"[a-z]-[a-z]|[A-Z]-[A-Z]|[0-9]-[0-9]")
_SAFE_OUTSIDE = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-{},()|?+*")


def _plain_pattern(body: str) -> bool:
    """Whether every string the pattern fully matches is made of letters, digits, `_` and `-`
    only, so that it needs no JSON escaping. Conservative: anything else says no."""
    for cls in re.findall(r"\[([^\]]*)\]", body):
        if cls.startswith("^") or set(_SAFE_RANGE.sub("", cls)) - set("_-"):
            return False
    return set(re.sub(r"\[[^\]]*\]", "", body)) <= _SAFE_OUTSIDE


def _string_sql(rule: TextRule, s: str) -> tuple[list[str], bool] | None:
    """(SQL conditions that, all true, mean the check passes; whether JSON escaping may be needed)."""
    conds: list[str] = []
    plain = False  # the value is known to hold no character JSON escapes
    if rule.enum is not None:
        conds.append(f"{s} IN ({', '.join(_lit(e) for e in rule.enum)})")
        plain = all(re.search(r'["\\\x00-\x1f]', e) is None for e in rule.enum)
    if rule.max_length is not None:
        # bytes >= characters, so this never accepts what len() refuses
        conds.append(f"strlen({s}) <= {int(rule.max_length)}")
    if rule.reject_undefined:
        conds.append(f"{s} <> 'undefined'")
    if rule.pattern is not None:
        anchored = _re2(rule.pattern)
        if anchored is None:
            return None
        body, full = anchored
        conds.append(f"{'regexp_full_match' if full else 'regexp_matches'}({s}, {_lit(body)})")
        plain = plain or (full and _plain_pattern(body))
    if rule.format is not None:
        if rule.format != IP_FORMAT:
            return None
        # An IPv6 form always holds a colon, an IPv4 one never: one regex per value.
        conds.append(f"CASE WHEN contains({s}, ':') THEN regexp_full_match({s}, "
                     f"{_lit(IPV6_PLAIN_PATTERN)}) ELSE regexp_full_match({s}, "
                     f"{_lit(IPV4_PLAIN_PATTERN)}) END")
        plain = True
    return conds, not plain


@dataclass
class _Column:
    """One field's SQL: its JSON piece (NULL when absent) and whether the row may use it."""
    piece: str
    ok: str
    present: str
    extra: dict[str, str]


def _and(conds: Sequence[str]) -> str:
    return " AND ".join(f"({c})" for c in conds) if conds else "TRUE"


def _hex_or(v: str, fallback: str) -> tuple[str, str]:
    # The length test first: most values are far shorter than a digest, and it is cheaper.
    hex_sql = (f"(strlen({v}) >= 64 AND regexp_full_match({v}, "
               f"{_lit(' *' + DIGEST.body + ' *')}))")
    return hex_sql, f"CASE WHEN {hex_sql} THEN lower(trim({v})) ELSE {fallback} END"


def _field_sql(f: Field, v: str, typ: str) -> _Column:
    key = f'\'"{f.key}":\''
    if typ == "VARCHAR":
        present = f"{v} IS NOT NULL" if f.required else f"{v} IS NOT NULL AND {v} <> ''"
    else:
        present = f"{v} IS NOT NULL"
    unsupported = _Column("NULL", "FALSE" if f.required else f"NOT ({present})", present, {})

    if f.value == TIMESTAMP:
        rule = f.rule
        if not isinstance(rule, NumberRule):
            return unsupported
        if typ in _INT_TYPES:
            ts, shape = f"TRY_CAST({v} AS BIGINT)", "TRUE"
        elif typ == "VARCHAR":  # digit strings; anything with spaces or signs: the reference
            ts, shape = f"TRY_CAST({v} AS BIGINT)", f"regexp_full_match({v}, '[0-9]{{1,18}}')"
        elif typ == "TIMESTAMP":  # naive = UTC; int() of the float seconds truncates like //
            ts, shape = f"epoch_us({v}) // 1000000", f"isfinite({v})"
        else:
            return unsupported
        ok = [present, shape, f"{ts} IS NOT NULL", f"{ts} >= {rule.lo}", f"{ts} <= {rule.hi}"]
        return _Column(f"concat({key}, CAST({ts} AS VARCHAR))", _and(ok), present,
                       {"connector_ts": f"{ts}"})

    if f.hashing is not None:
        if typ != "VARCHAR":
            return unsupported
        if f.hashing == HASH_EMAIL:
            # An address is hashed by Python (hashlib is several times faster than the
            # engine's sha256, and the engine is the busier thread); the regex makes
            # strip().lower() there exactly hashing.normalise_email.
            addr = f"regexp_full_match({v}, {_lit(' *' + EMAIL.body + ' *')})"
            hex_sql, value = _hex_or(v, f"chr({EMAIL_SLOT[0]})")
            ok = f"NOT ({present}) OR {hex_sql} OR {addr}"
            return _Column(f"""CASE WHEN {present} THEN concat({key}, '"', {value}, '"') END""",
                           ok, present,
                           {"connector_email": f"CASE WHEN {present} AND NOT {hex_sql} THEN {v} END"})
        # A raw number: the placeholder, and the value for Python's fast hasher.
        hex_sql, value = _hex_or(v, f"chr({PHONE_SLOT[0]})")
        return _Column(f"""CASE WHEN {present} THEN concat({key}, '"', {value}, '"') END""",
                       "TRUE", present,
                       {"connector_phone": f"CASE WHEN {present} AND NOT {hex_sql} THEN {v} END"})

    rule = f.rule
    if not isinstance(rule, TextRule):
        return unsupported
    if typ == "VARCHAR":
        s = v
    elif typ in _INT_TYPES:
        s = f"CAST({v} AS VARCHAR)"
    else:
        return unsupported
    derived = _string_sql(rule, s)
    if derived is None:
        return unsupported
    conds, escape = derived
    text = _json_text(s) if escape else f"""'"', {s}, '"'"""
    piece = f"CASE WHEN {present} THEN concat({key}, {text}) END"
    ok = _and([present] + conds) if f.required else f"NOT ({present}) OR ({_and(conds)})"
    return _Column(piece, ok, present, {})


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
            if event is None:
                continue
            try:
                custom = parse_custom(raw)
            except FieldError:
                events[i] = None
                continue
            if custom:
                events[i] = b"".join((event[:-1], _CUSTOM_KEY, orjson.dumps(custom), b"}"))
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


def _envelope_sql(pieces: dict[str, str]) -> str:
    """SQL writing the event object from each section's inner JSON (`pieces[name]`), in the
    envelope's order; optional sections only when not empty. (concat(), not ||: a chain of ||
    copies the growing string at every step, a third of the query's time, measured.)"""
    parts = ["'{'"]
    for i, name in enumerate(SECTIONS):
        opener = _lit(("," if i else "") + '"' + name + '":{')
        if name in REQUIRED_SECTIONS:
            parts += [opener, pieces[name], "'}'"]
        else:
            parts.append(f"CASE WHEN {pieces[name]} <> '' THEN "
                         f"concat({opener}, {pieces[name]}, '}}') END")
    parts.append("'}'")
    return f"concat({', '.join(parts)})"


def compile_pushdown(sql: str, columns: ColumnBinding, *, channel_id_present: bool,
                     test_flag: bool, default_phone_region: str | None,
                     clock: Callable[[], float] = time.time) -> DuckDBPushdown | None:
    """The pushdown for this query's bound columns and their described types, or None (use the
    standard path)."""
    known = [f.column for f in FIELDS] + [CUSTOM_COLUMN]
    present = [c for c in known if columns.present(c)]
    types = {c: columns.type_of(c) or "" for c in present}
    if any(_SAFE_TYPE.match(types[c]) is None for c in present):
        return None
    if CUSTOM_COLUMN in types and types[CUSTOM_COLUMN] != "VARCHAR":
        return None
    # The raw columns the reference may need, in query order.
    order = sorted(present, key=lambda c: columns.index[c])
    raw_columns = [columns.name(c) for c in order]
    wide_ints = {k for k, c in enumerate(order) if types[c] in _WIDE_INT_TYPES}
    out_of_range = {k: types[c] for k, c in enumerate(order) if types[c] in _PY_RANGE}

    cols: dict[str, _Column] = {}
    for f in FIELDS:
        if f.column in types:
            cols[f.column] = _field_sql(f, "connector_source." + _ident(columns.name(f.column)),
                                        types[f.column])
    sections: dict[str, list[str]] = {name: [] for name in SECTIONS}
    for f in FIELDS:
        if f.column in cols:
            sections[f.section].append(cols[f.column].piece)
    if test_flag:
        sections[TEST_FLAG_SECTION].append(_lit(f'"{TEST_FLAG_KEY}":true'))
    oks = [c.ok for c in cols.values()]
    identifiers = [cols[f.column].present for f in FIELDS if f.identifier and f.column in cols]
    oks.append(" OR ".join(f"({p})" for p in identifiers) or "FALSE")
    if not channel_id_present:
        oks += [f"NOT ({cols[f.column].present})" for f in FIELDS
                if f.needs_channel and f.column in cols]
    extra: dict[str, str] = {"connector_ts": "NULL::BIGINT", "connector_email": "NULL::VARCHAR",
                             "connector_phone": "NULL::VARCHAR"}
    for c in cols.values():
        extra.update(c.extra)
    if CUSTOM_COLUMN in types:
        v = "connector_source." + _ident(columns.name(CUSTOM_COLUMN))
        extra["connector_custom"] = f"CASE WHEN {v} IS NOT NULL AND {v} <> '' THEN {v} END"
    else:
        extra["connector_custom"] = "NULL::VARCHAR"

    def ws(pieces: list[str]) -> str:
        return f"concat_ws(',', {', '.join(pieces)})" if pieces else "''"

    inner = ",\n    ".join([
        f"COALESCE({_and(oks)}, FALSE) AS connector_ok",
        *(f"{ws(sections[name])} AS connector_s{i}" for i, name in enumerate(SECTIONS)),
        *(f"{expr} AS {name}" for name, expr in extra.items()),
    ])
    event = _envelope_sql({name: f"connector_s{i}" for i, name in enumerate(SECTIONS)})
    raw = []
    for k, n in enumerate(raw_columns):
        if k in wide_ints:
            raw.append(f"CAST({_ident(n)} AS VARCHAR) AS {_ident(n)}")
        elif k in out_of_range:
            lo, hi, *_ = _PY_RANGE[out_of_range[k]]
            raw.append(f"CASE WHEN {_ident(n)} BETWEEN {lo} AND {hi} THEN {_ident(n)} END "
                       f"AS {_ident(n)}")
        else:
            raw.append(_ident(n))
    texts = []
    for k, typ in out_of_range.items():
        lo, hi, *_ = _PY_RANGE[typ]
        v = _ident(raw_columns[k])
        texts.append(f"CASE WHEN NOT ({v} BETWEEN {lo} AND {hi}) THEN CAST({v} AS VARCHAR) END "
                     f"AS connector_text_{k}")
    built = ",\n  ".join([f"CASE WHEN connector_ok THEN {event} END AS connector_event",
                          *LEADING[1:_UPPER], *raw, *texts])
    outer = ",\n  ".join([
        *LEADING[:_UPPER],
        # to_json's upper-case \u00XX (see _lower_escapes); NULL, not false, when absent
        f"CASE WHEN contains(connector_event, '\\u00') THEN TRUE END AS {LEADING[_UPPER]}",
        *(_ident(n) for n in raw_columns),
        *(f"connector_text_{k}" for k in out_of_range),
    ])
    # Three levels: the pieces and checks, the event, then what is read from the event. Only
    # the output's columns are carried up (not connector_source.*), so that a query column
    # named like one of the plan's own (connector_ok, connector_ts...) cannot shadow it.
    carried = ", ".join(f"connector_source.{_ident(n)}" for n in raw_columns)
    wrapped = (f"SELECT\n  {outer}\nFROM (\nSELECT\n  {built}\nFROM (\n"
               f"  SELECT {carried},\n    {inner}\n"
               f"  FROM (\n{sql}\n) AS connector_source\n) AS connector_pieces\n) AS connector_events")
    # The rows handed to the reference hold only these columns, in this order.
    returned = ColumnBinding(tuple(raw_columns), {c: k for k, c in enumerate(order)},
                             {c: types[c] for c in order})
    encoder = LineEventEncoder(returned.index, channel_id_present=channel_id_present,
                               test_flag=test_flag, default_phone_region=default_phone_region,
                               clock=clock)
    return DuckDBPushdown(wrapped, returned, wide_ints, encoder, default_phone_region,
                          out_of_range)
