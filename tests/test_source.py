"""Source: database URLs, secrets in them, and engine errors."""
from __future__ import annotations

import socket

import pytest

from connector.source import safe_url, url_secrets
from helpers import result_config, run_cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_safe_url_hides_password_and_token():
    url = "trino://me:pa55word@h:443/hive/web?access_token=eyJhbGciOi.secret&source=x"
    shown = safe_url(url)
    assert "pa55word" not in shown and "eyJhbGciOi.secret" not in shown and "source=x" in shown
    assert set(url_secrets(url)) == {"pa55word", "eyJhbGciOi.secret"}


@pytest.mark.parametrize("url", [
    "trino://me:${DB_SECRET}@127.0.0.1:{port}/memory/default",
    "trino://me@127.0.0.1:{port}/memory/default?access_token=${DB_SECRET}",
])
def test_trino_credentials_from_env_never_leak(tmp_path, url):
    secret = "s3cr3t-Db-Credential-991"
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"),
                  "--database", url.replace("{port}", str(_closed_port())),
                  env={"DB_SECRET": secret})
    assert run.returncode == 1  # cannot connect: a job failure, not a traceback
    assert "Traceback" not in run.stderr
    assert "cannot connect" in run.stderr or "query failed" in run.stderr
    run.assert_no_secret(secret)


def test_unknown_database_driver_is_exit_2(tmp_path):
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"),
                  "--database", "nosuchdb://u:pw-123456@h/db")
    assert run.returncode == 2 and "pw-123456" not in run.stderr


def test_missing_env_in_database_url_is_exit_2(tmp_path):
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"),
                  "--database", "trino://me:${NOT_SET_ANYWHERE}@h:443/c")
    assert run.returncode == 2 and "NOT_SET_ANYWHERE" in run.stderr


def test_database_url_from_environment(tmp_path):
    db = tmp_path / "src.duckdb"
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT 'k1' AS deduplication_key, 'conversion' AS event_type,"
                " 'web' AS source_type, CAST(epoch(now()) AS BIGINT) - 60 AS event_timestamp,"
                " 'a@example.com' AS email")
    con.close()
    out = tmp_path / "b.jsonl"
    run = run_cli(tmp_path, "SELECT * FROM t", result_config(None, access_token="x"),
                  "--dry-run", str(out), env={"CONNECTOR_DATABASE_URL": f"duckdb:///{db}"})
    assert run.returncode == 0, run.stderr
    assert run.report["events_sent"] == 1
