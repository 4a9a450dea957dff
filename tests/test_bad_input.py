"""Bad input ends with a clear message and the documented exit status, never a traceback.

Exit 2 means bad usage or configuration, found before any query runs: a token that cannot be sent,
paths that cannot be written, query and --result files that are not UTF-8. The CLI runs as a
subprocess against the embedded DuckDB and the sandbox on loopback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import TOKEN, gen_sql, no_traceback, result_config, run_cli

PY = sys.executable


def test_non_ascii_token_is_a_configuration_error(sandbox, tmp_path):
    """A token holding a non-ASCII character cannot be sent as an HTTP header. It is a
    configuration error: exit 2, a message naming access_token, no traceback."""
    run = run_cli(tmp_path, gen_sql(5), result_config(sandbox),
                  env={"TEST_LINE_TOKEN": "tök-SECRET-7f3a9c1e5b"})
    no_traceback(run)
    assert run.returncode == 2
    assert "access_token" in run.stderr


def test_unwritable_dry_run_path_is_exit_2(sandbox, tmp_path):
    """--dry-run into a directory that does not exist is checked before the query runs: exit 2
    with a one-line message, no traceback."""
    run = run_cli(tmp_path, gen_sql(3), result_config(sandbox), "--dry-run",
                  str(tmp_path / "no-such-dir" / "out.jsonl"))
    no_traceback(run)
    assert run.returncode == 2


def test_unwritable_report_file_is_exit_2_before_anything_is_sent(sandbox, tmp_path):
    """--report-file into a directory that does not exist is checked before the query runs:
    exit 2, no traceback, and nothing is sent. A job must not send every event and only then
    fail because its report cannot be written."""
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


def test_query_file_not_in_utf8_is_exit_2(sandbox, tmp_path):
    """A query file that is not UTF-8 (Shift_JIS, Latin-1) is exit 2 with a clean message, no
    traceback."""
    query = tmp_path / "q.sql"
    query.write_bytes(gen_sql(1).encode() + b" -- caf\xe9\n")
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", json.dumps(result_config(sandbox))],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN})
    assert "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.returncode == 2


def test_result_file_not_in_utf8_is_exit_2_without_the_token(sandbox, tmp_path):
    """A `--result @file` that is not UTF-8 is exit 2 with a clean message: no traceback, and
    the token in the file is not echoed."""
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
