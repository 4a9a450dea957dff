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

from bench.datagen import generate, query_sql
from helpers import (EDGE_SQL, N_GENERATED, fetch_rows, line_binding, line_columns, outcome,
                     result_config, run_cli, write_csv)

from connector.outputs.line_conversion import rules
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
        with src.stream_batches(plan.sql) as stream:
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
    from connector.outputs.line_conversion.encoders.sqlcore import plain_pattern as _plain_pattern

    assert _plain_pattern("[0-9a-zA-Z_-]{1,256}") and _plain_pattern("U[0-9a-f]{32}")
    # a range can hide a quote or a backslash; `.` and negated classes match anything
    for body in ("[ -~]+", "[+-~]", ".+", "[^a]+", 'a"b', "a b", "[a\\\\]"):
        assert not _plain_pattern(body), body
