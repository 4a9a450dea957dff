"""The events DuckDB builds (encoders/pushdown.py) must be byte-identical to the reference
encoder's (encoders/reference.py).

Every query runs twice on a real DuckDB: once through the standard path (SQLAlchemy rows, then
`encode_reference` per row) and once compiled by `compile_pushdown` (Arrow batches, `encode_all`).
For every row both must give the same bytes, or the same invalid column, rule and reason. The
data: the benchmark's generator (~2% invalid rows of six kinds), the fast-path edge cases, typed
columns, and cases aimed at the SQL: JSON escaping of every control character, multi-byte text
at length limits, IPv6 forms, padded and upper-case digests, timestamps as text, HUGEINT and
TIMESTAMP, custom_data.
"""
from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.datagen import generate, query_sql
from helpers import (EDGE_SQL, N_GENERATED, fetch_rows, line_binding, line_columns, outcome,
                     result_config, run_cli, write_csv)

from connector.outputs.line_conversion import rules
from connector.outputs.line_conversion.fields import FIELDS
from connector.outputs.line_conversion.encoders.pushdown import _lower_escapes, compile_pushdown
from connector.outputs.line_conversion.encoders import LineEventEncoder
from connector.source import Source

NOW = 1_790_000_000

# Aimed at the SQL side; each row is one case. $NOW is replaced by the test's clock.
SQL_EDGE = r"""
WITH c AS (
  SELECT i, chr((i % 32)::INTEGER) AS ctl FROM range(80) t(i)
)
SELECT
  'k' || i AS deduplication_key, CASE WHEN i % 2 = 0 THEN 'conversion' ELSE 'page_view' END AS event_type,
  CASE i WHEN 40 THEN 'Purchase' WHEN 41 THEN 'Pur chase' ELSE NULL END AS event_name,
  'web' AS source_type,
  CASE i WHEN 42 THEN $NOW::BIGINT - 90 * 86400 WHEN 43 THEN $NOW::BIGINT - 90 * 86400 - 1
         WHEN 44 THEN $NOW::BIGINT + 86400 WHEN 45 THEN $NOW::BIGINT + 86401 WHEN 46 THEN 0
         ELSE $NOW::BIGINT - i END AS event_timestamp,
  CASE i WHEN 47 THEN '  Taro@Example.COM  ' WHEN 48 THEN chr(9) || 'a@b.jp'
         WHEN 49 THEN '  ' || upper(sha256('p')) || '  ' WHEN 50 THEN repeat('a', 63)
         WHEN 51 THEN repeat('A', 64) || 'x' WHEN 52 THEN 'a@b' WHEN 53 THEN '@b.jp' WHEN 54 THEN 'a@'
         WHEN 55 THEN 'ä@b.jp' WHEN 56 THEN '   ' WHEN 57 THEN 'o''brien+tag@x-y.example'
         ELSE 'user' || i || '@example.com' END AS email,
  CASE i WHEN 58 THEN ' ' || upper(sha256('q')) WHEN 59 THEN '+81 90 1234 5678'
         WHEN 60 THEN '+819012345678' WHEN 61 THEN '+810312345678' WHEN 62 THEN 'call me'
         WHEN 63 THEN '' ELSE NULL END AS phone,
  NULL AS line_uid, NULL AS click_id, NULL AS browser_id, NULL AS ifa,
  CASE i WHEN 64 THEN 'undefined' ELSE NULL END AS external_id,
  CASE i WHEN 65 THEN 'https://' WHEN 66 THEN 'https://x' WHEN 67 THEN 'HTTPS://x'
         WHEN 68 THEN 'https://' || repeat('é', 2040) WHEN 69 THEN 'https://' || repeat('é', 2041)
         WHEN 70 THEN 'https://' || chr(10) || 'x' WHEN 71 THEN 'https://x' || chr(10)
         ELSE 'https://shop.example/' || i END AS url,
  CASE WHEN i < 32 THEN 'ref' || ctl || 'x' ELSE NULL END AS referrer,
  CASE WHEN i < 32 THEN 't"' || ctl || '\' || ctl ELSE
       CASE i WHEN 72 THEN 'literal \u001F and \\u00' WHEN 73 THEN '😀 スニーカー "quoted" \ back'
              WHEN 74 THEN repeat('あ', 1024) WHEN 75 THEN repeat('あ', 1025) ELSE NULL END END AS title,
  CASE WHEN i % 3 = 0 THEN 'Mozilla/5.0 ' || chr(127) ELSE NULL END AS user_agent,
  CASE WHEN i < 32 THEN NULL ELSE ['::', '1::', '::1', '::ffff:1.2.3.4', 'fe80::1%eth0', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9',
   '01.2.3.4', '255.255.255.255', '256.1.1.1', 'ABCD::EF', '2001:DB8::', '1::2::3', '1.2.3.4.',
   ' 1.2.3.4', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', 'g::1', '', NULL][1 + i % 20] END AS ip_address,
  CASE i WHEN 76 THEN '{"value": 1.5, "currency": "JPY"}' WHEN 77 THEN '{}'
         WHEN 78 THEN '{"value": 1e3, "item_ids": ["a\u0001", "b"], "category": null}'
         WHEN 79 THEN 'not json' WHEN 10 THEN '{"value": 1200}' WHEN 11 THEN '{"nope": 1}'
         WHEN 12 THEN '' ELSE NULL END AS custom_data
FROM c ORDER BY i
"""

# Column types the plan converts itself.
TYPES_SQL = r"""
SELECT i::BIGINT AS deduplication_key, 'page_view' AS event_type, 'web' AS source_type,
  CASE i % 6 WHEN 0 THEN ($NOW - i)::VARCHAR WHEN 1 THEN ' ' || ($NOW - i)::VARCHAR
             WHEN 2 THEN '00' || ($NOW - i)::VARCHAR WHEN 3 THEN 'x' WHEN 4 THEN '-5'
             ELSE '' END AS event_timestamp,
  (i * 1000003)::HUGEINT AS external_id, 'a' || i || '@x.jp' AS "EMAIL", 'ignored' AS extra
FROM range(30) t(i) ORDER BY i
"""

TIMESTAMP_SQL = r"""
SELECT 'k' || i AS deduplication_key, 'page_view' AS event_type, 'web' AS source_type,
  CASE WHEN i = 0 THEN TIMESTAMP '1970-01-01 00:00:00.5'
       ELSE to_timestamp($NOW - i * 3600)::TIMESTAMP + INTERVAL (i * 123457) MICROSECONDS END AS event_timestamp,
  (i - 3)::HUGEINT * 170141183460469231731687303715884105 AS click_id,
  'u' || i || '@x.jp' AS email
FROM range(20) t(i) ORDER BY i
"""


def _pushdown(url: str, sql: str, now: float, **kw: Any) -> tuple[list[Any], int]:
    src = Source(url)
    try:
        described = src.describe(sql)
        assert described is not None
        plan = compile_pushdown(sql, line_binding([n for n, _ in described],
                                                  [t for _, t in described]),
                                clock=lambda: now, **kw)
        assert plan is not None, "the plan declined columns it supports"
        out: list[Any] = []
        with src.stream_arrow(plan.sql) as stream:
            for batch in stream.partitions:
                records, invalid = plan.encode_all(batch)
                bad = {i: err for i, err, _ in invalid}
                out.extend(("invalid", bad[i].column, bad[i].rule, bad[i].reason) if i in bad
                           else records[i] for i in range(len(records)))
        return out, plan.engine_rows
    finally:
        src.dispose()


def _reference(url: str, sql: str, now: float, **kw: Any) -> list[Any]:
    cols, rows = fetch_rows(url, sql)
    enc = LineEventEncoder(line_columns(cols), clock=lambda: now, fast=False, **kw)
    return [outcome(enc.encode_reference, row) for row in rows]


def _compare(url: str, sql: str, now: float, **kw: Any) -> tuple[int, int, int]:
    """(rows, invalid rows, rows the engine built); fails on the first differing row."""
    ref = _reference(url, sql, now, **kw)
    got, engine = _pushdown(url, sql, now, **kw)
    assert len(got) == len(ref)
    for n, (a, b) in enumerate(zip(ref, got)):
        assert a == b, f"row {n}: pushdown {b!r} != reference {a!r}"
    return len(ref), sum(isinstance(r, tuple) for r in ref), engine


KW = [dict(channel_id_present=True, test_flag=False, default_phone_region=None),
      dict(channel_id_present=False, test_flag=True, default_phone_region="JP")]


@pytest.fixture(scope="module")
def generated_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    db = tmp_path_factory.mktemp("pushdown") / "events.duckdb"
    generate(db, N_GENERATED)
    return f"duckdb:///{db}", query_sql()


@pytest.mark.parametrize("kw", KW)
def test_generated_rows_identical(generated_db: tuple[str, str], kw: dict[str, Any]) -> None:
    url, sql = generated_db
    now = int(time.time())
    # both runs must see the same timestamps: the query's "now" becomes a constant
    sql = sql.replace("epoch(current_timestamp)", str(now))
    assert str(now) in sql
    rows, invalid, engine = _compare(url, sql, now, **kw)
    assert rows == N_GENERATED and invalid >= rows * 0.01
    # the engine really builds the valid rows, not the Python fallback
    assert engine >= (rows - invalid) * 0.95


@pytest.mark.parametrize("kw", KW)
@pytest.mark.parametrize("sql", [SQL_EDGE, EDGE_SQL, TYPES_SQL, TIMESTAMP_SQL],
                         ids=["sql_edge", "fastpath_edge", "types", "timestamp"])
def test_edge_rows_identical(sql: str, kw: dict[str, Any]) -> None:
    rows, invalid, engine = _compare("duckdb:///:memory:", sql.replace("$NOW", str(NOW)), NOW, **kw)
    assert invalid >= 1 and engine >= 1


def test_sql_edge_cases_are_built_by_the_engine() -> None:
    """The escaping cases must not all fall back to Python: that would test nothing."""
    sql = SQL_EDGE.replace("$NOW", str(NOW))
    _, _, engine = _compare("duckdb:///:memory:", sql, NOW, **KW[0])
    assert engine >= 40


def test_unsupported_types_decline_the_plan() -> None:
    base = "SELECT 'k' AS deduplication_key, 'page_view' AS event_type, 'web' AS source_type, 1 AS event_timestamp"
    for extra in ["uuid() AS browser_id", "MAP {'value': 1} AS custom_data",
                  "now() AS event_name", "{'value': 1} AS custom_data"]:
        src = Source("duckdb:///:memory:")
        described = src.describe(f"{base}, {extra}")
        src.dispose()
        assert described is not None
        binding = line_binding([n for n, _ in described], [t for _, t in described])
        assert compile_pushdown(base, binding, **KW[0]) is None, extra


def test_ip_sql_patterns_accept_only_addresses() -> None:
    """A value the SQL takes for an IP address must be one for `rules.is_ip` (sufficient condition),
    and the common forms must be taken."""
    import duckdb

    rnd = random.Random(11)
    hexes = ["0", "1", "ab", "FFFF", "fffff", "12345", "", "g", "0000"]
    values = [":".join(rnd.choice(hexes) for _ in range(rnd.randint(1, 10))) for _ in range(20_000)]
    values += [".".join(str(rnd.choice([0, 1, 9, 10, 99, 100, 199, 249, 255, 256, 300])) for _ in range(4))
               for _ in range(2_000)]
    values += ["::", "::1", "1::", "2001:db8::1", "fe80::1:2", "1:2:3:4:5:6:7:8", "10.0.0.1"]
    con = duckdb.connect()
    con.execute("CREATE TABLE v (s VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?)", [[v] for v in values])
    matched = con.execute(
        "SELECT s FROM v WHERE CASE WHEN contains(s, ':') THEN regexp_full_match(s, ?) "
        "ELSE regexp_full_match(s, ?) END",
        [rules.IPV6_PLAIN_PATTERN, rules.IPV4_PLAIN_PATTERN]).fetchall()
    taken = {s for (s,) in matched}
    assert all(rules.is_ip(s) for s in taken), [s for s in taken if not rules.is_ip(s)][:5]
    assert {"::", "::1", "1::", "2001:db8::1", "1:2:3:4:5:6:7:8", "10.0.0.1"} <= taken
    assert len(taken) > 1000


def test_lower_escapes_skips_escaped_backslashes() -> None:
    assert _lower_escapes(b'["\\u001F"]') == b'["\\u001f"]'
    # the text `\u001F` (a backslash, then u001F) is escaped as \\u001F and must stay as it is
    assert _lower_escapes(b'["\\\\u001F", "\\\\\\u001A"]') == b'["\\\\u001F", "\\\\\\u001a"]'


def test_cli_pushdown_and_python_write_the_same_bodies(tmp_path: Any, sandbox: Any) -> None:
    """The whole CLI, both ways, on a CSV with awkward values: the dry-run bodies are equal
    byte for byte, and the report says who built the events."""
    now = int(time.time())
    rows = []
    for i in range(2500):
        rows.append({
            "deduplication_key": f"d{i}", "event_type": "conversion", "source_type": "web",
            "event_timestamp": now - i * 7, "email": f"  User{i}@Example.com ",
            "phone": "+819012345678" if i % 3 == 0 else "", "title": f'T "{i}" \\ \t x',
            "ip_address": "2001:db8::1" if i % 2 else "10.0.0.1",
            "custom_data": json.dumps({"value": i, "currency": "JPY"}) if i % 4 == 0 else "",
        })
    rows[7]["event_timestamp"] = (now - 5) * 1000  # invalid: milliseconds
    write_csv(tmp_path / "ev.csv", rows)
    bodies = {}
    reports = {}
    for mode in ("pushdown", "python"):
        out = tmp_path / f"{mode}.jsonl"
        extra = ["--dry-run", str(out)] + (["--no-pushdown"] if mode == "python" else [])
        run = run_cli(tmp_path, "SELECT * FROM 'ev.csv'", result_config(sandbox, max_records=1000), *extra)
        assert run.returncode == 0, run.stderr
        bodies[mode] = out.read_bytes()
        reports[mode] = run.report
    assert bodies["pushdown"] == bodies["python"]
    assert bodies["pushdown"].count(b"\n") == 3  # 2499 events in batches of 1000
    assert reports["pushdown"]["engine_encoded_rows"] >= 2000
    assert reports["python"]["engine_encoded_rows"] == 0
    for r in reports.values():
        assert r["invalid_records"] == 1 and r["events_sent"] == 2499


def test_only_letters_digits_underscore_dash_patterns_skip_json_escaping():
    from connector.outputs.line_conversion.encoders.pushdown import _plain_pattern

    assert _plain_pattern("[0-9a-zA-Z_-]{1,256}") and _plain_pattern("U[0-9a-f]{32}")
    # a range can hide a quote or a backslash; `.` and negated classes match anything
    for body in ("[ -~]+", "[+-~]", ".+", "[^a]+", 'a"b', "a b", "[a\\\\]"):
        assert not _plain_pattern(body), body


# --------------------------------------------------------------------------- generated rows
# Rows generated by hypothesis, each column stored as text and cast by the query to a type drawn
# for the example: values around the limits of every representation on the way (int64, ±2^53
# for doubles, HUGEINT, UBIGINT, TIMESTAMP beyond Python's year 9999 and infinity, DATE, DECIMAL),
# and text from anywhere in Unicode. One row must never abort the job: the engine's events and the
# reference's must be the same bytes, or the same invalid verdict.

_DIGEST = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
_TS_TYPES = ["BIGINT", "HUGEINT", "UBIGINT", "INTEGER", "VARCHAR", "TIMESTAMP", "DATE", "DOUBLE",
             "DECIMAL(38,0)", "DECIMAL(20,3)"]
_INT_EDGES = [0, 1, -1, NOW, NOW - 60, NOW * 1000, 2**31, 2**53 - 1, 2**53, 2**53 + 1, -2**53 - 1,
              2**63 - 1, -2**63, 2**63, 2**64 - 1, 2**64, 2**127 - 1, -2**127, 10**38 - 1]


def _timestamp_text() -> Any:
    years = st.one_of(st.integers(1, 9999), st.integers(10_000, 294_246), st.just(1970))
    return st.one_of(
        st.builds(lambda y, m, d, s: f"{y:04d}-{m:02d}-{d:02d} 00:00:{s:02d}",
                  years, st.integers(1, 12), st.integers(1, 28), st.integers(0, 59)),
        st.builds(lambda y: f"{y:04d}-01-01 (BC)", st.integers(1, 290_000)),
        st.sampled_from(["infinity", "-infinity", "1970-01-01 00:00:00.5",
                         "2026-09-21 10:00:00", "9999-12-31 23:59:59.999999"]))


def _number_text() -> Any:
    return st.one_of(
        st.sampled_from(_INT_EDGES).map(str),
        st.integers(min_value=-2**130, max_value=2**130).map(str),
        st.integers(min_value=NOW - 100 * 86400, max_value=NOW + 2 * 86400).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["nan", "inf", "-inf", "1e300", "1.5", " 17", "+5", "00017"]))


_TEXT = st.text(max_size=24)
_CUSTOM = st.one_of(
    st.none(), _TEXT,
    st.dictionaries(st.sampled_from(["value", "currency", "quantity", "item_ids", "keywords",
                                     "category", "other"]),
                    st.one_of(st.integers(min_value=-2**70, max_value=2**70),
                              st.floats(allow_nan=False, allow_infinity=False),
                              st.sampled_from(["JPY", "jpy", "", "x" * 301]),
                              st.lists(st.text(max_size=3), max_size=3), st.none()),
                    max_size=3).map(json.dumps),
    st.sampled_from(['{"value": 1e400}', '{"value": NaN}', '{"quantity": 1e2}', '[]', '1']))


def _column(name: str) -> Any:
    """(type, value strategy) of one generated column."""
    valid = {"deduplication_key": ["k-1", "undefined", "a" * 256], "event_type": ["conversion", "page_view"],
             "event_name": ["Purchase", "a" * 21], "source_type": ["web"],
             "email": [" Taro.Yamada@Example.com ", _DIGEST, _DIGEST.upper(), "a@b"],
             "phone": ["+818012345678", "09012345678", _DIGEST, "+1 415 555 2671"],
             "line_uid": ["U" + "0" * 32], "click_id": ["ab-c_1"],
             "browser_id": ["0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"], "ifa": ["x"],
             "external_id": ["u-1", "undefined"], "url": ["https://x.example/", "http://"],
             "referrer": ["https://r.example/"], "title": ['a "q" \\ \x01'], "user_agent": ["UA"],
             "ip_address": ["::1", "10.0.0.1", "1.2.3"]}
    if name == "event_timestamp":
        return st.sampled_from(_TS_TYPES), st.one_of(_number_text(), _timestamp_text(), _TEXT,
                                                    st.none())
    if name == "custom_data":
        return st.just("VARCHAR"), _CUSTOM
    types = ["VARCHAR", "BIGINT", "HUGEINT"] if name in ("deduplication_key", "external_id",
                                                        "click_id") else ["VARCHAR"]
    values = st.one_of(st.sampled_from(valid[name]), _TEXT, _number_text(), st.none())
    return st.sampled_from(types), values


_ALL_COLUMNS = [f.column for f in FIELDS] + ["custom_data"]


@st.composite
def _tables(draw: Any) -> tuple[list[tuple[str, str]], list[list[str | None]]]:
    """(column name, type) in query order, and the rows as text."""
    required = ["deduplication_key", "event_type", "source_type", "event_timestamp"]
    optional = draw(st.lists(st.sampled_from([c for c in _ALL_COLUMNS if c not in required]),
                             unique=True, max_size=6))
    names = draw(st.permutations(required + optional))
    columns, strategies = [], []
    for name in names:
        typ, values = _column(name)
        columns.append((name, draw(typ)))
        # mostly valid values, so that rows get past the first check
        strategies.append(values)
    rows = draw(st.lists(st.tuples(*strategies).map(list), min_size=1, max_size=6))
    return columns, rows


@pytest.fixture(scope="module")
def scratch_db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("generated-rows") / "rows.duckdb"


_examples = iter(range(10**9))


def _one_row(ts_type: str, ts: str) -> tuple[list[tuple[str, str]], list[list[str | None]]]:
    columns = [("deduplication_key", "VARCHAR"), ("event_type", "VARCHAR"),
               ("source_type", "VARCHAR"), ("event_timestamp", ts_type), ("email", "VARCHAR")]
    return columns, [["k-1", "conversion", "web", ts, "a@example.com"],
                     ["k-2", "conversion", "web", str(NOW - 60), "b@example.com"]]


# Known members of the class, tried on every run before the generated ones.
@example(table=_one_row("BIGINT", "9007199254740993000"), kw=KW[0])
@example(table=_one_row("TIMESTAMP", "10000-01-01 00:00:00"), kw=KW[0])
@example(table=_one_row("TIMESTAMP", "infinity"), kw=KW[1])
@example(table=_one_row("DATE", "-infinity"), kw=KW[1])
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(table=_tables(), kw=st.sampled_from(KW))
def test_generated_rows_give_the_same_events_or_the_same_verdict(table, kw, scratch_db):
    import duckdb

    columns, rows = table
    name = f"t{next(_examples)}"
    con = duckdb.connect(str(scratch_db))
    try:
        con.execute(f"CREATE TABLE {name} ({', '.join(f'c{i} VARCHAR' for i in range(len(columns)))})")
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})", rows)
    finally:
        con.close()
    select = ", ".join(f'TRY_CAST(c{i} AS {typ}) AS "{col}"' for i, (col, typ) in enumerate(columns))
    try:
        _compare(f"duckdb:///{scratch_db}", f"SELECT {select} FROM {name} ORDER BY rowid", NOW, **kw)
    finally:
        con = duckdb.connect(str(scratch_db))
        con.execute(f"DROP TABLE {name}")
        con.close()


def test_one_out_of_range_row_never_aborts_the_export(tmp_path: Any) -> None:
    """Timestamps beyond what a double holds exactly, or beyond Python's datetime, one per row:
    both paths report those rows invalid and export the rest (exit 0, a report, the same
    bodies)."""
    now = int(time.time())
    template = """
        SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, 'web' AS source_type,
               CASE i WHEN 2 THEN {a} WHEN 3 THEN {b} ELSE {ok} END AS event_timestamp,
               'u' || i || '@example.com' AS email
        FROM range(1, 7) t(i)
    """
    queries = [
        template.format(a="9007199254740993000", b="9223372036854775807", ok=now - 60),
        template.format(a="TIMESTAMP '10000-01-01 00:00:00'", b="'infinity'::TIMESTAMP",
                        ok=f"to_timestamp({now - 60})::TIMESTAMP"),
    ]
    for sql in queries:
        bodies = {}
        for mode in ("pushdown", "python"):
            out = tmp_path / f"{mode}.jsonl"
            extra = ["--dry-run", str(out)] + (["--no-pushdown"] if mode == "python" else [])
            run = run_cli(tmp_path, sql, result_config(None, access_token="tok-12345"), *extra)
            assert run.returncode == 0, run.stderr[-2000:]
            assert "Traceback" not in run.stderr and not run.report["warnings"]
            assert run.report["invalid_records"] == 2 and run.report["events_sent"] == 4
            bodies[mode] = out.read_bytes()
        assert bodies["pushdown"] == bodies["python"]
