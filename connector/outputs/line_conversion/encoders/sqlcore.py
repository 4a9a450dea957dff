"""The field table compiled to SQL: the part of the pushdown every engine shares.

For every row the engine decides whether the row is *plainly valid*: each value has a shape whose
outcome the SQL reproduces exactly (the same check, the same hash, the same JSON bytes as orjson,
keys in the reference's order). For such a row it writes the whole event. Python then finishes
what SQL cannot do exactly, or not as cheaply:
- raw phone numbers (E.164 needs libphonenumber): the SQL leaves a placeholder byte where the
  hash goes, and the fast phone hasher fills it in;
- raw email addresses, checked by the SQL, are hashed into their placeholder (by hashlib, unless
  the dialect hashes them in the engine);
- custom_data: parsed, checked and re-serialised with orjson, as the reference does;
- the timestamp window, which moves with the clock: checked per batch against the encoder's now.
Every other row, and any row Python is not sure about, goes to the reference encoder, which also
names the error of an invalid row. The engine only ever accepts; it never rejects.

This module holds what does not depend on the engine: which checks a rule becomes, the JSON
pieces of each field, the envelope, and the SQL levels around the user's query. A `SqlDialect`
spells each step in one engine's SQL (function names, regex anchors, lengths, JSON escaping,
hashing, how a typed column becomes text or seconds). The dialect modules (`pushdown.py` for
DuckDB, `pushdown_trino.py` for Trino) add how rows come back and how Python completes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from connector.mapping import ColumnBinding

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
    Field,
    FieldError,
)
from ..hashing import DIGEST, EMAIL
from ..rules import IP_FORMAT, IPV4_PLAIN_PATTERN, IPV6_PLAIN_PATTERN, NumberRule, Pattern, TextRule

# Placeholders for digests Python fills in; the JSON the SQL writes holds control characters
# only escaped, so these bytes are unique.
PHONE_SLOT = b"\x01"
EMAIL_SLOT = b"\x02"

# The columns the SQL adds beside the event, for Python's completion.
TS, EMAIL_RAW, PHONE_RAW, CUSTOM_RAW = ("connector_ts", "connector_email", "connector_phone",
                                        "connector_custom")
EXTRAS = (TS, EMAIL_RAW, PHONE_RAW, CUSTOM_RAW)


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def regex_body(pattern: Pattern) -> tuple[str, bool] | None:
    """(body without anchors, full match?) of a pattern, in the syntax RE2 and Joni read alike,
    or None if unsure."""
    body = pattern.body
    if not pattern.full:
        # re.match only needs a prefix: `X+` at the end matches iff one X does (`.+` in a URL
        # rule would otherwise make the engine run to the end of every URL).
        if body.endswith("+") and body[-2:-1] in (".", "]") and not body.endswith("\\+"):
            body = body[:-1]
    # \d \w \s mean Unicode classes in Python and ASCII in RE2; `$` also matches before a final
    # newline in Python; `&&` intersects classes in Joni. None appears in the table today;
    # refuse rather than guess.
    if "\\" in body or "$" in body or "(?" in body or "&&" in body or "[[" in body:
        return None
    return body, pattern.full


_SAFE_RANGE = re.compile(r"[a-z]-[a-z]|[A-Z]-[A-Z]|[0-9]-[0-9]")
_SAFE_OUTSIDE = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-{},()|?+*")


def plain_pattern(body: str) -> bool:
    """Whether every string the pattern fully matches is made of letters, digits, `_` and `-`
    only, so that it needs no JSON escaping. Conservative: anything else says no."""
    for cls in re.findall(r"\[([^\]]*)\]", body):
        if cls.startswith("^") or set(_SAFE_RANGE.sub("", cls)) - set("_-"):
            return False
    return set(re.sub(r"\[[^\]]*\]", "", body)) <= _SAFE_OUTSIDE


class SqlDialect:
    """How one engine spells each step. Every method returns SQL text."""

    name = ""
    text_type = "VARCHAR"
    # Raw email addresses: hashed by the engine (True) or by hashlib in Python (False).
    email_in_engine = False

    def full_match(self, s: str, body: str) -> str:
        raise NotImplementedError

    def prefix_match(self, s: str, body: str) -> str:
        raise NotImplementedError

    def length(self, s: str) -> str:
        """Never less than len() of the value in Python (the checks may only refuse more)."""
        raise NotImplementedError

    def json_text(self, s: str) -> str:
        """The JSON string literal of text `s`, as the engine writes it."""
        raise NotImplementedError

    def contains(self, s: str, sub: str) -> str:
        raise NotImplementedError

    def null(self, sql_type: str) -> str:
        return f"CAST(NULL AS {sql_type})"

    def concat_nullable(self, parts: Sequence[str]) -> str:
        """Concatenation where NULL parts count as empty."""
        raise NotImplementedError

    def sha256_hex(self, s: str) -> str:
        raise NotImplementedError

    def is_text(self, typ: str) -> bool:
        raise NotImplementedError

    def text_of(self, v: str, typ: str) -> str | None:
        """A TEXT field's column as the text `fields.to_text` makes of it, or None (unsupported)."""
        raise NotImplementedError

    def seconds_of(self, v: str, typ: str) -> tuple[str, str] | None:
        """(UNIX seconds as `fields.timestamp_seconds` computes them, a condition under which the
        expression is exact), or None (unsupported type)."""
        raise NotImplementedError


def _string_sql(d: SqlDialect, rule: TextRule, s: str) -> tuple[list[str], bool] | None:
    """(SQL conditions that, all true, mean the check passes; whether JSON escaping may be needed)."""
    conds: list[str] = []
    plain = False  # the value is known to hold no character JSON escapes
    if rule.enum is not None:
        conds.append(f"{s} IN ({', '.join(lit(e) for e in rule.enum)})")
        plain = all(re.search(r'["\\\x00-\x1f]', e) is None for e in rule.enum)
    if rule.max_length is not None:
        conds.append(f"{d.length(s)} <= {int(rule.max_length)}")
    if rule.reject_undefined:
        conds.append(f"{s} <> 'undefined'")
    if rule.pattern is not None:
        anchored = regex_body(rule.pattern)
        if anchored is None:
            return None
        body, full = anchored
        conds.append(d.full_match(s, body) if full else d.prefix_match(s, body))
        plain = plain or (full and plain_pattern(body))
    if rule.format is not None:
        if rule.format != IP_FORMAT:
            return None
        # An IPv6 form always holds a colon, an IPv4 one never: one regex per value.
        conds.append(f"CASE WHEN {d.contains(s, ':')} THEN {d.full_match(s, IPV6_PLAIN_PATTERN)} "
                     f"ELSE {d.full_match(s, IPV4_PLAIN_PATTERN)} END")
        plain = True
    return conds, not plain


@dataclass
class FieldSql:
    """One field's SQL, a single value: '' when the field is absent, NULL when the engine
    refuses (or is unsure of) the value, else the field's `"key":value` JSON piece.

    One value per field keeps each regex evaluated once, and each field its own projection:
    the next level reads it twice (the row's verdict, its section), which keeps an optimizer
    that inlines single-use expressions (Trino's) from merging every field into one expression
    too big for the JVM to compile."""
    value: str
    extra: dict[str, str]  # extra column -> expression at the next level (FIELD_VALUE: the value)


# Stands for the field's value column in FieldSql.extra.
FIELD_VALUE = "{field}"


def and_(conds: Sequence[str]) -> str:
    return " AND ".join(f"({c})" for c in conds) if conds else "TRUE"


def _absent(d: SqlDialect, v: str, typ: str) -> str:
    return f"{v} IS NULL OR {v} = ''" if d.is_text(typ) else f"{v} IS NULL"


def field_sql(d: SqlDialect, f: Field, v: str, typ: str, raw: str) -> FieldSql:
    """`v`: the column at the fields' level; `raw`: the same column at the next level."""
    key = f'\'"{f.key}":\''
    # A required field must be present (the reference refuses NULL), even as ''.
    when_absent = "" if f.required else f"WHEN {_absent(d, v, typ)} THEN '' "
    unsupported = FieldSql(f"CASE {when_absent}END" if when_absent else "NULL", {})

    if f.value == TIMESTAMP:
        rule = f.rule
        if not isinstance(rule, NumberRule):
            return unsupported
        seconds, raw_seconds = d.seconds_of(v, typ), d.seconds_of(raw, typ)
        if seconds is None or raw_seconds is None:
            return unsupported
        ts, shape = seconds
        ok = [f"{v} IS NOT NULL", shape, f"{ts} IS NOT NULL", f"{ts} >= {rule.lo}", f"{ts} <= {rule.hi}"]
        return FieldSql(f"CASE {when_absent}WHEN {and_(ok)} THEN "
                        f"concat({key}, CAST({ts} AS {d.text_type})) END",
                        {TS: f"CASE WHEN {FIELD_VALUE} IS NOT NULL THEN {raw_seconds[0]} END"})

    if f.hashing is not None:
        if not d.is_text(typ):
            return unsupported
        # The length test first: most values are far shorter than a digest, and it is cheaper.
        hex_sql = f"{d.length(v)} >= 64 AND {d.full_match(v, ' *' + DIGEST.body + ' *')}"
        digest = f"""WHEN {hex_sql} THEN concat({key}, '"', lower(trim({v})), '"') """
        email = f.hashing == HASH_EMAIL
        slot = EMAIL_SLOT if email else PHONE_SLOT
        placeholder = f"""concat({key}, '"', chr({slot[0]}), '"')"""
        # The raw value, for Python, where the placeholder is.
        raw_extra = {EMAIL_RAW if email else PHONE_RAW:
                     f"CASE WHEN {FIELD_VALUE} = {placeholder} THEN {raw} END"}
        if not email:  # a raw number: the fast phone hasher decides
            return FieldSql(f"CASE {when_absent}{digest}ELSE {placeholder} END", raw_extra)
        # The regex makes trim/lower in the engine, or strip().lower() in Python, exactly
        # hashing.normalise_email.
        address = d.full_match(v, " *" + EMAIL.body + " *")
        if d.email_in_engine:
            hashed = f"""concat({key}, '"', {d.sha256_hex(f"lower(trim({v}))")}, '"')"""
            return FieldSql(f"CASE {when_absent}{digest}WHEN {address} THEN {hashed} END", {})
        return FieldSql(f"CASE {when_absent}{digest}WHEN {address} THEN {placeholder} END",
                        raw_extra)

    rule = f.rule
    if not isinstance(rule, TextRule):
        return unsupported
    s = d.text_of(v, typ)
    if s is None:
        return unsupported
    derived = _string_sql(d, rule, s)
    if derived is None:
        return unsupported
    conds, escape = derived
    text = d.json_text(s) if escape else f"""'"', {s}, '"'"""
    required = [f"{v} IS NOT NULL"] if f.required else []
    return FieldSql(f"CASE {when_absent}WHEN {and_(required + conds)} THEN concat({key}, {text}) END",
                    {})


@dataclass(frozen=True)
class PlanColumns:
    """The plan's view of the bound query: which LINE columns are present, their types, and
    the raw columns the reference may need (in query order)."""
    present: tuple[str, ...]  # output columns (lower case)
    types: dict[str, str]  # output column -> engine type
    order: tuple[str, ...]  # present columns in query order
    raw_columns: tuple[str, ...]  # the query's own names of `order`

    def returned(self) -> ColumnBinding:
        """The binding of rows holding only the raw columns, in this order (for the reference)."""
        return ColumnBinding(self.raw_columns, {c: k for k, c in enumerate(self.order)},
                             {c: self.types[c] for c in self.order})


def plan_columns(columns: ColumnBinding) -> PlanColumns:
    known = [f.column for f in FIELDS] + [CUSTOM_COLUMN]
    present = [c for c in known if columns.present(c)]
    types = {c: columns.type_of(c) or "" for c in present}
    order = sorted(present, key=lambda c: columns.index[c])
    return PlanColumns(tuple(present), types, tuple(order), tuple(columns.name(c) for c in order))


SOURCE = "connector_source"


def builds_events(d: SqlDialect, plan: PlanColumns) -> bool:
    """Whether the engine can build any event: every required field's column has a type the
    dialect reads (else every row would go to the reference, through the engine for nothing)."""
    for f in FIELDS:
        if not f.required or f.column not in plan.types:
            continue
        typ = plan.types[f.column]
        supported = (d.seconds_of("v", typ) if f.value == TIMESTAMP
                     else d.is_text(typ) if f.hashing is not None else d.text_of("v", typ))
        if supported is None or supported is False:
            return False
    return True


@dataclass
class EventSql:
    """The levels around the user's query, as select-list items:
    1. `fields`, beside connector_source.*: one value per field (FieldSql);
    2. `checks`, beside those: connector_ok (the engine built the row's event) and the
       sections; and `extras` (extra column -> expression, None when no field sets it);
    3. `event`: the event's JSON from the sections, valid where connector_ok."""
    fields: list[str]
    checks: list[str]
    extras: dict[str, str | None]
    event: str

    def query(self, sql: str, carried: Sequence[str], extras: dict[str, str],
              built: Sequence[str], outer: Sequence[str], tail: str = "") -> str:
        """The whole query: the levels above, `carried` (select-list items over connector_source:
        the query's columns the levels above read) beside the fields, `extras` (name ->
        expression) beside the checks, then `built` beside the event, then `outer` (the
        result's columns), then `tail`. Only `carried` comes up from the query, never
        connector_source.*: a query column named like one of the plan's own (connector_ok,
        connector_f0...) must not shadow it."""
        level2 = [*self.checks, *(f"{expr} AS {name}" for name, expr in extras.items())]
        event = f"CASE WHEN connector_ok THEN {self.event} END AS connector_event"
        level1 = [*carried, *self.fields]
        return (f"SELECT\n  {_list(outer, 2)}\nFROM (\nSELECT\n  {_list([event, *built], 2)}\n"
                f"FROM (\n  SELECT connector_fields.*,\n    {_list(level2, 4)}\n"
                f"  FROM (\n  SELECT {_list(level1, 4)}\n"
                f"  FROM (\n{sql}\n) AS {SOURCE}\n  ) AS connector_fields\n) AS connector_pieces\n"
                f") AS connector_events{tail}")


def _list(items: Sequence[str], indent: int) -> str:
    return (",\n" + " " * indent).join(items)


def compile_events(d: SqlDialect, columns: ColumnBinding, plan: PlanColumns, *,
                   channel_id_present: bool, test_flag: bool) -> EventSql:
    types = plan.types
    fields: list[str] = []
    value: dict[str, str] = {}  # output column -> its value's column
    sections: dict[str, list[str]] = {name: [] for name in SECTIONS}
    extras: dict[str, str | None] = {TS: None, EMAIL_RAW: None, PHONE_RAW: None}
    for i, f in enumerate(FIELDS):
        if f.column not in types:
            continue
        name = ident(columns.name(f.column))
        fs = field_sql(d, f, f"{SOURCE}.{name}", types[f.column], name)
        value[f.column] = col = f"connector_f{i}"
        fields.append(f"{fs.value} AS {col}")
        sections[f.section].append(f"NULLIF({col}, '')")
        extras.update({k: e.replace(FIELD_VALUE, col) for k, e in fs.extra.items()})
    if test_flag:
        sections[TEST_FLAG_SECTION].append(lit(f'"{TEST_FLAG_KEY}":true'))
    oks = [f"{col} IS NOT NULL" for col in value.values()]
    identifiers = [f"{value[f.column]} <> ''" for f in FIELDS if f.identifier and f.column in value]
    oks.append(" OR ".join(f"({p})" for p in identifiers) or "FALSE")
    if not channel_id_present:
        oks += [f"{value[f.column]} = ''" for f in FIELDS if f.needs_channel and f.column in value]
    if CUSTOM_COLUMN in types:
        v = ident(columns.name(CUSTOM_COLUMN))
        extras[CUSTOM_RAW] = (f"CASE WHEN {v} IS NOT NULL AND {v} <> '' THEN {v} END"
                              if d.is_text(types[CUSTOM_COLUMN]) else v)
    else:
        extras[CUSTOM_RAW] = None

    def ws(pieces: list[str]) -> str:
        return f"concat_ws(',', {', '.join(pieces)})" if pieces else "''"

    checks = [
        f"COALESCE({and_(oks)}, FALSE) AS connector_ok",
        *(f"{ws(sections[name])} AS connector_s{i}" for i, name in enumerate(SECTIONS)),
    ]
    event = _envelope_sql(d, {name: f"connector_s{i}" for i, name in enumerate(SECTIONS)})
    return EventSql(fields, checks, extras, event)


def _envelope_sql(d: SqlDialect, pieces: dict[str, str]) -> str:
    """SQL writing the event object from each section's inner JSON (`pieces[name]`), in the
    envelope's order; optional sections only when not empty. (concat(), not ||: a chain of ||
    copies the growing string at every step, a third of the query's time, measured on DuckDB.)"""
    parts = ["'{'"]
    for i, name in enumerate(SECTIONS):
        opener = lit(("," if i else "") + '"' + name + '":{')
        if name in REQUIRED_SECTIONS:
            parts += [opener, pieces[name], "'}'"]
        else:
            parts.append(f"CASE WHEN {pieces[name]} <> '' THEN "
                         f"concat({opener}, {pieces[name]}, '}}') END")
    parts.append("'}'")
    return d.concat_nullable(parts)


# --------------------------------------------------------------------------- Python's completion
_CUSTOM_KEY = b',"' + CUSTOM_SECTION.encode() + b'":'


def with_custom(event: bytes, raw: Any) -> bytes | None:
    """The event with its custom object from the custom_data value (already in the Python form
    the standard path reads), or None: the value is invalid and the reference names why."""
    try:
        custom = parse_custom(raw)
    except FieldError:
        return None
    if not custom:
        return event
    return b"".join((event[:-1], _CUSTOM_KEY, orjson.dumps(custom), b"}"))
