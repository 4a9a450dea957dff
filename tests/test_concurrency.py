"""Concurrent, adaptive delivery: several requests in flight, every guarantee kept.

Real exports (the CLI as a subprocess, or run_export in-process where threads are inspected)
over HTTP to the sandbox on loopback, with its standing latency and concurrency-limit faults
standing in for a distant API.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from connector import CancelToken, ExportSpec, run_export
from connector.outputs.line_conversion.sandbox import run_sandbox
from helpers import TAG, TOKEN, check_equation, gen_sql, result_config, run_cli


def request_slices(sandbox: Any) -> list[list[int]]:
    """The row numbers of each accepted request, from the stored events: one request's events
    are stored in one transaction, with consecutive ids and the arrival time of the request."""
    slices: list[list[int]] = []
    last: tuple[int, float] | None = None
    for item in sandbox.events(TAG):
        number = int(item["event"]["event"]["deduplication_key"][2:])
        if last is not None and item["id"] == last[0] + 1 and item["received_at"] == last[1]:
            slices[-1].append(number)
        else:
            slices.append([number])
        last = (item["id"], item["received_at"])
    return slices


def assert_contiguous(slices: list[list[int]]) -> None:
    for rows in slices:
        assert rows == list(range(rows[0], rows[0] + len(rows))), rows[:3]


def test_exact_accounting_under_concurrency_with_mixed_faults(sandbox, tmp_path):
    """500s, a dropped connection, a rejected event and latency, 8 requests in flight: every row
    ends in exactly one bucket, the culprit alone is rejected, every other row is stored once,
    and each request carried a contiguous slice of the query's rows."""
    sandbox.set_faults([{"latency_ms": 30}, {"reject_where": {"deduplication_key": "k-7777"}},
                        {"status": 500, "times": 2}, {"drop_connection": True},
                        {"status": 503, "times": 1}])
    run = run_cli(tmp_path, gen_sql(20_000),
                  result_config(sandbox, parallelism=8, adaptive_parallelism=False))
    r = run.report
    assert run.returncode == 1 and r["reason"] == "events_not_accepted", run.stderr
    assert [x["row"] for x in r["rejected"]] == [7777]
    assert r["events_sent"] == 19_999 and r["failed_events"] == 0 and r["invalid_records"] == 0
    assert r["peak_in_flight"] > 1
    slices = request_slices(sandbox)
    assert_contiguous(slices)
    stored = sorted(n for rows in slices for n in rows)
    assert stored == [n for n in range(1, 20_001) if n != 7777]


def test_slices_are_contiguous_and_complete_while_arrivals_interleave(sandbox, tmp_path):
    sandbox.set_faults([{"latency_ms": 40}])
    run = run_cli(tmp_path, gen_sql(30_000),
                  result_config(sandbox, parallelism=6, adaptive_parallelism=False))
    assert run.returncode == 0, run.stderr
    assert run.report["peak_in_flight"] == 6
    slices = request_slices(sandbox)
    assert_contiguous(slices)
    assert sorted(n for rows in slices for n in rows) == list(range(1, 30_001))
    firsts = [rows[0] for rows in slices]
    assert firsts != sorted(firsts), "requests did not overlap: nothing was concurrent"


def test_adaptive_limit_falls_on_429_and_recovers_once_cleared(sandbox, tmp_path):
    """Against a limit of 3 requests in progress the limit is halved on the 429; once the
    fault is gone it grows past 3 again. No event is lost and the 429s stay a small share."""
    sandbox.set_faults([{"latency_ms": 100}, {"concurrency_limit": 3, "retry_after": 0}])
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(150_000))
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--quiet", "--report-file", str(report),
         "--result", json.dumps(result_config(sandbox))],
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN, "CONNECTOR_PROBE_SECONDS": "0.5"},
        cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not sandbox.requests(status=429) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.requests(status=429), "the limit never reached the sandbox's concurrency limit"
    sandbox.set_faults([{"latency_ms": 100}])  # the destination takes more now
    assert proc.wait(timeout=120) == 0
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["events_sent"] == 150_000 and r["failed_events"] == 0
    assert r["concurrency_lowered"].get("429", 0) >= 1
    assert r["concurrency_limit"] > 3 and r["peak_in_flight"] > 3
    assert len(sandbox.requests(status=429)) <= 0.1 * r["requests"]


def test_401_with_requests_in_flight_stops_every_sender_at_once(tmp_path):
    """One request answers 401 while seven others are held by the API: the run stops at once
    (not after the held requests), and every row not confirmed is reported failed."""
    with run_sandbox() as sb:
        sb.set_faults([{"status": 401}, {"delay_s": 20, "times": 7}])
        run = run_cli(tmp_path, gen_sql(8_000),
                      result_config(sb, parallelism=8, adaptive_parallelism=False))
    r = run.report
    assert run.returncode == 1 and r["reason"] == "send_failed" and "token" in r["error"]
    assert r["events_sent"] == 0 and r["failed_events"] == r["rows_read"] == 8_000
    assert r["retries"] == 0
    assert run.elapsed < 15, "waited for the held requests instead of stopping them"
    run.assert_no_secret()


def test_sigint_with_requests_in_flight_cancels_them_within_a_second(sandbox, tmp_path):
    sandbox.set_faults([{"latency_ms": 30_000}])
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(8_000))
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--report-file", str(report),
         "--result", json.dumps(result_config(sandbox, parallelism=8,
                                              adaptive_parallelism=False))],
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sandbox.stats()["in_progress"] < 8 and time.monotonic() < deadline:
        time.sleep(0.1)  # until every sender has its request held by the sandbox
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert time.monotonic() - t < 3, "requests in flight were not cancelled promptly"
    assert proc.returncode == 1
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["reason"] == "interrupted" and r["events_sent"] == 0
    assert r["failed_events"] == r["rows_read"] > 0 and r["peak_in_flight"] == 8
    assert TOKEN not in err


def test_cancel_leaves_no_thread_running(sandbox, tmp_path):
    """run_export from another thread, cancelled with eight requests in flight: it returns an
    exact report and no thread of the run is left behind."""
    sandbox.set_faults([{"latency_ms": 30_000}])
    os.environ["TEST_LINE_TOKEN"] = TOKEN
    before = {t.ident for t in threading.enumerate()}
    cancel = CancelToken()
    reports: list[Any] = []
    runner = threading.Thread(target=lambda: reports.append(run_export(ExportSpec(
        query=gen_sql(8_000), output=result_config(sandbox, parallelism=8,
                                                  adaptive_parallelism=False),
        database_url="duckdb:///:memory:"), cancel=cancel)))
    runner.start()
    deadline = time.monotonic() + 60
    while sandbox.stats()["in_progress"] < 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    t = time.monotonic()
    cancel.cancel()
    runner.join(timeout=10)
    assert not runner.is_alive() and time.monotonic() - t < 2
    report = reports[0].to_dict()
    check_equation(report)
    assert report["reason"] == "interrupted" and report["events_sent"] == 0
    time.sleep(0.5)
    left = [t.name for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("connector")]
    assert left == []


def test_parallelism_1_sends_one_request_at_a_time_in_query_order(sandbox, tmp_path):
    sandbox.set_faults([{"latency_ms": 20}])
    run = run_cli(tmp_path, gen_sql(12_000), result_config(sandbox, parallelism=1))
    assert run.returncode == 0, run.stderr
    assert run.report["peak_in_flight"] == 1 and run.report["concurrency_limit"] == 1
    log = [e for e in sandbox.requests() if e["status"] == 202]
    spans = sorted((e["time"], e["time"] + e["duration_ms"] / 1000) for e in log)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    keys = [int(e["event"]["event"]["deduplication_key"][2:]) for e in sandbox.events(TAG)]
    assert keys == list(range(1, 12_001))


def test_the_byte_budget_bounds_the_batches_held(sandbox, tmp_path):
    """With room for one body only, eight allowed requests still go one at a time."""
    sandbox.set_faults([{"latency_ms": 20}])
    run = run_cli(tmp_path, gen_sql(6_000),
                  result_config(sandbox, parallelism=8, adaptive_parallelism=False),
                  env={"CONNECTOR_MAX_BYTES_IN_FLIGHT": "1"})
    assert run.returncode == 0, run.stderr
    assert run.report["peak_in_flight"] == 1 and run.report["events_sent"] == 6_000


@pytest.mark.parametrize("parallelism", [1, 8])
def test_strict_mode_sends_nothing_with_an_invalid_row(sandbox, tmp_path, parallelism):
    sql = gen_sql(5_000).replace("'conversion' AS event_type",
                                 "CASE WHEN i = 4321 THEN 'bogus' ELSE 'conversion' END AS event_type")
    run = run_cli(tmp_path, sql, result_config(sandbox, ignore_invalid_records=False,
                                               parallelism=parallelism))
    assert run.returncode == 1 and run.report["reason"] == "invalid_records"
    assert run.report["invalid_rows"] == [[4321, 4321]]
    assert sandbox.stats()["requests"] == 0
