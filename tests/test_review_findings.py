"""Regression tests from a review: each `BUG` test failed against the code as reviewed (5ff21c5),
and passes since its fix. The docstrings keep the original finding.
Each `coverage` test exercises a tricky path the suite did not cover and passes.

Everything runs for real: the CLI as a subprocess, the embedded DuckDB, HTTP to the sandbox on
loopback. Promises (from the brief):
  P1 no token / raw email / raw phone in stdout, stderr, report, dry-run file, exception text
  P2 rows_read == events_sent + invalid_records + rejected_events + failed_events, always
  P3 every valid row delivered exactly once, in query order; bisection isolates exactly the culprits
  P4 exit 0 / 1 / 2 (2 = bad usage or config before any query runs); no traceback for user errors
  P5 never double-hash, normalise before hashing, never send invalid values
  P6 flat memory
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import TAG, TOKEN, check_equation, now_s, result_config, run_cli, write_csv

PY = sys.executable
LEAK_EMAIL = "taro.leak@example.com"


def gen_sql(n: int, extra: str = "", start: int = 1) -> str:
    return f"""
        SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type,
               'Purchase' AS event_name, 'web' AS source_type,
               {now_s() - 60} AS event_timestamp, 'user' || i || '@example.com' AS email {extra}
        FROM range({start}, {start + n}) t(i)
    """


def stored_keys(sandbox) -> list[str]:
    return [e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG)]


def blob(run) -> str:
    return run.stdout + run.stderr + json.dumps(run.report or {})


def no_traceback(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr[-1500:]


def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """communicate(), and never leave the child running if it hangs."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def start_cli(tmp_path: Path, sql: str, config: dict[str, Any], report: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen:
    query = tmp_path / f"q-{time.monotonic_ns()}.sql"
    query.write_text(sql)
    full_env = {k: v for k, v in os.environ.items() if k != "CONNECTOR_DATABASE_URL"}
    full_env.update({"TEST_LINE_TOKEN": TOKEN, **(env or {})})
    return subprocess.Popen(
        [PY, "-m", "connector", str(query), "--result", json.dumps(config),
         "--report-file", str(report)],
        env=full_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# =============================================================================== P1: secrets / PII

def test_bug_token_with_trailing_space_leaks_into_report_file(sandbox, tmp_path):
    """BUG (P1). A token with a trailing space (a common copy-paste slip; only control characters
    are refused) makes h11 raise `LocalProtocolError: Illegal header value b'<token> '`.
    client.py `_describe_failure` puts that text into the outcome error, which cli.py writes to
    --report-file unredacted (`_write_report` never applies the Redactor; only stderr is
    redacted). Also the doomed request is retried max_retry times with backoff.
    Expected: the token never appears in the report. Actual: report["error"] holds it."""
    secret = TOKEN + " "
    run = run_cli(tmp_path, gen_sql(5), result_config(sandbox, max_retry=1),
                  env={"TEST_LINE_TOKEN": secret})
    assert run.returncode in (1, 2)
    assert TOKEN not in json.dumps(run.report or {}), run.report and run.report["error"]
    run.assert_no_secret()


def test_bug_non_ascii_token_is_a_traceback_not_a_config_error(sandbox, tmp_path):
    """BUG (P4, P2). A token holding a non-ASCII character passes validation, then
    `httpx.Client(headers=...)` in client.py LineSink.__init__ raises UnicodeEncodeError,
    which nothing catches: Python traceback, exit 1, and no --report-file at all (the query had
    already started). Expected: a clean configuration error (exit 2) naming access_token."""
    run = run_cli(tmp_path, gen_sql(5), result_config(sandbox),
                  env={"TEST_LINE_TOKEN": "tök-SECRET-7f3a9c1e5b"})
    no_traceback(run)
    assert run.returncode == 2
    assert "access_token" in run.stderr


def test_bug_custom_data_key_with_email_leaks_raw_email(sandbox, tmp_path):
    """BUG (P1, P6). transform.py `parse_custom` raises FieldError(f"custom_data.{key}", ...):
    the user's *key* becomes the column name, which report.py puts verbatim into
    invalid_by_column and invalid_samples[].column, and into the summary on stderr. A MAP or
    JSON column keyed by user data (here an address) prints raw emails; each distinct key is also a
    new invalid_by_column entry (unbounded). Expected: no raw email anywhere."""
    custom = json.dumps({LEAK_EMAIL: 1})
    sql = gen_sql(3, extra=f", '{custom}' AS custom_data")
    run = run_cli(tmp_path, sql, result_config(sandbox))
    assert run.report["invalid_records"] == 3
    assert LEAK_EMAIL not in blob(run), run.report["invalid_by_column"]


def test_bug_query_error_echoes_row_data_with_raw_email(sandbox, tmp_path):
    """BUG (P1). source.py `_driver_message` passes the engine's message through verbatim.
    DuckDB's CSV reader reports a type error mid-stream with the whole offending line
    ("Original Line: k-25000,...,taro.leak@example.com"), so a raw address from the *data* lands
    on stderr and in report["error"]. Expected: engine messages are masked/trimmed of row data."""
    now = now_s() - 60
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("deduplication_key,event_type,source_type,event_timestamp,email\n")
        for i in range(1, 25001):
            ts = "yesterday" if i == 25000 else str(now)
            email = LEAK_EMAIL if i == 25000 else f"user{i}@example.com"
            fh.write(f"k-{i},conversion,web,{ts},{email}\n")
    run = run_cli(tmp_path, "SELECT * FROM 'big.csv'", result_config(sandbox, max_records=10000))
    assert run.returncode == 1
    assert LEAK_EMAIL not in blob(run), run.stderr[-600:]


def test_bug_email_in_a_visible_column_is_shown_unmasked(sandbox, tmp_path):
    """BUG (P1, low/medium). Invalid-row samples show event_type/event_name/event_timestamp
    values in clear (report.add_invalid with show_plain, fields.py `sensitive=False`). Those are
    exactly the cells that go invalid when a CSV's columns are shifted, and then they hold an
    address: report["invalid_samples"][].value and the stderr summary print it raw.
    Expected: sample values are masked ("values must be masked")."""
    ts = now_s() - 60
    write_csv(tmp_path / "shifted.csv", [
        {"deduplication_key": "k-1", "event_type": "conversion", "event_name": "Purchase",
         "source_type": "web", "event_timestamp": str(ts), "email": "ok@example.com"},
        {"deduplication_key": "k-2", "event_type": "conversion", "event_name": LEAK_EMAIL,
         "source_type": "web", "event_timestamp": str(ts), "email": "ok2@example.com"},
    ])
    run = run_cli(tmp_path, "SELECT * FROM 'shifted.csv'", result_config(sandbox))
    assert run.report["invalid_records"] == 1 and run.report["events_sent"] == 1
    assert LEAK_EMAIL not in blob(run), run.report["invalid_samples"]


def test_bug_database_password_printed_in_connect_traceback(sandbox, tmp_path):
    """BUG (P1, P4). source.py `Source.stream` catches only SQLAlchemyError around
    engine.connect(). A driver that refuses its connect() arguments raises TypeError instead
    (duckdb: "connect(): incompatible function arguments ... Invoked with: kwargs: ...,
    password='<password>'"), which escapes as a traceback that prints the password in clear,
    although url_secrets() registered it with the Redactor (the traceback bypasses it).
    Expected: no password on stderr, no traceback, a clean error (exit 1 or 2)."""
    secret = "db-SECRET-pw-91c4"
    run = run_cli(tmp_path, gen_sql(1), result_config(sandbox),
                  "--database", "duckdb://me:${DB_PW}@/:memory:", env={"DB_PW": secret})
    assert secret not in blob(run), run.stderr[-400:]
    no_traceback(run)
    assert run.returncode in (1, 2)


def test_bug_split_result_argument_echoes_token(sandbox, tmp_path):
    """BUG (P1). An unquoted --result JSON is split by the shell; argparse then reports
    "unrecognized arguments: ..." echoing the rest of the JSON, token included, to stderr
    (cli.py `_export_parser` uses argparse's default error()). The suite itself passes literal
    tokens on the command line (test_token_never_leaks), so this path must be covered too.
    Expected: exit 2 without the token in the message."""
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(1))
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", '{"type": "line_conversion",',
         f'"access_token": "{TOKEN}", "line_tag_id": "{TAG}"}}'],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert TOKEN not in proc.stdout + proc.stderr, proc.stderr


# =============================================================================== P4: exit codes

def test_bug_unhashable_map_keys_in_custom_data_crash_the_job(sandbox, tmp_path):
    """BUG (P4, P2). transform.py `parse_custom` turns any dict with exactly the keys {"key","value"} into
    `dict(zip(key, value))`. With list keys (a JSON string, or a DuckDB MAP with LIST keys, which
    DuckDB returns in that shape) this raises TypeError: unhashable type. Only InvalidRecord is
    caught per row, so one bad cell kills the job: traceback, exit 1, no report.
    Expected: that row is invalid (custom_data), the other rows are sent, exit 0."""
    sql = gen_sql(3, extra=""", CASE WHEN i = 2 THEN '{"key": [[1]], "value": [1]}'
                                 ELSE NULL END AS custom_data""")
    run = run_cli(tmp_path, sql, result_config(sandbox))
    no_traceback(run)
    assert run.report is not None
    assert (run.report["events_sent"], run.report["invalid_records"]) == (2, 1)


def test_bug_huge_digit_string_timestamp_crashes_the_job(sandbox, tmp_path):
    """BUG (P4, P2). fields.py `timestamp_seconds` calls int() on any ASCII digit string; past
    4300 digits Python raises ValueError (int max str digits), not FieldError, so one corrupt
    cell aborts the whole export with a traceback and no report.
    Expected: the row is invalid (event_timestamp), the others are sent."""
    sql = f"""
        SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, 'web' AS source_type,
               CASE WHEN i = 2 THEN repeat('9', 5000) ELSE '{now_s() - 60}' END AS event_timestamp,
               'u' || i || '@example.com' AS email
        FROM range(1, 4) t(i)
    """
    run = run_cli(tmp_path, sql, result_config(sandbox))
    no_traceback(run)
    assert run.report is not None
    assert (run.report["events_sent"], run.report["invalid_records"]) == (2, 1)


def test_bug_unwritable_dry_run_path_is_a_traceback(sandbox, tmp_path):
    """BUG (P4). `--dry-run missing-dir/out.jsonl`: DryRunSink's open() (client.py) raises
    FileNotFoundError inside job._run_stream after the query started; nothing catches OSError:
    traceback, exit 1, no report. Expected: exit 2 with a one-line message, before the query."""
    run = run_cli(tmp_path, gen_sql(3), result_config(sandbox), "--dry-run",
                  str(tmp_path / "no-such-dir" / "out.jsonl"))
    no_traceback(run)
    assert run.returncode == 2


def test_bug_unwritable_report_file_sends_everything_then_crashes(sandbox, tmp_path):
    """BUG (P4). `--report-file missing-dir/r.json` is only opened at the very end
    (cli.py `_write_report`): every event is sent, then an uncaught FileNotFoundError gives a
    traceback and exit 1 for a job that succeeded. Expected: exit 2 before any query runs
    (nothing sent), no traceback."""
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(3))
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", json.dumps(result_config(sandbox)),
         "--report-file", str(tmp_path / "no-such-dir" / "r.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN})
    assert "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 2
    assert sandbox.stats()["requests"] == 0


def test_bug_query_file_not_utf8_is_a_traceback(sandbox, tmp_path):
    """BUG (P4). cli.py `_read_query` catches only OSError; a query file in Shift_JIS/Latin-1
    raises UnicodeDecodeError: traceback, exit 1. Expected: exit 2, clean message."""
    query = tmp_path / "q.sql"
    query.write_bytes(gen_sql(1).encode() + b" -- caf\xe9\n")
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", json.dumps(result_config(sandbox))],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN})
    assert "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 2


def test_bug_result_file_not_utf8_is_a_traceback(sandbox, tmp_path):
    """BUG (P4). result_url.parse_result reads `--result @file` catching only OSError; a
    non-UTF-8 file raises UnicodeDecodeError: traceback, exit 1. Expected: exit 2."""
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(1))
    cfg = tmp_path / "result.json"
    cfg.write_bytes(json.dumps(result_config(sandbox, access_token=TOKEN)).encode()
                    .replace(b"}", b', "x": "caf\xe9"}'))
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", f"@{cfg}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 2
    assert TOKEN not in proc.stderr + proc.stdout


def test_bug_malformed_retry_after_crashes_the_sender(sandbox, tmp_path):
    """BUG (P4/P2, low). client.py `parse_retry_after` uses str.isdigit(), true for '²' and other
    Unicode digits that float() refuses: ValueError escapes `_post_once` (not a retryable
    exception), then the job: traceback, exit 1, no report. A broken proxy header must not
    crash the exporter. Expected: header ignored, request retried, events delivered."""
    sandbox.set_faults([{"status": 429, "retry_after": "\u00b2"}])
    run = run_cli(tmp_path, gen_sql(3), result_config(sandbox))
    no_traceback(run)
    assert run.returncode == 0
    assert run.report is not None and run.report["events_sent"] == 3


# =============================================================================== P2: accounting

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_bug_interrupt_during_long_query_is_a_traceback_without_report(sandbox, tmp_path, sig):
    """BUG (P2, P4). An interrupt while DuckDB is still executing the query (job.run ->
    source.stream -> exec_driver_sql) surfaces as RuntimeError('Query interrupted') from the
    duckdb driver, not KeyboardInterrupt and not a SQLAlchemyError: uncaught, so a traceback,
    and no --report-file is written (SIGTERM, which cli.py turns into KeyboardInterrupt, ends
    the same way). Expected: exit 1, report with reason 'interrupted', no traceback."""
    sql = f"""
        SELECT 'k-1' AS deduplication_key, 'conversion' AS event_type, 'web' AS source_type,
               {now_s() - 60} AS event_timestamp, 'a@example.com' AS email, s AS title
        FROM (SELECT sum(i * i % 7)::VARCHAR AS s FROM range(150000000) t(i))
    """
    import psutil

    report = tmp_path / "r.json"
    proc = start_cli(tmp_path, sql, result_config(sandbox), report)
    child = psutil.Process(proc.pid)
    deadline = time.monotonic() + 20
    # main + progress thread + DuckDB's worker: the connection is open, the query is running.
    while child.num_threads() < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(sig)
    _out, err = finish(proc, 60)
    assert "Traceback" not in err, err[-600:]
    assert proc.returncode == 1
    assert report.exists(), "no report file after an interrupt"
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["reason"] == "interrupted"


def test_bug_interrupt_during_bisection_forgets_accepted_half(sandbox, tmp_path):
    """BUG (P2). LineSink.send builds one BatchOutcome across the whole bisection; an interrupt
    (KeyboardInterrupt) in a later sub-request escapes send() and the outcome, including the
    halves LINE already answered 202 for, is dropped. Rows the API *confirmed* are reported as
    failed (job.py `_send_all` never applies it). Expected: the report's accepted rows equal what
    the API accepted (rows 1-500 here)."""
    sandbox.set_faults([{"reject_where": {"deduplication_key": "k-900"}},
                        {"delay_s": 0.001}, {"delay_s": 0.001}, {"delay_s": 30}])
    report = tmp_path / "r.json"
    proc = start_cli(tmp_path, gen_sql(1000), result_config(sandbox), report)
    deadline = time.monotonic() + 20
    while len(stored_keys(sandbox)) < 500 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the third request (rows 501-1000) is now sleeping in the sandbox
    proc.send_signal(signal.SIGINT)
    finish(proc, 30)
    assert len(stored_keys(sandbox)) == 500
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["reason"] == "interrupted"
    assert r["accepted_rows"] == [[1, 500]] and r["events_sent"] == 500, r["accepted_rows"]


def test_bug_shard_drops_null_key_rows_and_defeats_strict_mode(sandbox, tmp_path):
    """BUG (P2). sharding.py filters `md5(CAST(key AS VARCHAR)) ... % N = K`; for a NULL
    deduplication_key that is NULL in every shard, so the row is read by no shard: it never shows
    up as invalid. Unsharded, strict mode (ignore_invalid_records=false) refuses to send
    anything; sharded, every shard succeeded and sent. (Fixed: NULL keys hash as '' and land in
    a shard, which reports them.) Expected: the shards together read
    every row (sum of rows_read == unsharded rows_read) and report the invalid one."""
    sql = gen_sql(6).replace("'k-' || i AS deduplication_key",
                             "CASE WHEN i = 3 THEN NULL ELSE 'k-' || i END AS deduplication_key")
    config = result_config(sandbox, ignore_invalid_records=False)
    # Unsharded, this query reads 6 rows, finds row 3 invalid and exits 1 sending nothing.
    shards = [run_cli(tmp_path, sql, config, "--shard", f"{k}/2", "--dry-run",
                      str(tmp_path / f"s{k}.jsonl")) for k in range(2)]
    assert sum(s.report["rows_read"] for s in shards) == 6
    assert sum(s.report["invalid_records"] for s in shards) == 1
    # Strict mode holds per shard (each shard is its own job): the shard that read the invalid
    # row fails and sends nothing.
    (bad,) = [s for s in shards if s.report["invalid_records"]]
    assert bad.returncode == 1 and bad.report["events_sent"] == 0


def test_bug_single_event_413_aborts_the_whole_job(tmp_path):
    """BUG (P3, low). client.py `_deliver`: a 413 is bisected, but a 413 for a single event falls
    into "unexpected HTTP 413" with fatal=True, so one oversized event (user_agent has no length
    limit in the field table) stops the job and every later row ends `failed`. A single event the
    server will never take is a rejection, like a lone 400. Expected: 1 rejected, the other
    2499 delivered."""
    from connector.outputs.line_conversion.sandbox import run_sandbox

    big_ua = "x" * 60_000
    sql = gen_sql(2500, extra=f", CASE WHEN i = 10 THEN '{big_ua}' END AS user_agent")
    with run_sandbox(max_body_bytes=50_000) as sb:
        run = run_cli(tmp_path, sql, result_config(sb))
        stored = [e["event"]["event"]["deduplication_key"] for e in sb.events(TAG)]
    r = run.report
    assert r["rejected_events"] == 1 and r["failed_events"] == 0, (r["reason"], r["error"])
    assert r["events_sent"] == 2499 and len(stored) == 2499


# =============================================================================== P5: hashing/validation

def test_bug_key_value_json_object_is_misread_as_a_map(sandbox, tmp_path):
    """BUG (P5). A JSON *string* custom_data `{"key": ["currency"], "value": ["JPY"]}` is not a
    DuckDB MAP, yet transform.py `parse_custom` rewrites it to {"currency": "JPY"} and sends it. The object's
    real keys ("key", "value") are unknown custom keys: the row must be invalid, never sent
    rewritten. Expected: invalid (custom_data.key unknown). Actual: sent as currency JPY."""
    custom = json.dumps({"key": ["currency"], "value": ["JPY"]})
    run = run_cli(tmp_path, gen_sql(1, extra=f", '{custom}' AS custom_data"),
                  result_config(sandbox))
    assert run.report["invalid_records"] == 1, sandbox.events(TAG)
    assert run.report["events_sent"] == 0


# =============================================================================== P6: memory

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


def test_bug_report_memory_grows_with_interleaved_invalid_rows(tmp_path):
    """BUG (P6). report.py keeps accepted_rows / invalid_rows as RangeLists of [first, last]
    lists (ranges.py); when invalid rows are interleaved (e.g. every other row lacks a phone
    country code) each row is its own range, so the job holds O(rows) Python lists (~130 B each,
    in two lists) and to_dict() writes every accepted range into the report. 100M such rows
    means GBs. Measured here after a real ExportJob on DuckDB (dry-run sink): the report object
    after 100k alternating rows. Expected: a few MiB at most, independent of the row count.
    Actual: ~10 MiB, growing linearly."""
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


# =============================================================================== coverage

def test_coverage_mid_stream_source_error_accounting(sandbox, tmp_path):
    """coverage (P2, P4). The engine fails at row 25,000, after whole batches were streamed and sent (DuckDB CSV
    type error past the sniffer sample): exit 1, reason source_error, no traceback, the rows
    sent before stay accepted and delivered once in order, equation holds."""
    now = now_s() - 60
    path = tmp_path / "late.csv"
    with path.open("w") as fh:
        fh.write("deduplication_key,event_type,source_type,event_timestamp,email\n")
        for i in range(1, 25001):
            fh.write(f"k-{i},conversion,web,{'soon' if i == 25000 else now},u{i}@example.com\n")
    run = run_cli(tmp_path, "SELECT * FROM 'late.csv'", result_config(sandbox, max_records=5000))
    no_traceback(run)
    r = run.report
    assert run.returncode == 1 and r["reason"] == "source_error"
    # How many whole batches came out before the error depends on how far ahead the engine
    # parsed (DuckDB reads the file in parallel): at least one, never the failing row's.
    # Rows read after the last full request are reported failed, never lost or sent twice.
    sent = r["events_sent"]
    assert sent % 5000 == 0 and 5000 <= sent <= 20000 and sent <= r["rows_read"] < 25000
    assert r["failed_events"] == r["rows_read"] - sent and r["invalid_records"] == 0
    assert stored_keys(sandbox) == [f"k-{i}" for i in range(1, sent + 1)]


def test_coverage_several_culprits_with_retries_exact_isolation(sandbox, tmp_path):
    """coverage (P3). Three culprits (two adjacent in batch 1, one in batch 3) plus a 500 during
    the bisection: exactly those rows rejected, everything else delivered once, in query order."""
    sandbox.set_faults([{"reject_where": {"deduplication_key": "k-17"}},
                        {"reject_where": {"deduplication_key": "k-18"}},
                        {"reject_where": {"deduplication_key": "k-2999"}},
                        {"status": 500, "times": 1}, {"delay_s": 0.001, "times": 3},
                        {"status": 503, "times": 1}])
    run = run_cli(tmp_path, gen_sql(3000), result_config(sandbox))
    r = run.report
    assert run.returncode == 1 and r["reason"] == "events_not_accepted"
    assert sorted(x["row"] for x in r["rejected"]) == [17, 18, 2999]
    assert r["events_sent"] == 2997 and r["failed_events"] == 0 and r["retries"] == 2
    expected = [f"k-{i}" for i in range(1, 3001) if i not in (17, 18, 2999)]
    assert stored_keys(sandbox) == expected


def test_coverage_sigterm_during_retry_wait(sandbox, tmp_path):
    """coverage (P1, P2). SIGTERM (Kubernetes stop) while waiting out a Retry-After: exit 1,
    report 'interrupted', earlier batches accepted, the rest failed, no token in any output."""
    sandbox.set_faults([{"delay_s": 0.001}, {"status": 503, "retry_after": 60}])
    report = tmp_path / "r.json"
    proc = start_cli(tmp_path, gen_sql(2500), result_config(sandbox), report)
    deadline = time.monotonic() + 20
    while sandbox.stats()["requests"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc, 20)
    assert proc.returncode == 1 and "Traceback" not in err
    r = json.loads(report.read_text())
    check_equation(r)
    assert r["reason"] == "interrupted"
    assert r["accepted_rows"] == [[1, 1000]] and r["failed_events"] == r["rows_read"] - 1000
    assert TOKEN not in out + err + report.read_text()


def test_coverage_strict_mode_with_401(tmp_path):
    """coverage (P2). Strict mode, all rows valid, wrong token: one request, no retry, every row
    failed, equation holds, exit 1."""
    from connector.outputs.line_conversion.sandbox import run_sandbox

    with run_sandbox(tags={TAG: "right-token"}) as sb:
        run = run_cli(tmp_path, gen_sql(1500),
                      result_config(sb, ignore_invalid_records=False, max_retry=3))
        assert sb.stats()["requests"] == 1
    r = run.report
    assert run.returncode == 1 and r["reason"] == "send_failed"
    assert r["failed_events"] == r["rows_read"] == 1500 and r["events_sent"] == 0
    run.assert_no_secret("right-token")


def test_coverage_phone_and_email_variants_hash_like_the_vectors(sandbox, tmp_path):
    """coverage (P5). Formatting variants of the contract's vectors hash to the same digest
    through the real pipeline (fast path and reference); pre-hashed upper-case is lower-cased,
    never re-hashed; dry-run file and report hold no raw value."""
    email_h = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
    phone_h = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
    ts = now_s() - 60
    rows = [("+818012345678", " Taro.Yamada@Example.com "),
            ("+81 80-1234-5678", "TARO.YAMADA@EXAMPLE.COM"),
            ("+81 (80) 1234 5678", email_h.upper()),
            ("080-1234-5678", "\ttaro.yamada@example.com\n"),
            (phone_h.upper(), email_h)]
    write_csv(tmp_path / "v.csv", [
        {"deduplication_key": f"v-{i}", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "phone": p, "email": e} for i, (p, e) in enumerate(rows)])
    out = tmp_path / "dry.jsonl"
    run = run_cli(tmp_path, "SELECT * FROM read_csv('v.csv', all_varchar=true)",
                  result_config(sandbox, default_phone_region="JP"), "--dry-run", str(out))
    assert run.returncode == 0, run.stderr
    events = [ev for line in out.read_text().splitlines() for ev in json.loads(line)]
    assert [(e["user"]["phone"], e["user"]["email"]) for e in events] == [(phone_h, email_h)] * 5
    text = out.read_text() + blob(run)
    for raw in ("Taro.Yamada", "taro.yamada@", "8012345678"):
        assert raw not in text


def test_coverage_invalid_samples_masked_and_reasons_name_column_and_rule(sandbox, tmp_path):
    """coverage (P1, P2). Invalid raw email/phone/line_uid values appear only masked; each sample
    names its column and rule; invalid rows are never sent."""
    ts = now_s() - 60
    write_csv(tmp_path / "bad.csv", [
        {"deduplication_key": "b-1", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "email": "taro.leak@@example.com", "phone": "", "line_uid": ""},
        {"deduplication_key": "b-2", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "email": "", "phone": "8012345678", "line_uid": ""},
        {"deduplication_key": "b-3", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "email": "", "phone": "",
         "line_uid": "U" + "a" * 32},
        {"deduplication_key": "b-4", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "email": "ok@example.com", "phone": "", "line_uid": ""},
    ])
    run = run_cli(tmp_path, "SELECT * FROM read_csv('bad.csv', all_varchar=true)",
                  result_config(sandbox))
    r = run.report
    assert (r["events_sent"], r["invalid_records"]) == (1, 3)
    got = {(s["row"], s["column"], s["rule"]) for s in r["invalid_samples"]}
    assert got == {(1, "email", "format"), (2, "phone", "country_code"),
                   (3, "line_uid", "channel_id")}
    for raw in ("taro.leak", "8012345678", "a" * 32):
        assert raw not in blob(run)
    assert stored_keys(sandbox) == ["b-4"]
