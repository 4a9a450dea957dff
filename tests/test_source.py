"""Source: database URLs, secrets in them, and engine errors."""
from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import CancelToken, ExportSpec, run_export
from connector.errors import ConfigError
from connector.source import safe_url, url_secrets
from helpers import no_traceback, now_s, result_config, run_cli, stored_keys


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


def test_mistyped_duckdb_path_is_an_error_not_an_empty_database(tmp_path):
    """DuckDB files are opened read-only: a path that does not exist is an error (exit 1), not
    a new empty database that would export nothing."""
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"),
                  "--database", f"duckdb:///{tmp_path}/no-such.duckdb")
    assert run.returncode == 1 and "does not exist" in run.stderr
    assert not (tmp_path / "no-such.duckdb").exists()


def test_engine_error_mid_stream_keeps_sent_rows_and_accounts_for_the_rest(sandbox, tmp_path):
    """The engine fails at row 25,000 after whole batches were streamed and sent (a DuckDB CSV
    type error past the sniffer's sample): exit 1, reason source_error, no traceback. The rows
    sent before stay accepted and are delivered once, in order; rows read after the last full
    request are reported failed, so the counts add up."""
    now = now_s() - 60
    path = tmp_path / "late.csv"
    with path.open("w") as fh:
        fh.write("deduplication_key,event_type,source_type,event_timestamp,email\n")
        for i in range(1, 25001):
            fh.write(f"k-{i},conversion,web,{'soon' if i == 25000 else now},u{i}@example.com\n")
    run = run_cli(tmp_path, "SELECT * FROM 'late.csv'",
                  result_config(sandbox, max_records=5000, parallelism=1))
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


def test_embedded_duckdb_gets_a_memory_cap_and_its_own_spill_directory(tmp_path):
    """Without a cap DuckDB keeps every block it read; a read-only database file has no place
    beside it for spills. The URL overrides both."""
    import os

    from connector.source import Source
    from connector.source.engine import DUCKDB_MEMORY_LIMIT

    def settings(url: str) -> tuple[str, str, Source]:
        src = Source(url)
        with src._connection() as conn:
            limit, temp = conn.exec_driver_sql(
                "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
            ).fetchone()
        return limit, temp, src

    limit, temp, src = settings("duckdb:///:memory:")
    assert limit == f"{int(DUCKDB_MEMORY_LIMIT.removesuffix('MB')) * 10**6 / 2**20:.1f} MiB"
    assert os.path.isdir(temp) and os.path.basename(temp).startswith("connector-duckdb-")
    src.dispose()
    assert not os.path.exists(temp)
    own = tmp_path / "spill"
    own.mkdir()
    limit, temp, src = settings(f"duckdb:///:memory:?memory_limit=1GB&temp_directory={own}")
    assert limit == "953.6 MiB" and temp == str(own)
    src.dispose()
    assert own.exists()




def test_sources_on_one_file_share_its_spill_directory_while_any_is_open(tmp_path):
    """DuckDB refuses a second connection to a file with another configuration: Sources on one
    file in one process (a workflow's parallel exports) read at once, through one spill
    directory, removed with the last of them."""
    import os
    import threading

    import duckdb

    from connector.source import Source

    db = tmp_path / "events.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE t AS SELECT range AS i FROM range(100000)").close()
    sources = [Source(f"duckdb:///{db}", partition_rows=1000) for _ in range(3)]
    counts: list[int] = []
    start = threading.Barrier(len(sources))

    def read(src: Source) -> None:
        start.wait()
        with src.stream("SELECT i FROM t ORDER BY i DESC") as stream:
            counts.append(sum(len(p) for p in stream.partitions))

    threads = [threading.Thread(target=read, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [100000] * 3
    temp = {s._temp_dir for s in sources}
    assert len(temp) == 1
    (path,) = temp
    for src in sources[:-1]:
        src.dispose()
        os.makedirs(path, exist_ok=True)  # as DuckDB would when it spills
        assert os.path.isdir(path)
    sources[-1].dispose()
    assert not os.path.exists(path)
# --------------------------------------------------------------------------- malformed URLs
# Generated database URLs on loopback (nothing here may reach another host): a password, then
# ports and other parts of every shape. A URL is refused with exit 2 and a one-line message that
# never shows the password, or it is used: the run ends in a report, still without the password.

_PASSWORDS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789-._~",
                     min_size=8, max_size=16)
_PORTS = st.one_of(st.none(), st.integers(-5, 70_000).map(str),
                   st.sampled_from(["", "abc", "80a", "8O", "+80", "0x50", "８０", "99999", "65536",
                                    "0", "-1", " 80", "1e3"]),
                   st.text(alphabet=st.characters(blacklist_characters="/?#@\x00"), max_size=6))


@st.composite
def _database_urls(draw: Any) -> tuple[str, str, str | None]:
    """(url, password, port text)"""
    scheme = draw(st.sampled_from(["duckdb", "sqlite", "trino", "postgresql", "nosuchdb",
                                   "duckdb+x", "trino+https"]))
    password = draw(_PASSWORDS)
    host = draw(st.sampled_from(["127.0.0.1", "localhost", "[::1]", ""]))
    port = draw(_PORTS)
    tail = draw(st.sampled_from(["", "/", "/db", "/memory/default", "/:memory:",
                                 "/db?access_token=" + password, "/db?x=%zz"]))
    url = f"{scheme}://me:{password}@{host}" + ("" if port is None else f":{port}") + tail
    return url, password, port


@settings(max_examples=max(10, settings.default.max_examples // 2),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(generated=_database_urls())
def test_generated_database_urls_are_refused_or_used_without_the_password(generated, tmp_path):
    url, password, port = generated
    spec = ExportSpec(query="SELECT 1 AS x", output=result_config(None, access_token="tok-12345"),
                      database_url=url, dry_run_path=str(tmp_path / "out.jsonl"))
    try:
        report = run_export(spec, CancelToken())
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) <= 1000, message
        assert password not in message and "--database" in message
        return
    # Used: only a well-formed port gets this far (each engine then fails or runs).
    assert port is None or (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535), url
    text = json.dumps(report.to_dict())
    assert password not in text


@pytest.mark.parametrize("url", [
    "postgresql://me:pw-Secret-77@127.0.0.1:abc/db", "trino://me:pw-Secret-77@127.0.0.1:99999/c",
    "trino://me:pw-Secret-77@[::1:8080/c", "duckdb://me:pw-Secret-77@:x/", "::::",
    "trino://me:pw-Secret-77@127.0.0.1:/c?access_token=pw-Secret-77", "",
])
def test_malformed_database_url_is_exit_2_without_the_password(tmp_path, url):
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x-12345"),
                  "--database", url)
    no_traceback(run)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--database" in lines[0]
    run.assert_no_secret("pw-Secret-77")
