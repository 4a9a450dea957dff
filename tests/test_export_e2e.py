"""End to end: real SQL on the embedded DuckDB, real HTTP to the sandbox on loopback, the real CLI."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import (TAG, TOKEN, check_equation, generated_sql, now_s, result_config, run_cli,
                     stored_keys, write_csv)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _events(sandbox) -> list[dict]:
    return [item["event"] for item in sandbox.events(TAG)]


def test_clean_export_field_by_field(sandbox, tmp_path):
    ts = now_s() - 3600
    write_csv(tmp_path / "ev.csv", [
        {"DEDUPLICATION_KEY": "ord-1", "event_type": "conversion", "event_name": "Purchase",
         "source_type": "web", "event_timestamp": ts, "email": " Taro.Yamada@Example.com ",
         "phone": "+818012345678", "external_id": "cust_1",
         "browser_id": "167dd69a-83f6-44dc-87a1-52f460ca36fe", "click_id": "cl123",
         "ifa": "", "url": "https://shop.example.com/thanks", "referrer": "https://www.example.com/",
         "title": "Thanks", "user_agent": "Mozilla/5.0", "ip_address": "203.0.113.10",
         "custom_data": json.dumps({"value": 1200, "currency": "JPY", "quantity": 2,
                                    "item_ids": ["a1"], "category": "shoes"})},
        {"DEDUPLICATION_KEY": "ord-2", "event_type": "page_view", "event_name": "",
         "source_type": "web", "event_timestamp": ts + 1,
         "email": "B6EBD83922EDFA96B0FF9166A958BADCC230DD68D2315DDFEA22F20EAF05994A",
         "phone": "", "external_id": "", "browser_id": "", "click_id": "", "ifa": "",
         "url": "", "referrer": "", "title": "", "user_agent": "", "ip_address": "",
         "custom_data": ""},
    ])
    run = run_cli(tmp_path, "SELECT * FROM 'ev.csv'", result_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert run.report["status"] == "success"
    assert run.report["events_sent"] == 2 and run.report["requests"] == 1
    events = _events(sandbox)
    assert [e["event"]["deduplication_key"] for e in events] == ["ord-1", "ord-2"]
    first, second = events
    assert first == {
        "event": {"deduplication_key": "ord-1", "event_type": "conversion",
                  "event_name": "Purchase", "source_type": "web", "event_timestamp": ts},
        "user": {"email": "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a",
                 "phone": "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713",
                 "external_id": "cust_1", "browser_id": "167dd69a-83f6-44dc-87a1-52f460ca36fe",
                 "click_id": "cl123"},
        "web": {"url": "https://shop.example.com/thanks", "referrer": "https://www.example.com/",
                "title": "Thanks", "user_agent": "Mozilla/5.0", "ip_address": "203.0.113.10"},
        "custom": {"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1"],
                   "category": "shoes"},
    }
    # Pre-hashed upper-case hex: lower-cased, never hashed again; empty cells are left out.
    assert second == {
        "event": {"deduplication_key": "ord-2", "event_type": "page_view", "source_type": "web",
                  "event_timestamp": ts + 1},
        "user": {"email": "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"},
    }
    run.assert_no_secret("Taro.Yamada", "818012345678")


def test_invalid_rows_skipped_with_reasons(sandbox, tmp_path):
    run = run_cli(tmp_path, generated_sql(50, invalid_every=10), result_config(sandbox))
    assert run.returncode == 0, run.stderr
    r = run.report
    assert (r["rows_read"], r["events_sent"], r["invalid_records"]) == (50, 45, 5)
    assert r["invalid_by_column"] == {"event_type": 5}
    assert [s["row"] for s in r["invalid_samples"]] == [10, 20, 30, 40, 50]
    assert all("page_view" in s["reason"] for s in r["invalid_samples"])
    assert sorted(stored_keys(sandbox), key=lambda k: int(k[2:])) == [
        f"k-{i}" for i in range(1, 51) if i % 10]


def test_strict_mode_sends_nothing(sandbox, tmp_path):
    run = run_cli(tmp_path, generated_sql(3000, invalid_every=1500),
                  result_config(sandbox, ignore_invalid_records=False))
    assert run.returncode == 1
    r = run.report
    assert r["status"] == "error" and r["reason"] == "invalid_records"
    assert r["events_sent"] == 0 and r["invalid_records"] == 2 and r["requests"] == 0
    assert r["invalid_rows"] == [[1500, 1500], [3000, 3000]]
    assert sandbox.stats()["requests"] == 0


def test_strict_mode_all_valid_sends_everything(sandbox, tmp_path):
    run = run_cli(tmp_path, generated_sql(2500),
                  result_config(sandbox, ignore_invalid_records=False))
    assert run.returncode == 0, run.stderr
    assert run.report["events_sent"] == 2500 and run.report["requests"] == 3
    assert len(stored_keys(sandbox)) == 2500


def test_500_twice_then_success(sandbox, tmp_path):
    sandbox.set_faults([{"status": 500, "times": 2}])
    # One request at a time: both faults hit the first batch, whose retries wait 1 s, then 2 s.
    run = run_cli(tmp_path, generated_sql(1500), result_config(sandbox, parallelism=1))
    assert run.returncode == 0, run.stderr
    r = run.report
    assert (r["events_sent"], r["retries"], r["requests"]) == (1500, 2, 4)
    keys = stored_keys(sandbox)
    assert len(keys) == 1500 and len(set(keys)) == 1500
    assert run.elapsed >= 3  # waited 1 s, then 2 s


def test_429_honours_retry_after(sandbox, tmp_path):
    sandbox.set_faults([{"status": 429, "retry_after": 2}])
    run = run_cli(tmp_path, generated_sql(10), result_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert run.report["retries"] == 1 and run.report["events_sent"] == 10
    assert run.elapsed >= 2  # Retry-After (2 s) beat initial_retry_wait (1 s)


def test_401_fails_at_once(tmp_path):
    from connector.outputs.line_conversion.sandbox import run_sandbox

    with run_sandbox(tags={TAG: "the-right-token"}) as sb:
        run = run_cli(tmp_path, generated_sql(2500), result_config(sb, max_retry=5, parallelism=1))
        assert sb.stats()["requests"] == 1  # no retry
    assert run.returncode == 1
    r = run.report
    assert r["reason"] == "send_failed" and "token" in r["error"]
    assert r["events_sent"] == 0 and r["retries"] == 0
    assert r["failed_events"] == r["rows_read"] > 0
    assert "access token" in run.stderr
    run.assert_no_secret("the-right-token")


def test_bisection_isolates_rejected_event(sandbox, tmp_path):
    sandbox.set_faults([{"reject_where": {"deduplication_key": "k-1013"}}])
    run = run_cli(tmp_path, generated_sql(2500), result_config(sandbox))
    assert run.returncode == 1
    r = run.report
    assert r["events_sent"] == 2499 and r["rejected_events"] == 1 and r["failed_events"] == 0
    assert r["rejected"] == [{"row": 1013, "batch": 2, "position": 12,
                              "reason": r["rejected"][0]["reason"]}]
    assert "400" in r["rejected"][0]["reason"]
    keys = stored_keys(sandbox)
    assert len(keys) == 2499 and "k-1013" not in keys
    # 1 + a binary search down to one event: about 2*log2(1000) requests, not 1000.
    assert r["requests"] < 30
    assert r["accepted_rows"] == [[1, 1012], [1014, 2500]]


def test_timeout_is_retried_and_deduplicated(sandbox, tmp_path):
    sandbox.set_faults([{"delay_s": 12}])
    run = run_cli(tmp_path, generated_sql(20), result_config(sandbox, connection_timeout=10))
    assert run.returncode == 0, run.stderr
    assert run.report["retries"] == 1 and run.report["events_sent"] == 20
    time.sleep(2.5)  # the slow first request completes on the server after the client gave up
    keys = stored_keys(sandbox)
    assert sorted(keys) == sorted(f"k-{i}" for i in range(1, 21))  # stored once each
    assert sandbox.stats()["duplicates"] == 20


def test_retries_exhausted_reports_exactly_what_was_accepted(sandbox, tmp_path):
    sandbox.set_faults([{"delay_s": 0.01}, {"status": 503, "times": 5}])
    # One request at a time: the first batch is accepted, the second meets the 503s.
    run = run_cli(tmp_path, generated_sql(3000), result_config(sandbox, max_retry=1,
                                                                parallelism=1))
    assert run.returncode == 1
    r = run.report
    assert r["reason"] == "send_failed" and "503" in r["error"]
    assert r["accepted_rows"] == [[1, 1000]]
    assert r["failed_rows"][0][0] == 1001
    assert r["events_sent"] == 1000 and r["failed_events"] == r["rows_read"] - 1000
    assert len(stored_keys(sandbox)) == 1000


def test_dropped_connection_is_retried(sandbox, tmp_path):
    sandbox.set_faults([{"drop_connection": True}])
    run = run_cli(tmp_path, generated_sql(10), result_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert run.report["retries"] == 1 and len(stored_keys(sandbox)) == 10


def test_dry_run_writes_bodies_and_sends_nothing(sandbox, tmp_path):
    out = tmp_path / "bodies.jsonl"
    run = run_cli(tmp_path, generated_sql(2500, invalid_every=100), result_config(sandbox),
                  "--dry-run", str(out))
    assert run.returncode == 0, run.stderr
    lines = out.read_bytes().splitlines()
    bodies = [json.loads(line) for line in lines]
    assert [len(b) for b in bodies] == [1000, 1000, 475]
    assert bodies[0][0]["user"]["email"] == hashlib.sha256(b"user1@example.com").hexdigest()
    assert run.report["dry_run"] is True and run.report["events_sent"] == 2475
    assert sandbox.stats()["requests"] == 0


def test_missing_required_column_is_config_error(sandbox, tmp_path):
    run = run_cli(tmp_path, "SELECT 'k' AS deduplication_key, 'web' AS source_type",
                  result_config(sandbox))
    assert run.returncode == 2
    assert "event_type" in run.stderr and "event_timestamp" in run.stderr
    assert sandbox.stats()["requests"] == 0


def test_unknown_column_warns(sandbox, tmp_path):
    sql = generated_sql(3).replace("AS email", "AS emial")
    run = run_cli(tmp_path, sql.replace("SELECT", "SELECT 'x@example.com' AS email,", 1),
                  result_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert "'emial'" in run.stderr
    assert any("emial" in w for w in run.report["warnings"])


def test_query_error_exit_1_with_engine_message(sandbox, tmp_path):
    run = run_cli(tmp_path, "SELECT * FROM no_such_table", result_config(sandbox))
    assert run.returncode == 1
    assert "no_such_table" in run.stderr and "Traceback" not in run.stderr


def test_interrupt_writes_report_and_exits_1(sandbox, tmp_path):
    sandbox.set_faults([{"delay_s": 30}])
    query = tmp_path / "q.sql"
    query.write_text(generated_sql(5000))
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--result",
         json.dumps(result_config(sandbox, parallelism=1)), "--report-file", str(report)],
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sandbox.faults()["pending"] and time.monotonic() < deadline:
        time.sleep(0.1)  # until the first request is being held by the delay fault
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["status"] == "error" and r["reason"] == "interrupted"
    assert r["events_sent"] == 0 and r["failed_events"] == r["rows_read"] > 0
    assert TOKEN not in err


def test_token_never_leaks(tmp_path):
    from connector.outputs.line_conversion.sandbox import run_sandbox

    # A token on the command line (not from the environment), through several failure paths.
    with run_sandbox(tags={TAG: "other"}) as sb:
        for sql in (generated_sql(5), "SELECT * FROM missing_table"):
            run = run_cli(tmp_path, sql, result_config(sb, access_token=TOKEN))
            assert run.returncode == 1
            run.assert_no_secret()
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token=TOKEN, max_retry=99))
    assert run.returncode == 2
    run.assert_no_secret()


@pytest.mark.parametrize("column_sql", [
    "TIMESTAMP '{t}'", "TIMESTAMPTZ '{t}+00:00'",
])
def test_timestamp_columns_are_converted(sandbox, tmp_path, column_sql):
    import datetime as dt

    ts = now_s() - 7200
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    sql = (f"SELECT 'k-1' AS deduplication_key, 'conversion' AS event_type, 'web' AS source_type, "
           f"{column_sql.format(t=t)} AS event_timestamp, 'a@example.com' AS email")
    run = run_cli(tmp_path, sql, result_config(sandbox))
    assert run.returncode == 0, run.stderr
    assert _events(sandbox)[0]["event"]["event_timestamp"] == ts


def test_slow_sender_spills_to_disk_and_keeps_order(sandbox, tmp_path):
    sandbox.set_faults([{"delay_s": 4}])
    # 60 batches: 20 wait in memory (MEMORY_RECORDS = 20,000 records), the rest on disk
    # One request at a time: query order across requests holds only then.
    run = run_cli(tmp_path, generated_sql(60000), result_config(sandbox, parallelism=1))
    assert run.returncode == 0, run.stderr
    r = run.report
    assert r["events_sent"] == 60000 and r["spilled_batches"] > 5
    assert stored_keys(sandbox) == [f"k-{i}" for i in range(1, 60001)]
