"""SIGINT and SIGTERM stop an export cleanly, wherever they land.

Exit 1, reason `interrupted`, no traceback, and a report whose accepted rows are exactly what the
API accepted: while the engine runs the query, while a rejected batch is bisected, and while a
Retry-After is waited out. The CLI runs as a subprocess against the sandbox on loopback.
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

from helpers import TOKEN, check_equation, gen_sql, now_s, result_config, stored_keys

PY = sys.executable


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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_while_the_engine_runs_the_query_writes_the_report(sandbox, tmp_path, sig):
    """An interrupt while the engine is still executing the query, before any row came out,
    ends the export with exit 1, no traceback, and a report file with reason `interrupted`
    whose counts add up; the driver's own error for the interrupted query is not a crash.
    SIGTERM (a container stop) ends it the same way as SIGINT."""
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


def test_interrupt_during_bisection_keeps_the_rows_already_accepted(sandbox, tmp_path):
    """A batch of 1,000 rows is rejected because of row 900 and bisected; the first half
    (rows 1-500) is accepted, and the interrupt arrives while the second half is in flight. The
    report counts rows 1-500 as accepted and sent: rows the API confirmed are never reported
    failed."""
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


def test_sigterm_during_a_retry_wait_reports_accepted_and_failed_rows(sandbox, tmp_path):
    """SIGTERM (a Kubernetes stop) while waiting out a 60-second Retry-After: exit 1, no
    traceback, reason `interrupted`; the batch accepted before (rows 1-1000) is reported
    accepted, every other row read is reported failed, and no output holds the token."""
    sandbox.set_faults([{"delay_s": 0.001}, {"status": 503, "retry_after": 60}])
    report = tmp_path / "r.json"
    # One request at a time: the first batch is accepted, the second meets the 503.
    proc = start_cli(tmp_path, gen_sql(2500), result_config(sandbox, parallelism=1), report)
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
