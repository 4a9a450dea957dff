"""Treasure Data's time functions on DuckDB and on the real Trino: the documented examples and a
table of cases give the expected values on both engines, generated inputs give identical values
on both (and DuckDB's agree with Python's zoneinfo), and `--scheduled-time` pins the time of an
export. In CI (CI=true) a missing Trino fails the Trino tests; elsewhere they skip."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import SourceError
from connector.source import Source
from connector.source.tdtime import FORMAT_LETTERS, ZONE_ABBREVIATIONS, public_names, trino_sql
from helpers import now_s, result_config, run_cli, stored_keys, write_csv

NOW = 1534209825  # 2018-08-14 01:23:45 UTC, a Tuesday: the time of Treasure Data's examples
DUCKDB = "duckdb:///:memory:"


def u(text: str) -> int:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


def select(url: str, expressions: list[str], scheduled_time: int = NOW,
           source: str | None = None) -> list[Any]:
    """One row: each expression, evaluated by the engine through the exporter's Source."""
    sql = "SELECT " + ", ".join(f"{e} AS c{i}" for i, e in enumerate(expressions))
    if source:
        sql += f" FROM {source}"
    return rows(url, sql, scheduled_time)[0]


def rows(url: str, sql: str, scheduled_time: int = NOW) -> list[list[Any]]:
    src = Source(url, scheduled_time=scheduled_time)
    try:
        with src.stream(sql) as stream:
            return [list(r) for part in stream.partitions for r in part]
    finally:
        src.dispose()


# --------------------------------------------------------------------------- the table of cases

# TD_INTERVAL's documented examples at 2018-08-14 01:23:45 UTC, as [start, end). Two of the
# documented ranges are misprinted there and are corrected here: '-1w' is printed starting on
# 2018-08-05 (an 8-day week) and '-15m' starting at 00:08 (75 minutes).
INTERVALS = [
    ("-7d", "UTC", "2018-08-07T00:00:00", "2018-08-14T00:00:00"),
    ("-1w", "UTC", "2018-08-06T00:00:00", "2018-08-13T00:00:00"),
    ("1d", "UTC", "2018-08-14T00:00:00", "2018-08-15T00:00:00"),
    ("-1M", "UTC", "2018-07-01T00:00:00", "2018-08-01T00:00:00"),
    ("1M", "UTC", "2018-08-01T00:00:00", "2018-09-01T00:00:00"),
    ("1y", "UTC", "2018-01-01T00:00:00", "2019-01-01T00:00:00"),
    ("-15m", "UTC", "2018-08-14T01:08:00", "2018-08-14T01:23:00"),
    ("-30s", "UTC", "2018-08-14T01:23:15", "2018-08-14T01:23:45"),
    ("-1h", "UTC", "2018-08-14T00:00:00", "2018-08-14T01:00:00"),
    ("-1h/now", "UTC", "2018-08-14T00:00:00", "2018-08-14T01:23:45"),
    ("-1h/0d", "UTC", "2018-08-13T23:00:00", "2018-08-14T00:00:00"),
    ("-7d/2015-12-25", "UTC", "2015-12-18T00:00:00", "2015-12-25T00:00:00"),
    ("-10d/-1M", "UTC", "2018-06-21T00:00:00", "2018-07-01T00:00:00"),
    ("-7d", "JST", "2018-08-07T00:00:00+09:00", "2018-08-14T00:00:00+09:00"),
    # more
    ("-1d/now", "UTC", "2018-08-13T00:00:00", "2018-08-14T01:23:45"),
    ("0d/now", "UTC", "2018-08-14T00:00:00", "2018-08-14T01:23:45"),
    ("0M/now", "Asia/Tokyo", "2018-08-01T00:00:00+09:00", "2018-08-14T01:23:45"),
    ("1w", "UTC", "2018-08-13T00:00:00", "2018-08-20T00:00:00"),
    ("-1q", "UTC", "2018-04-01T00:00:00", "2018-07-01T00:00:00"),
    ("-2M", "PST", "2018-06-01T00:00:00-07:00", "2018-08-01T00:00:00-07:00"),
    ("-1d/2026-03-09", "America/Los_Angeles", "2026-03-08T00:00:00-08:00", "2026-03-09T00:00:00-07:00"),
    ("1d/2026-11-01", "America/Los_Angeles", "2026-11-01T00:00:00-07:00", "2026-11-02T00:00:00-08:00"),
]


def interval_checks() -> list[tuple[str, bool]]:
    """Each range's edges: start is in, start - 1 is not, end - 1 is in, end is not."""
    out = []
    for interval, tz, start, end in INTERVALS:
        a, b = u(start), u(end)
        for t, inside in ((a, True), (a - 1, False), (b - 1, True), (b, False)):
            out.append((f"td_interval({t}, '{interval}', '{tz}')", inside))
    return out


CASES: list[tuple[str, Any]] = [
    ("td_scheduled_time()", NOW),
    # TD_TIME_RANGE: start <= time < end; NULL is open; bounds as seconds or strings
    (f"td_time_range({NOW}, '2018-08-14', '2018-08-15')", True),
    (f"td_time_range({NOW}, '2018-08-14', '2018-08-15', 'JST')", True),
    (f"td_time_range({NOW}, '2018-08-15', NULL, 'JST')", False),
    (f"td_time_range({NOW}, NULL, '2018-08-14 10:00:00', 'JST')", False),
    (f"td_time_range({NOW}, '2018-08-14 10:00:00', NULL, 'JST')", True),
    (f"td_time_range({NOW}, NULL, NULL)", True),
    (f"td_time_range({NOW}, '2018-08-14 PDT')", False),
    (f"td_time_range({NOW}, '2018-08-13 PDT')", True),
    (f"td_time_range({NOW}, {NOW}, {NOW + 1})", True),
    (f"td_time_range({NOW}, {NOW - 1}, {NOW})", False),
    (f"td_time_range({NOW}, '2018-08-14', {NOW})", False),
    (f"td_time_range({NOW}, {NOW}, '2018-08-15')", True),
    (f"td_time_range({NOW}, td_time_add(td_scheduled_time(), '-1d'), td_scheduled_time())", False),
    (f"td_time_range({NOW - 1}, td_time_add(td_scheduled_time(), '-1d'), td_scheduled_time())", True),
    ("td_time_range(CAST(NULL AS BIGINT), NULL, NULL)", None),
    # TD_TIME_ADD: fixed durations
    (f"td_time_add({NOW}, '-1d')", NOW - 86400),
    (f"td_time_add({NOW}, '1h')", NOW + 3600),
    (f"td_time_add({NOW}, '30m')", NOW + 1800),
    (f"td_time_add({NOW}, '+90s')", NOW + 90),
    (f"td_time_add({NOW}, '-2w')", NOW - 14 * 86400),
    ("td_time_add('2013-01-01', '1d', 'JST')", u("2013-01-02T00:00:00+09:00")),
    ("td_time_add('2013-01-01 07:00:00', '1d')", u("2013-01-02T07:00:00")),
    (f"td_time_add({NOW}, NULL)", None),
    # TD_TIME_FORMAT
    (f"td_time_format({NOW}, 'yyyy-MM-dd HH:mm:ss')", "2018-08-14 01:23:45"),
    (f"td_time_format({NOW}, 'yyyy-MM-dd HH:mm:ss', 'JST')", "2018-08-14 10:23:45"),
    (f"td_time_format({NOW}, 'yyyy-MM-dd', 'PST')", "2018-08-13"),
    (f"td_time_format({NOW}, 'HH:mm:ssZ', 'PDT')", "18:23:45-0700"),
    (f"td_time_format({NOW}, 'EEE, d MMM yyyy hh:mm a Z')", "Tue, 14 Aug 2018 01:23 AM +0000"),
    (f"td_time_format({NOW}, 'EEEE MMMM', 'Asia/Tokyo')", "Tuesday August"),
    (f"td_time_format({NOW}, 'yyyy-MM-dd''T''HH:mm:ssZZ', 'JST')", "2018-08-14T10:23:45+09:00"),
    (f"td_time_format({NOW}, 'yy/M/d H:m:s.SSS')", "18/8/14 1:23:45.000"),
    (f"td_time_format({NOW}, 'HH ''o''''clock''', 'Asia/Kolkata')", "06 o'clock"),
    (f"td_time_format({NOW}, 'h a', 'America/New_York')", "9 PM"),
    ("td_time_format(CAST(NULL AS BIGINT), 'yyyy')", None),
    # TD_TIME_PARSE
    ("td_time_parse('2018-08-14 01:23:45')", NOW),
    ("td_time_parse('2018-08-14T10:23:45+09:00')", NOW),
    ("td_time_parse('2018-08-14 10:23:45', 'JST')", NOW),
    ("td_time_parse('2018-08-14 10:23:45 JST')", NOW),
    ("td_time_parse('2018-08-14 10:23:45 Asia/Tokyo')", NOW),
    ("td_time_parse('2018-08-14 01:23:45Z')", NOW),
    ("td_time_parse('2018-08-14 10:23:45 +0900')", NOW),
    ("td_time_parse('2018-08-14 10:23', 'JST')", NOW - 45),
    ("td_time_parse('2018-08-14')", u("2018-08-14T00:00:00")),
    ("td_time_parse('2016-02-29', 'PST')", u("2016-02-29T00:00:00-08:00")),
    ("td_time_parse('2018-02-29')", None),
    ("td_time_parse('2018-13-01')", None),
    ("td_time_parse('2018-08-14 24:00:00')", None),
    ("td_time_parse('yesterday')", None),
    ("td_time_parse(NULL)", None),
    # local times the clock skips move forward by the gap; repeated ones are the first
    ("td_time_parse('2026-03-08 02:30:00', 'America/Los_Angeles')", u("2026-03-08T03:30:00-07:00")),
    ("td_time_parse('2026-11-01 01:30:00', 'America/Los_Angeles')", u("2026-11-01T01:30:00-07:00")),
    # TD_DATE_TRUNC
    (f"td_date_trunc('day', {NOW})", u("2018-08-14T00:00:00")),
    (f"td_date_trunc('week', {NOW})", u("2018-08-13T00:00:00")),
    (f"td_date_trunc('MONTH', {NOW}, 'JST')", u("2018-08-01T00:00:00+09:00")),
    (f"td_date_trunc('hour', {NOW}, 'Asia/Kolkata')", u("2018-08-14T06:00:00+05:30")),
    (f"td_date_trunc('quarter', {NOW})", u("2018-07-01T00:00:00")),
    (f"td_date_trunc('year', {NOW}, 'EST')", u("2018-01-01T00:00:00-05:00")),
    (f"td_date_trunc('minute', {NOW})", NOW - 45),
    *interval_checks(),
]


@pytest.fixture(scope="module")
def duckdb_values() -> list[Any]:
    return select(DUCKDB, [c for c, _ in CASES])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c for c, _ in CASES])
def test_duckdb_gives_treasure_datas_values(duckdb_values, index):
    assert duckdb_values[index] == CASES[index][1]


@pytest.mark.trino
def test_trino_gives_the_same_values(trino, duckdb_values):
    got = select(trino, [c for c, _ in CASES])
    wrong = [(c, v, w) for (c, w), v in zip(CASES, got) if v != w]
    assert wrong == []
    assert got == duckdb_values


ERRORS = [
    (f"td_time_add({NOW}, '1y')", "TD_TIME_ADD: a duration"),
    (f"td_interval({NOW}, 'yesterday')", "TD_INTERVAL: an interval"),
    (f"td_time_format({NOW}, 'G yyyy')", "unsupported format letters"),
    (f"td_time_range({NOW}, 'not a time', NULL)", "cannot read a time string"),
    (f"td_date_trunc('fortnight', {NOW})", "TD_DATE_TRUNC: the unit"),
]


@pytest.mark.parametrize("expression,message", ERRORS)
def test_bad_arguments_fail_with_a_message_on_duckdb(expression, message):
    with pytest.raises(SourceError) as err:
        select(DUCKDB, [expression])
    assert message in str(err.value)


@pytest.mark.trino
@pytest.mark.parametrize("expression,message", ERRORS)
def test_bad_arguments_fail_with_a_message_on_trino(trino, expression, message):
    with pytest.raises(SourceError) as err:
        select(trino, [expression])
    assert message in str(err.value)


# --------------------------------------------------------------------------- generated inputs

ZONES = ["UTC", "JST", "PST", "PDT", "EST", "CET", "America/Los_Angeles", "Europe/Berlin",
         "Asia/Kolkata", "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Tokyo"]
IANA = [z for z in ZONES if "/" in z or z == "UTC"]
FORMATS = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssZZ", "EEE MMM d yyyy h:mm a Z",
           "yy/M/d H:m:s", "EEEE MMMM dd HH:mm"]
UNITS = ["second", "minute", "hour", "day", "week", "month", "quarter", "year"]

_row = st.tuples(
    st.integers(946_684_800, 2_145_916_800),  # 2000..2038
    st.sampled_from(ZONES), st.sampled_from(FORMATS), st.sampled_from(UNITS),
    st.integers(-3, 3), st.sampled_from("smhdwMqy"),
    st.sampled_from(["", "/now", "/-1M", "/0d", "/2026-03-09", "/-2w"]),
    st.integers(-40 * 86400, 40 * 86400), st.sampled_from(["-1d", "2h", "-90m", "1w", "45s"]))


def generated_sql(cases: list[tuple[Any, ...]]) -> str:
    values = ", ".join(
        f"(CAST({t} AS BIGINT), '{z}', '{f.replace(chr(39), chr(39) * 2)}', '{unit}', "
        f"'{n}{letter}{offset}', CAST({NOW + delta} AS BIGINT), '{duration}')"
        for t, z, f, unit, n, letter, offset, delta, duration in cases)
    return f"""
        SELECT t, z, td_time_format(t, f, z), td_date_trunc(unit, t, z), td_time_add(t, d, z),
               td_time_parse(td_time_format(t, 'yyyy-MM-dd HH:mm:ss', z), z),
               td_interval(near, i, z), td_interval(t, i, z),
               td_time_range(t, td_time_add(near, '-30d'), near, z)
        FROM (VALUES {values}) AS v(t, z, f, unit, i, near, d)
        ORDER BY t, z, f, unit, i, near, d"""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(st.tuples(st.integers(946_684_800, 2_145_916_800), st.sampled_from(IANA)),
                      min_size=1, max_size=60))
def test_duckdb_agrees_with_python_zoneinfo_on_generated_times(cases):
    """Wall time, reading it back (the first instant with that wall time), start of the day."""
    values = ", ".join(f"(CAST({t} AS BIGINT), '{z}')" for t, z in cases)
    got = rows(DUCKDB, f"""
        SELECT t, z, td_time_format(t, 'yyyy-MM-dd HH:mm:ss', z),
               td_time_parse(td_time_format(t, 'yyyy-MM-dd HH:mm:ss', z), z),
               td_date_trunc('day', t, z)
        FROM (VALUES {values}) AS v(t, z)""")
    for t, z, wall, back, day in got:
        tz = ZoneInfo(z)
        local = dt.datetime.fromtimestamp(t, tz)
        assert wall == local.strftime("%Y-%m-%d %H:%M:%S")
        assert back == int(local.replace(tzinfo=None).replace(tzinfo=tz, fold=0).timestamp())
        midnight = dt.datetime.combine(local.date(), dt.time()).replace(tzinfo=tz, fold=0)
        assert day == int(midnight.timestamp())


@pytest.mark.trino
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(_row, min_size=20, max_size=80))
def test_trino_and_duckdb_agree_on_generated_inputs(trino, cases):
    sql = generated_sql(cases)
    assert rows(trino, sql) == rows(DUCKDB, sql)


# --------------------------------------------------------------------------- on the engines

def test_trino_gets_only_the_routines_the_query_calls():
    plain = "SELECT 1 AS td_something FROM t"
    assert trino_sql(plain, NOW) == plain
    sql = trino_sql("SELECT td_scheduled_time()", NOW)
    assert sql.startswith("WITH FUNCTION td_scheduled_time()") and "td_interval" not in sql
    # a query with routines of its own gets one WITH for all
    own = "WITH FUNCTION mine() RETURNS bigint RETURN 1 SELECT mine(), td_scheduled_time()"
    merged = trino_sql(own, NOW)
    assert merged.count("WITH ") == 1 and "FUNCTION mine()" in merged


@pytest.mark.trino
def test_a_query_with_its_own_routines_and_a_with_clause_runs_on_trino(trino):
    sql = ("WITH FUNCTION twice(x bigint) RETURNS bigint RETURN x * 2 "
           "WITH days AS (SELECT td_time_add(td_scheduled_time(), '-1d') AS d) "
           "SELECT twice(d) FROM days")
    assert rows(trino, sql) == [[2 * (NOW - 86400)]]


def test_a_read_only_duckdb_file_gets_the_functions(tmp_path):
    import duckdb

    path = tmp_path / "db.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE ev AS SELECT * FROM (VALUES ({NOW}), ({NOW - 86400})) t(ts)")
    con.close()
    url = f"duckdb:///{path}"
    got = rows(url, "SELECT count(*) FROM ev WHERE td_interval(ts, '-1d')")
    assert got == [[1]]


def test_the_export_command_pins_the_scheduled_time(tmp_path, sandbox):
    """`--scheduled-time` sets TD_SCHEDULED_TIME() and the session variables of an export."""
    stamp = now_s() - 60
    start = u("2026-03-01T00:00:00+09:00")
    csv = write_csv(tmp_path / "ev.csv", [
        {"deduplication_key": f"k{i}", "event_type": "conversion", "event_name": "Purchase",
         "source_type": "web", "event_timestamp": stamp, "email": f"u{i}@example.com",
         "ts": start - 86400 + i * 7200}
        for i in range(24)])  # two Tokyo days of rows, one every 2 hours
    sql = (f"SELECT deduplication_key, event_type, event_name, source_type, event_timestamp, "
           f"email FROM '{csv}' WHERE TD_INTERVAL(ts, '-1d', 'JST') "
           f"AND '${{session_date}}' = '2026-03-01'")
    run = run_cli(tmp_path, sql, result_config(sandbox),
                  "--scheduled-time", "2026-03-01T09:30:00+09:00")
    assert run.returncode == 0, run.stderr
    assert run.report["rows_read"] == 12  # 2026-02-28 in Tokyo
    assert sorted(stored_keys(sandbox)) == sorted(f"k{i}" for i in range(12))
    bad = run_cli(tmp_path, "SELECT 1", result_config(sandbox), "--scheduled-time", "tomorrow")
    assert bad.returncode == 2 and "--scheduled-time" in bad.stderr


def test_session_variables_render_in_the_query():
    from connector.session import SessionContext, parse_scheduled_time, render

    session = parse_scheduled_time("2016-01-30T00:00:00-08:00")
    variables = session.variables()
    assert variables == {
        "timezone": "-08:00", "session_time": "2016-01-30T00:00:00-08:00",
        "session_date": "2016-01-30", "session_date_compact": "20160130",
        "session_local_time": "2016-01-30 00:00:00", "session_tz_offset": "-0800",
        "session_unixtime": "1454140800"}
    tokyo = SessionContext(dt.datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Tokyo")), "Asia/Tokyo")
    assert render("SELECT '${session_date}', '${ENV_NAME}', ${ session_unixtime }",
                  tokyo.variables()) == "SELECT '2026-03-01', '${ENV_NAME}', 1772290800"
    assert json.dumps(variables)  # plain strings


def test_the_documentation_lists_every_function_letter_and_abbreviation():
    page = (Path(__file__).resolve().parents[1] / "docs" / "schedules.md").read_text()
    for name in public_names():
        assert f"`{name}(" in page, name
    letters = page.split("Java's format letters: `", 1)[1].split("`", 1)[0].split()
    assert sorted(letters) == sorted(FORMAT_LETTERS)
    assert "ZONE_ABBREVIATIONS" in page and "JST" in ZONE_ABBREVIATIONS
