"""1,000,000 generated rows through the embedded DuckDB to the sandbox, with flat memory.

Not a timed test: it checks that the exporter's peak RSS does not grow with the row count
(bench/export_bench.py measures speed).
"""
from __future__ import annotations

from helpers import now_s, result_config, run_cli_peak_rss


def _export(tmp_path, sandbox, rows: int) -> tuple[dict, int]:
    sql = f"""
        SELECT 'm-' || i AS deduplication_key, 'conversion' AS event_type,
               'Purchase' AS event_name, 'web' AS source_type,
               {now_s() - 60} - (i % 86400) AS event_timestamp,
               'User' || i || '@Example.com ' AS email,
               'https://shop.example.com/p/' || (i % 5000) AS url,
               '{{"value": ' || (i % 9000) || ', "currency": "JPY"}}' AS custom_data
        FROM range(1, {rows + 1}) t(i)
    """
    return run_cli_peak_rss(tmp_path, sql, result_config(sandbox, max_records=10000))


def test_one_million_rows_flat_memory(sandbox, tmp_path):
    small, small_peak = _export(tmp_path, sandbox, 100_000)
    assert small["events_sent"] == 100_000
    sandbox.reset()
    big, big_peak = _export(tmp_path, sandbox, 1_000_000)
    assert big["events_sent"] == 1_000_000 and big["requests"] == 100
    assert sandbox.stats()["accepted"] == 1_000_000
    print(f"peak RSS: 100k rows {small_peak / 2**20:.0f} MiB, 1M rows {big_peak / 2**20:.0f} MiB;"
          f" 1M rows at {big['events_per_second']:,.0f} events/s")
    # Ten times the rows, (almost) the same memory: only batches in flight are held.
    assert big_peak < small_peak * 1.25 + 20 * 2**20, (small_peak, big_peak)
