"""The job report: its row ranges stay compact, and its memory does not grow with the row
count."""
from __future__ import annotations

import sys
from typing import Any

from helpers import now_s, result_config


def test_range_list_extend_matches_row_by_row():
    """Adding rows in bulk (extend) gives the same ranges and count as adding them one by one."""
    import random

    from connector.report.ranges import RangeList

    rnd = random.Random(5)
    for _ in range(200):
        rows, r = [], 0
        for _ in range(rnd.randint(0, 60)):
            r += rnd.choice((1, 1, 1, 2, 5))
            rows.append(r)
        fast, slow = RangeList(), RangeList()
        half = len(rows) // 2
        fast.extend(rows[:half])
        fast.extend(iter(rows[half:]))
        for row in rows:
            slow.add(row)
        assert fast.as_list() == slow.as_list() and fast.count == slow.count == len(rows)


def _deep_size(root: Any) -> int:
    """Bytes of every object reachable from `root` (classes, modules and functions excluded)."""
    import gc
    import types

    seen: set[int] = set()
    stack, total = [root], 0
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def test_report_memory_stays_small_with_interleaved_invalid_rows(tmp_path):
    """When invalid rows interleave with valid ones (say every other row lacks a phone
    country code) each row is a range of its own. The report stores its row ranges compactly,
    so after a real export of 100,000 alternating rows on DuckDB (dry-run sink) the report
    object holds under 4 MiB: 100 million such rows must not cost gigabytes."""
    from connector import ExportSpec, run_export

    n = 100_000
    sql = f"""
        SELECT 'k-' || i AS deduplication_key,
               CASE WHEN i % 2 = 0 THEN 'bogus' ELSE 'conversion' END AS event_type,
               'web' AS source_type, {now_s() - 60} AS event_timestamp,
               'u' || i || '@example.com' AS email
        FROM range(1, {n + 1}) t(i)
    """
    report = run_export(ExportSpec(
        query=sql, output=result_config(None, access_token="x-token-123"),
        database_url="duckdb:///:memory:", dry_run_path=str(tmp_path / "out.jsonl")))
    assert report.invalid_records == n // 2 and report.events_sent == n // 2
    size = _deep_size(report)
    assert size < 4 * 2**20, f"the report holds {size / 2**20:.1f} MiB after {n} rows"


def test_counts_read_as_english():
    """`1 event rejected`, never `1 events rejected`."""
    from connector.records import BatchOutcome, Rejection
    from connector.report import JobReport
    from connector.wording import plural

    assert [plural(n, "event") for n in (0, 1, 2, 1000)] == ["0 events", "1 event", "2 events",
                                                              "1,000 events"]
    assert plural(1, "retry") == "1 retry" and plural(3, "retry") == "3 retries"
    assert plural(2, "day") == "2 days"
    report = JobReport("line_conversion", "x")
    report.read_up_to(3)
    report.apply(BatchOutcome(accepted=[1], rejected=[Rejection(row=2, batch=0, position=1,
                                                                reason="HTTP 400")]))
    report.finish()
    assert report.error == "1 event rejected and 1 not accepted by the API"
