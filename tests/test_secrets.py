"""Secrets and personal data never reach what the exporter shows.

The LINE token and database credentials, and raw emails and phone numbers from the data, stay out
of stdout, stderr, the report file and the dry-run file on every path, failures included. The CLI
runs as a subprocess against the embedded DuckDB and the sandbox on loopback.
"""
from __future__ import annotations

import json
import subprocess
import sys

from helpers import (TAG, TOKEN, blob, gen_sql, no_traceback, now_s, result_config, run_cli,
                     stored_keys, write_csv)

PY = sys.executable
LEAK_EMAIL = "taro.leak@example.com"


def test_token_with_trailing_space_is_refused_and_never_written(sandbox, tmp_path):
    """A token with a trailing space (a common copy-paste slip) is not a valid HTTP header
    value. The export refuses it (exit 1 or 2) and never writes the token: not on stdout or
    stderr, and not in the report file's `error`."""
    secret = TOKEN + " "
    run = run_cli(tmp_path, gen_sql(5), result_config(sandbox, max_retry=1),
                  env={"TEST_LINE_TOKEN": secret})
    assert run.returncode in (1, 2)
    assert TOKEN not in json.dumps(run.report or {}), run.report and run.report["error"]
    run.assert_no_secret()


def test_custom_data_key_holding_an_email_is_never_shown(sandbox, tmp_path):
    """custom_data keys can be personal data (a MAP or JSON column keyed by addresses). A row
    with an unknown key is invalid and counted under the custom_data column; a key that does
    not look like a code is never shown: not in invalid_by_column, not in invalid_samples, not
    on stderr. Counting under the column also keeps invalid_by_column bounded."""
    custom = json.dumps({LEAK_EMAIL: 1})
    sql = gen_sql(3, extra=f", '{custom}' AS custom_data")
    run = run_cli(tmp_path, sql, result_config(sandbox))
    assert run.report["invalid_records"] == 3
    assert LEAK_EMAIL not in blob(run), run.report["invalid_by_column"]


def test_engine_error_quoting_a_row_never_shows_its_email(sandbox, tmp_path):
    """An engine error can quote the data: DuckDB's CSV reader reports a bad value mid-stream
    with the whole offending line ("Original Line: k-25000,...,<address>"). The export fails
    (exit 1) and the engine's message reaches stderr and the report without the row's data, so
    an address from the data appears nowhere."""
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


def test_email_in_a_visible_column_is_masked_in_samples(sandbox, tmp_path):
    """Invalid-row samples show event_type, event_name, source_type and event_timestamp in
    clear, since they hold codes and times. When a CSV's columns are shifted such a cell can
    hold an address: a value that does not look like a code is masked in invalid_samples and in
    the stderr summary, so the address appears nowhere."""
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


def test_database_password_never_shown_when_the_driver_refuses_to_connect(sandbox, tmp_path):
    """A driver may refuse its connect() arguments with an error that lists them, password
    included (DuckDB does for a user and password, which it does not take). The export ends
    with a clean error (exit 1 or 2, no traceback), and the password from the database URL
    appears nowhere."""
    secret = "db-SECRET-pw-91c4"
    run = run_cli(tmp_path, gen_sql(1), result_config(sandbox),
                  "--database", "duckdb://me:${DB_PW}@/:memory:", env={"DB_PW": secret})
    assert secret not in blob(run), run.stderr[-400:]
    no_traceback(run)
    assert run.returncode in (1, 2)


def test_split_result_argument_never_echoes_the_token(sandbox, tmp_path):
    """An unquoted --result JSON is split by the shell into several arguments. The usage error
    (exit 2) does not echo the unrecognised arguments, which hold the token. A token given on
    the command line is a supported form (test_token_never_leaks uses it), so this path must
    not leak either."""
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(1))
    proc = subprocess.run(
        [PY, "-m", "connector", str(query), "--result", '{"type": "line_conversion",',
         f'"access_token": "{TOKEN}", "line_tag_id": "{TAG}"}}'],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert TOKEN not in proc.stdout + proc.stderr, proc.stderr


def test_invalid_samples_are_masked_and_name_column_and_rule(sandbox, tmp_path):
    """Invalid raw email, phone and line_uid values appear in the report only masked; each
    sample names its row, column and rule; invalid rows are never sent."""
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


def test_custom_data_samples_name_the_key_and_mask_only_what_may_be_personal(tmp_path):
    """An invalid custom_data value is reported at its key path (custom_data.value), with the
    value itself when it is an amount or a code, and masked when it is free text (a category
    or an item id may be anything). Both ways of encoding agree."""
    cases = [
        ({"value": -5}, "custom_data.value", "-5"),
        ({"currency": "usd"}, "custom_data.currency", "usd"),
        ({"quantity": 1.5}, "custom_data.quantity", "1.5"),
        ({"category": LEAK_EMAIL + "x" * 300}, "custom_data.category", None),
        ({"item_ids": [LEAK_EMAIL] * 101}, "custom_data.item_ids", None),
    ]
    rows = [{"deduplication_key": f"k-{i}", "event_type": "conversion", "source_type": "web",
             "event_timestamp": now_s() - 60, "email": "a@example.com",
             "custom_data": json.dumps(custom)} for i, (custom, _, _) in enumerate(cases)]
    write_csv(tmp_path / "c.csv", rows)
    for extra in ([], ["--no-pushdown"]):
        run = run_cli(tmp_path, "SELECT * FROM 'c.csv'", result_config(None, access_token="tok-123"),
                      "--dry-run", str(tmp_path / "out.jsonl"), *extra)
        samples = run.report["invalid_samples"]
        assert [s["column"] for s in samples] == [path for _, path, _ in cases]
        for sample, (_, _, shown) in zip(samples, cases):
            if shown is not None:
                assert sample["value"] == shown
            else:
                assert "***" in sample["value"] and sample["value"] != "{***"
        assert LEAK_EMAIL not in blob(run)
        assert f"custom_data.value {samples[0]['reason']} (value -5)" in run.stderr
