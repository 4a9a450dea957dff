"""Treasure Data's time functions (TD_SCHEDULED_TIME, TD_TIME_RANGE, TD_TIME_ADD, TD_TIME_FORMAT,
TD_TIME_PARSE, TD_INTERVAL, TD_DATE_TRUNC) on the engines, so that TD users' queries run unchanged.

Each function is declared once below, as SQL over a few primitives. The declaration is rendered
as temporary macros on every DuckDB connection the Source opens, and as inline `WITH FUNCTION`
routines in front of a Trino query (only the ones the query names, with what they call). The
user's SQL text is never rewritten.

Semantics (Treasure Data's):
- A time is UNIX seconds. A time string is `yyyy-MM-dd[( |T)HH:mm[:ss[.fff]]][ zone]`, read in
  the function's time zone unless it names its own (`Z`, `+09:00`, `+0900`, `JST`, an IANA name).
- The time zone argument defaults to UTC and accepts IANA names and the abbreviations TD's
  functions accept (`JST`, `PST`, `PDT`, ...; the table below).
- Local times that occur twice resolve to the first occurrence; local times that do not exist
  move forward by the length of the gap.
- TD_TIME_ADD adds a fixed duration (`Ns`, `Nm`, `Nh`, `Nd`, `Nw`, signed).
- TD_INTERVAL(time, 'N<unit>[/offset]'): the reference is TD_SCHEDULED_TIME() (or the offset:
  `now`, another `N<unit>`, or a time string), truncated to the unit in the time zone; a
  negative or zero N selects the N units before it, a positive N the N units from it. With
  `/now` the side at the reference is the reference itself, not truncated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

# Abbreviations that TD's functions accept as a time zone, and what each means. The standard
# abbreviations follow Java's short zone IDs (which TD's functions run on): the regional zone
# where Java maps one, a fixed offset where Java does. The daylight forms name fixed offsets.
ZONE_ABBREVIATIONS: dict[str, str] = {
    "UTC": "UTC", "GMT": "UTC", "UT": "UTC", "Z": "UTC",
    "JST": "Asia/Tokyo", "KST": "Asia/Seoul", "CTT": "Asia/Shanghai", "IST": "Asia/Kolkata",
    "PST": "America/Los_Angeles", "CST": "America/Chicago", "AST": "America/Anchorage",
    "EST": "Etc/GMT+5", "MST": "Etc/GMT+7", "HST": "Etc/GMT+10",
    "PDT": "Etc/GMT+7", "MDT": "Etc/GMT+6", "CDT": "Etc/GMT+5", "EDT": "Etc/GMT+4",
    "ECT": "Europe/Paris", "CET": "Europe/Paris", "CEST": "Etc/GMT-2",
    "BST": "Asia/Dhaka", "AET": "Australia/Sydney", "ACT": "Australia/Darwin",
    "NST": "Pacific/Auckland", "VST": "Asia/Ho_Chi_Minh", "PLT": "Asia/Karachi",
    "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico", "IET": "America/Indiana/Indianapolis",
    "CNT": "America/St_Johns", "AGT": "America/Argentina/Buenos_Aires", "BET": "America/Sao_Paulo",
    "ART": "Africa/Cairo", "CAT": "Africa/Harare", "EAT": "Africa/Addis_Ababa",
    "NET": "Asia/Yerevan", "SST": "Pacific/Guadalcanal", "MIT": "Pacific/Apia",
}

# The time string grammar, and the interval and duration grammars (RE2 and Joni alike).
TIME_PATTERN = (r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
                r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d{1,9})?)?)?\s*(.*?)\s*$")
OFFSET_PATTERN = r"^([+-])(\d{2}):?(\d{2})?$"
INTERVAL_PATTERN = r"^\s*([+-]?\d+)([smhdwMqy])(?:/(.*?))?\s*$"
DURATION_PATTERN = r"^\s*([+-]?\d+)([smhdw])\s*$"
LAMBDA_PATTERN = r"^\s*([+-]?\d+)([smhdwMqy])\s*$"
FORMAT_TOKENS = r"y+|M+|d+|H+|h+|m+|s+|S+|a+|E+|Z+|[A-Za-z]|''|'(?:[^']|'')*'|[^A-Za-z']+"

# The format letters TD_TIME_FORMAT supports (Java's SimpleDateFormat letters).
FORMAT_LETTERS = ("yyyy", "yy", "MMMM", "MMM", "MM", "M", "dd", "d", "HH", "H", "hh", "h",
                  "mm", "m", "ss", "s", "SSS", "a", "EEEE", "EEE", "EE", "E", "Z", "ZZ")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_TRUNC_UNITS = {"second": "s", "minute": "m", "hour": "h", "day": "d", "week": "w",
                    "month": "M", "quarter": "q", "year": "y"}

ANY = "any"  # a time given as UNIX seconds or as a time string
MIN_TIME, MAX_TIME = -(2 ** 63 - 1), 2 ** 63 - 1  # an open end of a range


def _q(text: str) -> str:
    """A SQL string literal that survives str.format (the bodies are format templates)."""
    return "'" + text.replace("'", "''").replace("{", "{{").replace("}", "}}") + "'"


def _case(expr: str, mapping: Iterable[tuple[str, str]], default: str) -> str:
    """CASE expr WHEN key THEN value ...; keys and values are SQL."""
    whens = " ".join(f"WHEN {k} THEN {v}" for k, v in mapping)
    return f"CASE {expr} {whens} ELSE {default} END"


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # a Trino type, or ANY
    default: str | None = None  # SQL used when the caller leaves it out


@dataclass(frozen=True)
class Routine:
    name: str
    params: tuple[Param, ...]
    returns: str
    body: str  # SQL; {name} is the parameter, {name:secs} a time parameter as UNIX seconds
    duckdb: str | None = None  # the body on DuckDB, where it differs
    trino: str | None = None  # the body on Trino, where it differs

    @property
    def public(self) -> bool:
        return not self.name.startswith("td__")


def _p(*spec: str) -> tuple[Param, ...]:
    out = []
    for item in spec:
        name, _, rest = item.partition(":")
        type_, _, default = rest.partition("=")
        out.append(Param(name, type_, default or None))
    return tuple(out)


FAIL = "__FAIL__"  # error(...) on DuckDB, fail(...) on Trino


def _fail(message: str) -> str:
    return f"{FAIL}({_q(message)})"


_SECS = "CASE {unit} WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400 " \
        "WHEN 'w' THEN 604800 END"
_TOKEN_VALUES: list[tuple[str, str]] = [
    ("yyyy", "lpad(CAST(year(td__naive({u})) AS varchar), 4, '0')"),
    ("yy", "lpad(CAST(year(td__naive({u})) % 100 AS varchar), 2, '0')"),
    ("MM", "lpad(CAST(month(td__naive({u})) AS varchar), 2, '0')"),
    ("M", "CAST(month(td__naive({u})) AS varchar)"),
    ("dd", "lpad(CAST(day(td__naive({u})) AS varchar), 2, '0')"),
    ("d", "CAST(day(td__naive({u})) AS varchar)"),
    ("HH", "lpad(CAST(hour(td__naive({u})) AS varchar), 2, '0')"),
    ("H", "CAST(hour(td__naive({u})) AS varchar)"),
    ("hh", "lpad(CAST((hour(td__naive({u})) + 11) % 12 + 1 AS varchar), 2, '0')"),
    ("h", "CAST((hour(td__naive({u})) + 11) % 12 + 1 AS varchar)"),
    ("mm", "lpad(CAST(minute(td__naive({u})) AS varchar), 2, '0')"),
    ("m", "CAST(minute(td__naive({u})) AS varchar)"),
    ("ss", "lpad(CAST(second(td__naive({u})) AS varchar), 2, '0')"),
    ("s", "CAST(second(td__naive({u})) AS varchar)"),
    ("SSS", "'000'"),
    ("a", "CASE WHEN hour(td__naive({u})) < 12 THEN 'AM' ELSE 'PM' END"),
]


def _format_token_body() -> str:
    """One token of a format pattern -> its text, for the local time u with offset o."""
    month = "month(td__naive({u}))"
    weekday = "((CAST(floor(CAST({u} AS double) / 86400) AS bigint) + 3) % 7 + 7) % 7"
    values = list(_TOKEN_VALUES)
    values += [
        ("MMMM", _case(month, [(str(i + 1), _q(n)) for i, n in enumerate(_MONTHS)], "NULL")),
        ("MMM", _case(month, [(str(i + 1), _q(n[:3])) for i, n in enumerate(_MONTHS)], "NULL")),
        ("EEEE", _case(weekday, [(str(i), _q(n)) for i, n in enumerate(_DAYS)], "NULL")),
    ]
    short_day = _case(weekday, [(str(i), _q(n[:3])) for i, n in enumerate(_DAYS)], "NULL")
    values += [("EEE", short_day), ("EE", short_day), ("E", short_day)]
    sign = "CASE WHEN {o} < 0 THEN '-' ELSE '+' END"
    hours = "lpad(CAST(CAST(floor(CAST(abs({o}) AS double) / 3600) AS bigint) AS varchar), 2, '0')"
    minutes = "lpad(CAST(CAST(floor(CAST(abs({o}) % 3600 AS double) / 60) AS bigint) AS varchar), 2, '0')"
    values += [("Z", f"{sign} || {hours} || {minutes}"), ("ZZ", f"{sign} || {hours} || ':' || {minutes}")]
    body = " ".join(f"WHEN {_q(k)} THEN {v}" for k, v in values)
    body = (f"CASE {{x}} {body} "
            "WHEN '''''' THEN '''' "
            "ELSE CASE WHEN substr({x}, 1, 1) = '''' THEN "
            "replace(substr({x}, 2, length({x}) - 2), '''''', '''') "
            "WHEN nullif(regexp_extract({x}, '^[A-Za-z]+$', 0), '') IS NOT NULL THEN "
            + _fail("TD_TIME_FORMAT: unsupported format letters (supported: "
                    + " ".join(FORMAT_LETTERS) + ", and 'quoted text')")
            + " ELSE {x} END END")
    return body


def _routines(scheduled_time: int) -> list[Routine]:
    zone = _case("upper({z})", [(_q(k), _q(v)) for k, v in sorted(ZONE_ABBREVIATIONS.items())],
                 "{z}")
    instant_a = "{u} - td__offset({u} - 86400, {z})"
    instant_b = "{u} - td__offset({u} + 86400, {z})"
    tp = _q(TIME_PATTERN)

    def grp(arg: str, pattern: str, i: int) -> str:
        return f"nullif(regexp_extract({arg}, {pattern}, {i}), '')"

    y, mo, d = (f"CAST({grp('{s}', tp, i)} AS bigint)" for i in (1, 2, 3))
    hh, mi, ss = (f"coalesce(CAST({grp('{s}', tp, i)} AS bigint), 0)" for i in (4, 5, 6))
    days_in_month = (f"CASE WHEN {mo} = 2 THEN CASE WHEN ({y} % 4 = 0 AND {y} % 100 <> 0) "
                     f"OR {y} % 400 = 0 THEN 29 ELSE 28 END WHEN {mo} IN (4, 6, 9, 11) THEN 30 "
                     "ELSE 31 END")
    valid = (f"{mo} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {days_in_month} AND {hh} <= 23 "
             f"AND {mi} <= 59 AND {ss} <= 59")
    op = _q(OFFSET_PATTERN)
    zs = grp("{s}", tp, 7)
    fixed = (f"(CASE WHEN {grp(zs, op, 1)} = '-' THEN -1 ELSE 1 END) * "
             f"(CAST({grp(zs, op, 2)} AS bigint) * 3600 + "
             f"coalesce(CAST({grp(zs, op, 3)} AS bigint), 0) * 60)")
    ip, lp, dp = _q(INTERVAL_PATTERN), _q(LAMBDA_PATTERN), _q(DURATION_PATTERN)
    n = f"CAST({grp('{i}', ip, 1)} AS bigint)"
    unit = grp("{i}", ip, 2)
    off = grp("{i}", ip, 3)
    ref = (f"CASE WHEN {off} IS NULL OR {off} = 'now' THEN td_scheduled_time() "
           f"WHEN {grp(off, lp, 1)} IS NOT NULL THEN td__shift(td__trunc(td_scheduled_time(), "
           f"{grp(off, lp, 2)}, {{z}}), CAST({grp(off, lp, 1)} AS bigint), {grp(off, lp, 2)}, {{z}}) "
           f"ELSE td__strict({off}, {{z}}) END")
    unit_names = [(_q(k), _q(v)) for k, v in DATE_TRUNC_UNITS.items()]
    interval_error = _fail("TD_INTERVAL: an interval is N followed by s, m, h, d, w, M, q or y, "
                           "optionally /now, /N<unit> or /<date>, e.g. '-1d' or '-7d/now'")

    return [
        Routine("td_scheduled_time", (), "bigint", f"CAST({scheduled_time} AS bigint)"),
        Routine("td__zone", _p("z:varchar"), "varchar", zone),
        Routine("td__naive", _p("u:bigint"), "timestamp",
                duckdb="epoch_ms({u} * 1000)",
                trino="CAST(from_unixtime({u}, 'UTC') AS timestamp)", body=""),
        Routine("td__secs", _p("ts:timestamp"), "bigint",
                duckdb="CAST(epoch(CAST({ts} AS timestamp)) AS bigint)",
                trino="date_diff('second', TIMESTAMP '1970-01-01 00:00:00', {ts})", body=""),
        Routine("td__local", _p("t:bigint", "z:varchar"), "bigint",
                duckdb="td__secs(timezone(td__zone({z}), to_timestamp({t})))",
                trino="td__secs(CAST(from_unixtime({t}, td__zone({z})) AS timestamp))", body=""),
        Routine("td__offset", _p("t:bigint", "z:varchar"), "bigint", "td__local({t}, {z}) - {t}"),
        # Local seconds -> instant: the first occurrence, or moved forward over a gap.
        Routine("td__instant", _p("u:bigint", "z:varchar"), "bigint",
                f"CASE WHEN td__local({instant_a}, {{z}}) = {{u}} THEN {instant_a} "
                f"WHEN td__local({instant_b}, {{z}}) = {{u}} THEN {instant_b} ELSE {instant_a} END"),
        Routine("td__days", _p("y:bigint", "m:bigint", "d:bigint"), "bigint",
                duckdb="date_diff('day', DATE '1970-01-01', make_date({y}, {m}, {d}))",
                trino="date_diff('day', DATE '1970-01-01', "
                      "from_iso8601_date(format('%04d-%02d-%02d', {y}, {m}, {d})))", body=""),
        Routine("td__parse_local", _p("s:varchar"), "bigint",
                f"CASE WHEN {y} IS NULL THEN NULL WHEN NOT ({valid}) THEN NULL "
                f"ELSE td__days({y}, {mo}, {d}) * 86400 + {hh} * 3600 + {mi} * 60 + {ss} END"),
        Routine("td__parse", _p("s:varchar", "z:varchar"), "bigint",
                f"CASE WHEN td__parse_local({{s}}) IS NULL THEN NULL "
                f"WHEN {zs} IS NULL THEN td__instant(td__parse_local({{s}}), {{z}}) "
                f"WHEN {grp(zs, op, 1)} IS NOT NULL THEN td__parse_local({{s}}) - {fixed} "
                f"ELSE td__instant(td__parse_local({{s}}), {zs}) END"),
        Routine("td__strict", _p("s:varchar", "z:varchar"), "bigint",
                "CASE WHEN {s} IS NULL THEN NULL WHEN td__parse({s}, {z}) IS NULL THEN "
                + _fail("TD time functions: cannot read a time string "
                        "(expected yyyy-MM-dd[ HH:mm:ss][ zone])")
                + " ELSE td__parse({s}, {z}) END"),
        Routine("td__add_naive", _p("ts:timestamp", "n:bigint", "unit:varchar"), "timestamp",
                duckdb="CASE {unit} WHEN 'd' THEN CAST({ts} AS timestamp) + to_days(CAST({n} AS integer)) "
                       "WHEN 'w' THEN CAST({ts} AS timestamp) + to_days(CAST(7 * {n} AS integer)) "
                       "WHEN 'M' THEN CAST({ts} AS timestamp) + to_months(CAST({n} AS integer)) "
                       "WHEN 'q' THEN CAST({ts} AS timestamp) + to_months(CAST(3 * {n} AS integer)) "
                       "WHEN 'y' THEN CAST({ts} AS timestamp) + to_years(CAST({n} AS integer)) END",
                trino="CASE {unit} WHEN 'd' THEN date_add('day', {n}, {ts}) "
                      "WHEN 'w' THEN date_add('day', 7 * {n}, {ts}) "
                      "WHEN 'M' THEN date_add('month', {n}, {ts}) "
                      "WHEN 'q' THEN date_add('month', 3 * {n}, {ts}) "
                      "WHEN 'y' THEN date_add('year', {n}, {ts}) END", body=""),
        Routine("td__trunc", _p("t:bigint", "unit:varchar", "z:varchar"), "bigint",
                f"CASE WHEN {{unit}} IN ('s', 'm', 'h') THEN {{t}} - ((td__local({{t}}, {{z}}) % "
                f"({_SECS})) + ({_SECS})) % ({_SECS}) "
                "ELSE td__instant(td__secs(date_trunc("
                + _case("{unit}", [(_q(k), _q(v)) for v, k in DATE_TRUNC_UNITS.items()
                                   if k not in "smh"], "NULL")
                + ", td__naive(td__local({t}, {z})))), {z}) END"),
        Routine("td__shift", _p("t:bigint", "n:bigint", "unit:varchar", "z:varchar"), "bigint",
                f"CASE WHEN {{unit}} IN ('s', 'm', 'h') THEN {{t}} + {{n}} * ({_SECS}) "
                "ELSE td__instant(td__secs(td__add_naive(td__naive(td__local({t}, {z})), {n}, "
                "{unit})), {z}) END"),
        Routine("td__format_token", _p("x:varchar", "u:bigint", "o:bigint"), "varchar",
                _format_token_body()),
        # -------------------------------------------------------------- the public functions
        Routine("td_time_parse", _p("s:varchar", "z:varchar='UTC'"), "bigint", "td__parse({s}, {z})"),
        Routine("td_time_format", _p("t:bigint", "f:varchar", "z:varchar='UTC'"), "varchar",
                body="",
                duckdb="CASE WHEN {t} IS NULL OR {f} IS NULL THEN NULL ELSE array_to_string("
                       f"list_transform(regexp_extract_all({{f}}, {_q(FORMAT_TOKENS)}), "
                       "x -> td__format_token(x, td__local({t}, {z}), td__offset({t}, {z}))), '') END",
                trino="CASE WHEN {t} IS NULL OR {f} IS NULL THEN NULL ELSE array_join("
                      f"transform(regexp_extract_all({{f}}, {_q(FORMAT_TOKENS)}), "
                      "x -> td__format_token(x, td__local({t}, {z}), td__offset({t}, {z}))), '') END"),
        Routine("td__duration", _p("d:varchar"), "bigint",
                f"CASE WHEN {{d}} IS NULL THEN NULL WHEN {grp('{d}', dp, 1)} IS NULL THEN "
                + _fail("TD_TIME_ADD: a duration is N followed by s, m, h, d or w, e.g. '-1d'")
                + f" ELSE CAST({grp('{d}', dp, 1)} AS bigint) * "
                + _SECS.replace("{unit}", grp("{d}", dp, 2)) + " END"),
        Routine("td__bound", _p("x:any", "z:varchar"), "bigint", "{x:secs}",
                duckdb="CASE WHEN typeof({x}) = 'VARCHAR' THEN td__strict(CAST({x} AS varchar), {z}) "
                       "ELSE TRY_CAST({x} AS bigint) END"),
        # TD_INTERVAL's range: the reference, truncated to the unit (the base), and the edge N
        # units from it.
        Routine("td__iref", _p("i:varchar", "z:varchar"), "bigint", ref),
        Routine("td__ibase", _p("i:varchar", "z:varchar"), "bigint",
                f"td__trunc(td__iref({{i}}, {{z}}), {unit}, {{z}})"),
        Routine("td__iedge", _p("i:varchar", "z:varchar"), "bigint",
                f"td__shift(td__ibase({{i}}, {{z}}), {n}, {unit}, {{z}})"),
        Routine("td__istart", _p("i:varchar", "z:varchar"), "bigint",
                f"CASE WHEN {n} IS NULL THEN {interval_error} WHEN {n} <= 0 THEN "
                f"td__iedge({{i}}, {{z}}) WHEN {off} = 'now' THEN td_scheduled_time() "
                f"ELSE td__ibase({{i}}, {{z}}) END"),
        Routine("td__iend", _p("i:varchar", "z:varchar"), "bigint",
                f"CASE WHEN {n} IS NULL THEN {interval_error} WHEN {n} > 0 THEN "
                f"td__iedge({{i}}, {{z}}) WHEN {off} = 'now' THEN td_scheduled_time() "
                f"ELSE td__ibase({{i}}, {{z}}) END"),
        # -------------------------------------------------------------- the public functions
        Routine("td_time_add", _p("t:any", "d:varchar", "z:varchar='UTC'"), "bigint",
                "{t:secs} + td__duration({d})"),
        # The time is compared with plain bounds, so that engines can prune files by it.
        Routine("td_time_range", _p("t:bigint", "s:any", "e:any=NULL", "z:varchar='UTC'"), "boolean",
                f"{{t}} >= coalesce({{s:secs}}, {MIN_TIME}) AND {{t}} < coalesce({{e:secs}}, {MAX_TIME})"),
        Routine("td_interval", _p("t:bigint", "i:varchar", "z:varchar='UTC'"), "boolean",
                "{t} >= td__istart({i}, {z}) AND {t} < td__iend({i}, {z})"),
        Routine("td_date_trunc", _p("unit:varchar", "t:bigint", "z:varchar='UTC'"), "bigint",
                f"CASE WHEN {{t}} IS NULL THEN NULL WHEN {_case('lower({unit})', unit_names, 'NULL')} "
                "IS NULL THEN "
                + _fail("TD_DATE_TRUNC: the unit is one of " + ", ".join(DATE_TRUNC_UNITS))
                + f" ELSE td__trunc({{t}}, {_case('lower({unit})', unit_names, 'NULL')}, {{z}}) END"),
    ]


# --------------------------------------------------------------------------- rendering

class _Arg:
    """A parameter as it appears in a rendered body: `{x}` is its text; `{x:secs}` is its value
    as UNIX seconds (a time string is read in the routine's time zone)."""

    def __init__(self, text: str, kind: str, zone: str, dialect: str) -> None:
        self.text, self.kind, self.zone, self.dialect = text, kind, zone, dialect

    def __format__(self, spec: str) -> str:
        if spec != "secs":
            return self.text
        if self.kind == "unknown":
            return "CAST(NULL AS bigint)"
        if self.kind == "varchar":
            return f"td__strict({self.text}, {self.zone})"
        if self.kind == "bigint":
            return self.text
        return f"td__bound({self.text}, {self.zone})"  # DuckDB: one macro for every type


def _render(routine: Routine, dialect: str, present: Sequence[Param], kinds: Sequence[str],
            names: dict[str, str] | None = None) -> str:
    template = getattr(routine, dialect) or routine.body
    names = names or {}
    zone = names.get("z", "z") if any(p.name == "z" for p in present) else None
    zone_text = zone or next((p.default for p in routine.params if p.name == "z"), None) or "'UTC'"
    args = {}
    for param in routine.params:
        if param in present:
            kind = kinds[present.index(param)]
            args[param.name] = _Arg(names.get(param.name, param.name), kind, zone_text, dialect)
        else:
            kind = "unknown" if param.type == ANY else param.type
            args[param.name] = _Arg(str(param.default), kind, zone_text, dialect)
    text = template.format(**args)
    return text.replace(FAIL, "error" if dialect == "duckdb" else "fail")


def _arities(routine: Routine) -> list[list[Param]]:
    required = [p for p in routine.params if p.default is None]
    optional = [p for p in routine.params if p.default is not None]
    return [required + optional[:k] for k in range(len(optional) + 1)]


def _duckdb_overload(routine: Routine, present: Sequence[Param]) -> str:
    """One arity of a macro. A macro's arguments are substituted as expressions wherever the
    body names them, so an argument named twice would be copied twice, and nested calls copied
    exponentially: an argument named more than once is bound once, by a one-element lambda."""
    kinds = [p.type for p in present]
    names = {p.name: f"p_{p.name}" for p in present}
    body = _render(routine, "duckdb", present, kinds, names)
    repeated = [p.name for p in present if len(re.findall(rf"\bp_{p.name}\b", body)) > 1]
    if repeated:
        body = _render(routine, "duckdb", present, kinds,
                       {**names, **{n: f"l_{n}" for n in repeated}})
        for name in reversed(repeated):
            body = f"list_transform([p_{name}], l_{name} -> {body})[1]"
    return f"({', '.join(names.values())}) AS {body}"


def duckdb_macros(scheduled_time: int) -> list[str]:
    """CREATE statements for the functions, as temporary macros on a DuckDB connection."""
    return [f"CREATE OR REPLACE TEMP MACRO {routine.name}"
            + ", ".join(_duckdb_overload(routine, present) for present in _arities(routine))
            for routine in _routines(scheduled_time)]


# Trino resolves a NULL literal to an `unknown` parameter only when that overload is declared
# before the typed ones, so the kinds go in this order.
_TRINO_KINDS = ("unknown", "varchar", "bigint")


def _trino_overloads(routine: Routine) -> list[str]:
    out = []
    for present in _arities(routine):
        choices: list[Sequence[str]] = [
            _TRINO_KINDS if p.type == ANY else (p.type,) for p in present]
        for kinds in _product(choices):
            params = ", ".join(f"{p.name} {k}" for p, k in zip(present, kinds))
            body = _render(routine, "trino", present, kinds)
            out.append(f"FUNCTION {routine.name}({params}) RETURNS {routine.returns} "
                       f"RETURN ({body})")
    return out


def _product(choices: Sequence[Sequence[str]]) -> list[list[str]]:
    result: list[list[str]] = [[]]
    for options in choices:
        result = [r + [o] for r in result for o in options]
    return result


_CALL = re.compile(r"\b(td_{1,2}[a-z_]+)\s*\(", re.IGNORECASE)


def _calls(text: str) -> set[str]:
    return {m.group(1).lower() for m in _CALL.finditer(text)}


def trino_routines(sql: str, scheduled_time: int) -> list[str]:
    """The inline routines `sql` calls, with everything they call, in declaration order."""
    rendered = {r.name: _trino_overloads(r) for r in _routines(scheduled_time)}
    wanted: set[str] = set()
    pending = list(_calls(sql))
    while pending:
        name = pending.pop()
        if name in wanted or name not in rendered:
            continue
        wanted.add(name)
        for overload in rendered[name]:
            pending.extend(_calls(overload.split(" RETURN (", 1)[1]))
    return [o for name, overloads in rendered.items() if name in wanted for o in overloads]


_WITH_FUNCTION = re.compile(r"^\s*WITH\s+FUNCTION\b", re.IGNORECASE)


def trino_sql(sql: str, scheduled_time: int) -> str:
    """`sql` with the TD functions it calls declared in front of it as inline routines."""
    routines = trino_routines(sql, scheduled_time)
    if not routines:
        return sql
    declarations = ",\n".join(routines)
    m = _WITH_FUNCTION.match(sql)
    if m:  # the query declares routines of its own: one WITH for all of them
        return f"WITH {declarations},\n{sql[m.end() - len('FUNCTION'):]}"
    return f"WITH {declarations}\n{sql}"


def public_names() -> list[str]:
    return [r.name.upper() for r in _routines(0) if r.public]
