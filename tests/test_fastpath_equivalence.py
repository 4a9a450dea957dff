"""The fast path of LineEventEncoder.encode must be byte-identical to the reference path.

Rows come out of a real DuckDB through the exporter's own Source (SQLAlchemy): the benchmark's
generator (bench/datagen.py, ~2% invalid rows of six kinds) plus hand-written edge cases
(typed columns, Unicode whitespace, pre-hashed values, national phones, 'undefined', empty
strings, custom_data). For every row the reference (`encode_reference`, i.e. `build` + orjson)
and the fast path (`encode`) must give the same bytes, or the same invalid column, rule and
reason.
"""
from __future__ import annotations

import random
from typing import Any

import pytest

from bench.datagen import generate, query_sql
from helpers import EDGE_SQL, N_GENERATED, fetch_rows, line_columns, outcome
from connector.outputs.line_conversion import hashing
from connector.outputs.line_conversion.fields import FIELDS
from connector.outputs.line_conversion.encoders import LineEventEncoder

COLUMNS = [f.column for f in FIELDS]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[Any]]:
    db = tmp_path_factory.mktemp("fastpath") / "events.duckdb"
    generate(db, N_GENERATED)
    return fetch_rows(f"duckdb:///{db}", query_sql())


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
    enc = LineEventEncoder(line_columns(cols), channel_id_present=channel, test_flag=test_flag,
                           default_phone_region=region, clock=lambda: now)
    assert enc._fast is not None
    invalid = fast_hits = 0
    for n, row in enumerate(rows):
        ref = outcome(enc.encode_reference, row)
        got = outcome(enc.encode, row)
        assert got == ref, f"row {n}: fast path differs from the reference"
        if isinstance(ref, tuple):
            invalid += 1
        elif enc._fast(row, now) is not None:
            fast_hits += 1
    return invalid, fast_hits


@pytest.mark.parametrize("channel,test_flag,region", [(True, False, None), (False, True, "JP")])
def test_generated_rows_identical(generated: Any, channel: bool, test_flag: bool,
                                  region: str | None) -> None:
    cols, rows = generated
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
    cols, rows = fetch_rows("duckdb:///:memory:", EDGE_SQL.replace("$NOW", str(now)))
    invalid, _ = _compare(cols, rows, now, channel=channel, test_flag=False, region=region)
    assert invalid >= 15


def test_typed_columns_and_custom_data_identical() -> None:
    import time

    now = int(time.time())
    cols, rows = fetch_rows("duckdb:///:memory:", TYPED_SQL.replace("$NOW", str(now)))
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
    from connector.outputs.line_conversion import rules
    from connector.outputs.line_conversion.encoders import fastpath

    test = fastpath._format_test(rules.IP_FORMAT)
    rnd = random.Random(3)
    parts = ["0", "1", "9", "10", "01", "00", "99", "100", "199", "200", "249", "250", "255", "256",
             "300", "1000", "", "a", "٣", " 1"]
    values = [".".join(rnd.choice(parts) for _ in range(rnd.choice((3, 4, 4, 4, 5))))
              for _ in range(20_000)]
    values += ["1.2.3.4\n", "1.2.3.4 ", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0"]
    for v in values:
        assert test(v) == rules.is_ip(v), v
