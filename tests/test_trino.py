"""Trino as the source: a real single-node Trino server (started by .ci/trino.sh) and the sandbox.

In CI (CI=true) a missing Trino fails these tests; elsewhere they skip with the reason.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from connector.source.sharding import shard_of
from helpers import TAG, TOKEN, now_s, result_config, run_cli, run_cli_peak_rss, trino_url

pytestmark = pytest.mark.trino


@pytest.fixture(scope="module")
def trino() -> str:
    url = trino_url()
    if url is None:
        message = "no Trino server on 127.0.0.1 (start one with: bash .ci/trino.sh start)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="module")
def trino_engine(trino):
    engine = sa.create_engine(trino)
    yield engine
    engine.dispose()


def trino_sql(engine, sql: str):
    with engine.connect() as conn:
        result = conn.exec_driver_sql(sql)
        return result.fetchall() if result.returns_rows else None


@pytest.fixture(scope="module")
def conversions_table(trino_engine) -> str:
    """A real Trino table (memory connector) of 3,000 conversions; every 500th is invalid."""
    name = f"memory.default.conv_{uuid.uuid4().hex[:8]}"
    ts = now_s() - 600
    trino_sql(trino_engine, f"""
        CREATE TABLE {name} AS
        SELECT 'k-' || CAST(i AS varchar) AS deduplication_key,
               CASE WHEN i % 500 = 0 THEN 'purchase' ELSE 'conversion' END AS event_type,
               'Purchase' AS event_name, 'web' AS source_type,
               CAST({ts} + i AS bigint) AS event_timestamp,
               'User' || CAST(i AS varchar) || '@Example.com' AS email,
               '+8180' || lpad(CAST(i AS varchar), 8, '0') AS phone
        FROM UNNEST(sequence(1, 3000)) AS t(i)
    """)
    yield name
    trino_sql(trino_engine, f"DROP TABLE IF EXISTS {name}")


def test_export_from_trino_table_checks_every_event(sandbox, tmp_path, trino, conversions_table):
    import hashlib

    run = run_cli(tmp_path, f"SELECT * FROM {conversions_table} ORDER BY event_timestamp",
                  result_config(sandbox), "--database", trino)
    assert run.returncode == 0, run.stderr
    r = run.report
    assert (r["rows_read"], r["events_sent"], r["invalid_records"]) == (3000, 2994, 6)
    assert r["invalid_by_column"] == {"event_type": 6}
    events = [item["event"] for item in sandbox.events(TAG)]
    # Several requests in flight: they arrive in any order, each a slice of the query's order.
    events.sort(key=lambda e: int(e["event"]["deduplication_key"][2:]))
    expected = [i for i in range(1, 3001) if i % 500]
    assert [e["event"]["deduplication_key"] for e in events] == [f"k-{i}" for i in expected]
    ts0 = events[0]["event"]["event_timestamp"] - 1
    for i, e in zip(expected, events):
        assert e["event"] == {"deduplication_key": f"k-{i}", "event_type": "conversion",
                              "event_name": "Purchase", "source_type": "web",
                              "event_timestamp": ts0 + i}
        assert e["user"] == {
            "email": hashlib.sha256(f"user{i}@example.com".encode()).hexdigest(),
            "phone": hashlib.sha256(f"+8180{i:08d}".encode()).hexdigest(),
        }


def test_trino_query_error_is_exit_1_with_trinos_message(sandbox, tmp_path, trino):
    run = run_cli(tmp_path, "SELECT * FROM memory.default.no_such_table_xyz",
                  result_config(sandbox), "--database", trino)
    assert run.returncode == 1
    assert "no_such_table_xyz" in run.stderr and "does not exist" in run.stderr
    assert "Traceback" not in run.stderr
    assert sandbox.stats()["requests"] == 0


def test_trino_failure_while_streaming_is_exit_1(sandbox, tmp_path, trino):
    # Fails on the worker after rows started flowing: division by zero at row 5000.
    sql = """SELECT 'k-' || CAST(i AS varchar) AS deduplication_key, 'conversion' AS event_type,
                    'web' AS source_type, CAST(to_unixtime(current_timestamp) AS bigint)
                    - 60 + 0 * (1 / (i - 5000)) AS event_timestamp, 'a@example.com' AS email
             FROM UNNEST(sequence(1, 9000)) AS t(i)"""
    run = run_cli(tmp_path, sql, result_config(sandbox), "--database", trino)
    assert run.returncode == 1
    assert "Division by zero" in run.stderr and "Traceback" not in run.stderr
    assert run.report["reason"] == "source_error"


def _query_state(engine, source: str) -> list[tuple]:
    return trino_sql(engine, "SELECT state, error_code FROM system.runtime.queries "
                             f"WHERE source = '{source}' AND query NOT LIKE '%system.runtime%'")


def _wait_for_state(engine, source: str, wanted: set[str], timeout: float = 30) -> list[tuple]:
    deadline = time.monotonic() + timeout
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        rows = _query_state(engine, source)
        if rows and all(r[0] in wanted for r in rows):
            return rows
        time.sleep(0.5)
    return rows


LONG_QUERY = """
    SELECT 'c-' || CAST(a.x AS varchar) || '-' || CAST(b.y AS varchar) AS deduplication_key,
           'conversion' AS event_type, 'web' AS source_type,
           CAST(to_unixtime(current_timestamp) AS bigint) - 60 AS event_timestamp,
           'a@example.com' AS email
    FROM UNNEST(sequence(1, 5000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 5000)) AS b(y)
"""


def test_send_failure_cancels_the_trino_query(tmp_path, trino, trino_engine):
    from connector.outputs.line_conversion.sandbox import run_sandbox

    source = f"connector-test-{uuid.uuid4().hex[:8]}"
    with run_sandbox(tags={TAG: "another-token"}) as sb:  # 401: the export aborts
        run = run_cli(tmp_path, LONG_QUERY, result_config(sb), "--database",
                      f"{trino}?source={source}")
    assert run.returncode == 1 and run.report["reason"] == "send_failed"
    rows = _wait_for_state(trino_engine, source, {"FAILED"})
    assert rows == [("FAILED", "USER_CANCELED")], rows


def test_interrupt_cancels_the_trino_query(sandbox, tmp_path, trino, trino_engine):
    source = f"connector-test-{uuid.uuid4().hex[:8]}"
    sandbox.set_faults([{"delay_s": 30}])
    query = tmp_path / "long.sql"
    query.write_text(LONG_QUERY)
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--database", f"{trino}?source={source}",
         "--result", json.dumps(result_config(sandbox)), "--report-file", str(report)],
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True)
    assert _wait_for_state(trino_engine, source, {"RUNNING"}, timeout=60)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert json.loads(report.read_text())["reason"] == "interrupted"
    rows = _wait_for_state(trino_engine, source, {"FAILED"})
    assert rows == [("FAILED", "USER_CANCELED")], rows


TS = now_s() - 3600
ISO = dt.datetime.fromtimestamp(TS, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000")


@pytest.mark.parametrize("timestamp_sql, custom_sql, custom", [
    (f"CAST(from_iso8601_timestamp('{ISO.replace(' ', 'T')}Z') AS timestamp(3) with time zone)",
     "CAST(ROW(12.50, 'JPY', 2) AS ROW(value decimal(10, 2), currency varchar, quantity integer))",
     {"value": 12.5, "currency": "JPY", "quantity": 2}),
    (f"CAST(TIMESTAMP '{ISO}' AS timestamp(6))",
     "CAST(MAP(ARRAY['value', 'currency'], ARRAY[JSON '1200', JSON '\"USD\"']) AS JSON)",
     {"value": 1200, "currency": "USD"}),
    (f"CAST({TS} AS decimal(20, 0))",
     "MAP(ARRAY['item_ids', 'keywords'], ARRAY[ARRAY['a1', 'b2'], ARRAY['k']])",
     {"item_ids": ["a1", "b2"], "keywords": ["k"]}),
    (f"CAST({TS} AS bigint)",
     "json_parse('{\"category\": \"shoes\", \"value\": 3}')",
     {"category": "shoes", "value": 3}),
    (f"CAST({TS} AS integer)",
     "MAP(ARRAY['currency', 'category'], ARRAY['JPY', 'bags'])",
     {"currency": "JPY", "category": "bags"}),
    (f"CAST({TS} AS double)",
     "CAST(ROW(DECIMAL '1999.00') AS ROW(value decimal(12, 2)))",
     {"value": 1999}),
], ids=["timestamptz-row", "timestamp-json", "decimal-map-of-arrays", "bigint-json_parse",
        "integer-map", "double-row-decimal"])
def test_trino_types_map_to_event_fields(sandbox, tmp_path, trino, timestamp_sql, custom_sql,
                                         custom):
    sql = f"""SELECT 't-1' AS deduplication_key, 'conversion' AS event_type,
                     'Purchase' AS event_name, 'web' AS source_type, 'a@example.com' AS email,
                     {timestamp_sql} AS event_timestamp, {custom_sql} AS custom_data"""
    run = run_cli(tmp_path, sql, result_config(sandbox), "--database", trino)
    assert run.returncode == 0, run.stderr
    (event,) = [e["event"] for e in sandbox.events(TAG)]
    assert event["event"]["event_timestamp"] == TS
    assert event["custom"] == custom


def test_shard_union_equals_unsharded_on_trino(tmp_path, trino, conversions_table):
    sql = f"SELECT * FROM {conversions_table}"
    config = result_config(None, access_token="x")

    def keys(path):
        return [e["event"]["deduplication_key"] for line in path.read_text().splitlines()
                for e in json.loads(line)]

    full = tmp_path / "full.jsonl"
    run = run_cli(tmp_path, sql, config, "--database", trino, "--dry-run", str(full))
    assert run.returncode == 0, run.stderr
    everything = keys(full)
    assert len(everything) == 2994
    union = []
    for k in range(4):
        out = tmp_path / f"s{k}.jsonl"
        run = run_cli(tmp_path, sql, config, "--database", trino, "--dry-run", str(out),
                      "--shard", f"{k}/4")
        assert run.returncode == 0, run.stderr
        part = keys(out)
        # Trino computes the same MD5-prefix shard as DuckDB and as Python.
        assert part and all(shard_of(key, 4) == k for key in part)
        union.extend(part)
    assert sorted(union) == sorted(everything) and len(set(union)) == len(union)


def test_one_million_trino_rows_flat_memory(sandbox, tmp_path, trino):
    def export(rows: int) -> tuple[dict, int]:
        sql = f"""
            SELECT 'r-' || CAST(a.x AS varchar) || '-' || CAST(b.y AS varchar) AS deduplication_key,
                   'conversion' AS event_type, 'web' AS source_type,
                   CAST(to_unixtime(current_timestamp) AS bigint) - 60 AS event_timestamp,
                   'user' || CAST(a.x AS varchar) || '@example.com' AS email,
                   'https://shop.example.com/p/' || CAST(b.y AS varchar) AS url
            FROM UNNEST(sequence(1, {rows // 1000})) AS a(x)
            CROSS JOIN UNNEST(sequence(1, 1000)) AS b(y)
        """
        return run_cli_peak_rss(tmp_path, sql, result_config(sandbox, max_records=10000),
                                "--database", trino)

    small, small_peak = export(100_000)
    assert small["events_sent"] == 100_000
    sandbox.reset()
    big, big_peak = export(1_000_000)
    assert big["events_sent"] == 1_000_000 and sandbox.stats()["accepted"] == 1_000_000
    print(f"Trino peak RSS: 100k rows {small_peak / 2**20:.0f} MiB, "
          f"1M rows {big_peak / 2**20:.0f} MiB; 1M at {big['events_per_second']:,.0f} events/s")
    assert big_peak < small_peak * 1.25 + 20 * 2**20, (small_peak, big_peak)


def test_output_mapping_on_trino_gives_duckdbs_bytes(tmp_path, trino, trino_engine):
    """The same segment and mapping on Trino and on DuckDB: the same request bodies (the
    mapping's SQL is plain enough for both engines)."""
    ts = now_s() - 600
    rows = [("' Taro.Yamada@Example.com '", "'cust_1'", "'1001'", ts),
            ("'hanako@example.jp'", "'cust_2'", "'1002'", ts + 1),
            ("NULL", "'cust_3'", "NULL", ts + 2),
            ("'not-an-address'", "'cust_4'", "'1004'", ts + 3)]
    values = ", ".join(f"({m}, {c}, {o}, CAST({t} AS bigint))" for m, c, o, t in rows)
    name = f"memory.default.profile_{uuid.uuid4().hex[:8]}"
    trino_sql(trino_engine, f"CREATE TABLE {name} AS SELECT * FROM (VALUES {values}) "
                            "AS t(mail, customer_id, order_id, seen_at)")
    mapping = {"all_columns": False, "columns": [
        {"source": "mail", "name": "email"}, {"source": "seen_at", "name": "event_timestamp"},
        {"name": "deduplication_key", "string_builder": [
            {"type": "string", "value": "seg"}, {"type": "segment_id"},
            {"type": "string", "value": "-"}, {"source": "order_id"}]},
        {"name": "external_id", "string_builder": [
            {"type": "audience_id"}, {"type": "string", "value": "_"}, {"source": "customer_id"}]},
        {"name": "event_type", "string_builder": [{"type": "string", "value": "conversion"}]},
        {"name": "source_type", "string_builder": [{"type": "string", "value": "web"}]}]}
    duck_sql = "SELECT * FROM (VALUES " + values.replace("bigint", "BIGINT") + \
        ") AS t(mail, customer_id, order_id, seen_at)"
    bodies = {}
    try:
        for engine, sql, extra in (("trino", f"SELECT * FROM {name}", ["--database", trino]),
                                   ("duckdb", duck_sql, [])):
            out = tmp_path / f"{engine}.jsonl"
            run = run_cli(tmp_path, sql, result_config(), "--output-mapping", json.dumps(mapping),
                          "--metadata", "segment_id=42", "--metadata", "audience_id=7",
                          "--dry-run", str(out), *extra)
            assert run.returncode == 0, run.stderr
            assert run.report["invalid_by_column"] == {"deduplication_key": 1,
                                                       "email (from mail)": 1}
            bodies[engine] = out.read_bytes()
    finally:
        trino_sql(trino_engine, f"DROP TABLE IF EXISTS {name}")
    assert bodies["trino"] == bodies["duckdb"]
    events = [e for line in bodies["trino"].splitlines() for e in json.loads(line)]
    assert [e["event"]["deduplication_key"] for e in events] == ["seg42-1001", "seg42-1002"]
