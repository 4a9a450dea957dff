"""The fast path of LineEventEncoder.encode must be byte-identical to the reference path.

Rows come out of a real DuckDB through the exporter's own Source (SQLAlchemy): the benchmark's
generator (bench/export_bench.py, ~2% invalid rows of six kinds) plus hand-written edge cases
(typed columns, Unicode whitespace, pre-hashed values, national phones, 'undefined', empty
strings, custom_data). For every row the reference (`encode_reference`, i.e. `build` + orjson)
and the fast path (`encode`) must give the same bytes, or the same invalid column, rule and
reason.
"""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

import pytest

from connector.plugins.base import InvalidRecord
from connector.plugins.line_conversion import hashing
from connector.plugins.line_conversion.fields import FIELDS
from connector.plugins.line_conversion.transform import LineEventEncoder
from connector.source import Source

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [f.column for f in FIELDS]
N_GENERATED = 20_000


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("export_bench", ROOT / "bench" / "export_bench.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _outcome(encode: Any, row: Any) -> Any:
    try:
        return encode(row)
    except InvalidRecord as err:
        return ("invalid", err.column, err.rule, err.reason)


def _fetch(url: str, sql: str) -> tuple[list[str], list[Any]]:
    src = Source(url)
    try:
        with src.stream(sql) as stream:
            rows = [row for part in stream.partitions for row in part]
            return stream.columns, rows
    finally:
        src.dispose()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[Any], int]:
    bench = _bench_module()
    db = tmp_path_factory.mktemp("fastpath") / "events.duckdb"
    bench.generate(db, N_GENERATED)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    epoch = con.execute("SELECT epoch FROM meta").fetchone()[0]
    con.close()
    cols, rows = _fetch(f"duckdb:///{db}", bench.query_sql())
    return cols, rows, epoch


EDGE_SQL = r"""
WITH base AS (
  SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, 'Purchase' AS event_name,
         'web' AS source_type, $NOW::BIGINT - 60 AS event_timestamp,
         'a@example.com' AS email, NULL::VARCHAR AS phone, NULL::VARCHAR AS line_uid,
         NULL::VARCHAR AS click_id, NULL::VARCHAR AS browser_id, NULL::VARCHAR AS ifa,
         NULL::VARCHAR AS external_id, 'https://x.example/' AS url, NULL::VARCHAR AS referrer,
         NULL::VARCHAR AS title, NULL::VARCHAR AS user_agent, NULL::VARCHAR AS ip_address, i
  FROM range(40) t(i)
)
SELECT
  CASE i WHEN 1 THEN 'undefined' WHEN 2 THEN '' WHEN 3 THEN repeat('a', 257) WHEN 4 THEN 'a b'
         ELSE deduplication_key END AS deduplication_key,
  CASE i WHEN 5 THEN 'Conversion' WHEN 6 THEN '' ELSE event_type END AS event_type,
  CASE i WHEN 7 THEN '' WHEN 8 THEN repeat('n', 21) WHEN 9 THEN 'bad name' ELSE event_name END AS event_name,
  CASE i WHEN 10 THEN 'app' ELSE source_type END AS source_type,
  CASE i WHEN 11 THEN -5 WHEN 12 THEN $NOW::BIGINT + 2 * 86400 WHEN 13 THEN $NOW::BIGINT - 100 * 86400
         WHEN 14 THEN ($NOW::BIGINT - 60) * 1000 ELSE event_timestamp END AS event_timestamp,
  CASE i WHEN 15 THEN chr(12288) || 'Taro@Example.COM' || chr(160) WHEN 16 THEN upper(sha256('x'))
         WHEN 17 THEN ' ' || sha256('y') || ' ' WHEN 18 THEN 'taro@例え.jp' WHEN 19 THEN ''
         WHEN 20 THEN NULL WHEN 21 THEN repeat('f', 63) || 'g' ELSE email END AS email,
  CASE i WHEN 20 THEN NULL WHEN 21 THEN '+1 415 555 2671' WHEN 22 THEN '+14155552671'
         WHEN 23 THEN '+11234567890' WHEN 24 THEN '+810312345678' WHEN 25 THEN '+999123456'
         WHEN 26 THEN '+12' WHEN 27 THEN '+8190123456789012' WHEN 28 THEN '０９０１２３４５６７８'
         WHEN 29 THEN '09012345678' WHEN 30 THEN ' +819012345678 ' WHEN 31 THEN '+39 06 1234 5678'
         WHEN 32 THEN '+390612345678' WHEN 33 THEN '+٨١٩٠١٢٣٤٥٦٧٨' ELSE phone END AS phone,
  CASE i WHEN 34 THEN 'U' || md5('z') WHEN 35 THEN 'U' || upper(md5('z')) ELSE line_uid END AS line_uid,
  CASE i WHEN 36 THEN 'ab-c_1' WHEN 37 THEN 'ab c' ELSE click_id END AS click_id,
  CASE i WHEN 38 THEN '0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d' || chr(10) ELSE browser_id END AS browser_id,
  ifa,
  CASE i WHEN 39 THEN 'undefined' WHEN 0 THEN '' ELSE external_id END AS external_id,
  CASE i WHEN 1 THEN 'http://' WHEN 2 THEN 'https://a' || chr(10) || 'b' WHEN 3 THEN repeat('h', 2049) ELSE url END AS url,
  CASE i WHEN 4 THEN repeat('r', 2049) WHEN 5 THEN '' ELSE referrer END AS referrer,
  CASE i WHEN 6 THEN repeat('t', 1025) WHEN 7 THEN 'a "q" \ b' || chr(1) || chr(127) || '😀' ELSE title END AS title,
  CASE i WHEN 8 THEN '' WHEN 9 THEN 'UA' || chr(0) ELSE user_agent END AS user_agent,
  CASE i WHEN 10 THEN '::1' WHEN 11 THEN '1.2.3' WHEN 12 THEN '01.2.3.4' WHEN 13 THEN 'fe80::1%eth0'
         WHEN 14 THEN ' 1.2.3.4' ELSE ip_address END AS ip_address
FROM base ORDER BY i
"""

TYPED_SQL = r"""
SELECT 12345 AS deduplication_key, 'page_view' AS event_type, 'web' AS source_type,
       to_timestamp($NOW - 30)::TIMESTAMP AS event_timestamp, uuid() AS browser_id,
       42 AS external_id, '{"value": 1200, "currency": "JPY"}' AS custom_data
UNION ALL
SELECT 7, 'page_view', 'web', NULL, uuid(), 1, '{"bad": 1}'
UNION ALL
SELECT 8, 'conversion', 'web', to_timestamp($NOW - 30)::TIMESTAMP, NULL, 2, '{"value": 3.5, "item_ids": ["a"]}'
"""


def _compare(cols: list[str], rows: list[Any], now: int, *, channel: bool, test_flag: bool,
             region: str | None) -> tuple[int, int]:
    enc = LineEventEncoder(cols, channel_id_present=channel, test_flag=test_flag,
                           default_phone_region=region, clock=lambda: now)
    assert enc._fast is not None
    invalid = fast_hits = 0
    for n, row in enumerate(rows):
        ref = _outcome(enc.encode_reference, row)
        got = _outcome(enc.encode, row)
        assert got == ref, f"row {n}: fast path differs from the reference"
        if isinstance(ref, tuple):
            invalid += 1
        elif enc._fast(row, now) is not None:
            fast_hits += 1
    return invalid, fast_hits


@pytest.mark.parametrize("channel,test_flag,region", [(True, False, None), (False, True, "JP")])
def test_generated_rows_identical(generated: Any, channel: bool, test_flag: bool,
                                  region: str | None) -> None:
    cols, rows, epoch = generated
    assert cols == COLUMNS and len(rows) == N_GENERATED
    # the generator's timestamps are relative to its epoch; the query shifts them to "now"
    import time

    invalid, fast_hits = _compare(cols, rows, int(time.time()), channel=channel,
                                  test_flag=test_flag, region=region)
    assert invalid >= N_GENERATED * 0.01  # the ~2% invalid rows are there (more without channel)
    # and the fast path really carries the valid rows
    assert fast_hits >= (N_GENERATED - invalid) * 0.9


@pytest.mark.parametrize("channel,region", [(True, None), (False, "JP"), (True, "US")])
def test_edge_rows_identical(channel: bool, region: str | None) -> None:
    now = 1_790_000_000
    cols, rows = _fetch("duckdb:///:memory:", EDGE_SQL.replace("$NOW", str(now)))
    invalid, _ = _compare(cols, rows, now, channel=channel, test_flag=False, region=region)
    assert invalid >= 15


def test_typed_columns_and_custom_data_identical() -> None:
    import time

    now = int(time.time())
    cols, rows = _fetch("duckdb:///:memory:", TYPED_SQL.replace("$NOW", str(now)))
    invalid, _ = _compare(cols, rows, now, channel=False, test_flag=True, region=None)
    assert invalid == 1


@pytest.mark.parametrize("region", [None, "JP", "TH"])
def test_phone_fast_hasher_matches_reference(region: str | None) -> None:
    rnd = random.Random(7)
    ref = hashing.make_phone_hasher(region)
    fast = hashing.make_fast_phone_hasher(region)
    values = ["+" + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 18)))
              for _ in range(20_000)]
    values += ["+81" + str(rnd.randint(10**7, 10**11)) for _ in range(5_000)]
    values += ["+1" + str(rnd.randint(10**8, 10**11)) for _ in range(2_000)]
    values += [hashing.sha256_hex(str(i)).upper() for i in range(100)]
    hits = 0
    for v in values:
        got = fast(v)
        if got is None:
            continue
        hits += 1
        assert got == ref(v), v
    assert hits > 5_000


def test_ip_fast_test_matches_fields() -> None:
    from connector.plugins.line_conversion import fields, transform

    test = transform._format_test(fields._is_ip)
    rnd = random.Random(3)
    parts = ["0", "1", "9", "10", "01", "00", "99", "100", "199", "200", "249", "250", "255", "256",
             "300", "1000", "", "a", "٣", " 1"]
    values = [".".join(rnd.choice(parts) for _ in range(rnd.choice((3, 4, 4, 4, 5))))
              for _ in range(20_000)]
    values += ["1.2.3.4\n", "1.2.3.4 ", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0"]
    for v in values:
        assert test(v) == fields._is_ip(v), v
