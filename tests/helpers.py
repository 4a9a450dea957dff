"""Helpers shared by the tests: the real CLI as a subprocess, result settings for the sandbox,
the report's invariant, query and data builders, what the sandbox stored, column bindings and
rows for the encoder tests, and where the local Trino test server is."""
from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Sequence

import orjson
import pytest

from connector.mapping import ColumnBinding, bind_columns
from connector.outputs.base import InvalidRecord
from connector.source import Source
from connector.outputs.line_conversion.fields import KNOWN_COLUMNS

REPO = Path(__file__).resolve().parents[1]
TAG = "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"
TOKEN = "tok-SECRET-7f3a9c1e5b"  # any leak of this string in output is a bug


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    elapsed: float

    def assert_no_secret(self, *secrets: str) -> None:
        blob = self.stdout + self.stderr + json.dumps(self.report or {})
        for s in (TOKEN, *secrets):
            assert s not in blob, f"secret {s[:3]}... leaked into output"


def check_equation(report: dict[str, Any]) -> None:
    assert report["rows_read"] == (report["events_sent"] + report["invalid_records"]
                                   + report["rejected_events"] + report["failed_events"]), report


def result_config(sandbox: Any = None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"type": "line_conversion", "line_tag_id": TAG,
                              "access_token": "${TEST_LINE_TOKEN}", "initial_retry_wait": 1}
    if sandbox is not None:
        config["endpoint"] = sandbox.url
    config.update(overrides)
    return config


def cli_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the CLI runs in: the test's token, and a config home of its own (saved
    connections and secrets never touch the real home directory)."""
    full_env = {k: v for k, v in os.environ.items()
                if k != "CONNECTOR_DATABASE_URL" and not k.startswith("CONNECTOR_SECRET_")}
    full_env.update({"TEST_LINE_TOKEN": TOKEN,
                     "CONNECTOR_CONFIG_HOME": str(tmp_path / "config-home"), **(env or {})})
    return full_env


def run_cli(tmp_path: Path, sql: str, config: dict[str, Any] | None, *extra: str,
            env: dict[str, str] | None = None, timeout: float = 300) -> CliRun:
    """The export command on `sql`, with `--result config` (None: the output comes from
    `extra`, e.g. --result-connection) and a report file."""
    query = tmp_path / f"q-{uuid.uuid4().hex[:8]}.sql"
    query.write_text(sql)
    report_path = tmp_path / f"report-{uuid.uuid4().hex[:8]}.json"
    result = [] if config is None else ["--result", json.dumps(config)]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "connector", str(query), *result,
         "--report-file", str(report_path), *extra],
        capture_output=True, text=True, env=cli_env(tmp_path, env), cwd=tmp_path,
        timeout=timeout,
    )
    elapsed = time.monotonic() - start
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is not None:
        check_equation(report)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, report, elapsed)


def run_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                input: str | None = None, timeout: float = 120) -> CliRun:
    """`python -m connector ARGS...` (any command), in `tmp_path` with its own config home."""
    stdin: dict[str, Any] = {"stdin": subprocess.DEVNULL} if input is None else {"input": input}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                          text=True, env=cli_env(tmp_path, env), cwd=tmp_path, timeout=timeout,
                          **stdin)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, None, time.monotonic() - start)


def run_connector(cwd: Path, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m connector ARGS...` in `cwd`, with the test token in the environment and the
    state database under `cwd` (XDG_STATE_HOME) unless `env` says otherwise."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("CONNECTOR_DATABASE_URL", "CONNECTOR_STATE_URL")}
    full_env.update({"TEST_LINE_TOKEN": TOKEN, "XDG_STATE_HOME": str(cwd / "state"), **(env or {})})
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


def run_main(argv: Sequence[str]) -> tuple[int, str, str]:
    """The command line in-process (fast enough for generated inputs): (exit status, stdout,
    stderr). The caller sets the environment (TEST_LINE_TOKEN)."""
    import contextlib
    import io

    from connector import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


def run_cli_peak_rss(tmp_path: Path, sql: str, config: dict[str, Any],
                     *extra: str) -> tuple[dict[str, Any], int]:
    """Run the CLI, sampling its RSS; returns (report, peak RSS in bytes). Must succeed."""
    import psutil

    query = tmp_path / f"q-{uuid.uuid4().hex[:8]}.sql"
    query.write_text(sql)
    report = tmp_path / f"r-{uuid.uuid4().hex[:8]}.json"
    env = {k: v for k, v in os.environ.items() if k != "CONNECTOR_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--quiet", "--report-file", str(report),
         "--result", json.dumps(config), *extra], env={**env, "TEST_LINE_TOKEN": TOKEN})
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    assert proc.returncode == 0
    result = json.loads(report.read_text())
    check_equation(result)
    return result, peak


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def now_s() -> int:
    return int(time.time())


def gen_sql(n: int, extra: str = "", start: int = 1) -> str:
    """n valid conversions generated by DuckDB (keys k-<start>...), plus the `extra` columns."""
    return f"""
        SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type,
               'Purchase' AS event_name, 'web' AS source_type,
               {now_s() - 60} AS event_timestamp, 'user' || i || '@example.com' AS email {extra}
        FROM range({start}, {start + n}) t(i)
    """


def generated_sql(n: int, invalid_every: int = 0) -> str:
    """n rows generated by DuckDB; with invalid_every=k, every k-th row has a bad event_type."""
    bad = (f"CASE WHEN i % {invalid_every} = 0 THEN 'purchase' ELSE 'conversion' END"
           if invalid_every else "'conversion'")
    return f"""
        SELECT 'k-' || i AS deduplication_key, {bad} AS event_type, 'Purchase' AS event_name,
               'web' AS source_type, {now_s() - 60} AS event_timestamp,
               'user' || i || '@example.com' AS email
        FROM range(1, {n + 1}) t(i)
    """


def stored_keys(sandbox: Any) -> list[str]:
    """The deduplication keys the sandbox stored for TAG, in the order it stored them."""
    return [e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG)]


def blob(run: CliRun) -> str:
    """Everything a CLI run showed: stdout, stderr and the report."""
    return run.stdout + run.stderr + json.dumps(run.report or {})


def no_traceback(run: CliRun) -> None:
    assert "Traceback" not in run.stderr, run.stderr[-1500:]


def line_binding(names: Sequence[str], types: Sequence[str] | None = None) -> ColumnBinding:
    """The LINE output's binding of these query columns (no required-column check)."""
    return bind_columns(list(names), output="line_conversion", required=(), known=KNOWN_COLUMNS,
                        types=types)


def line_columns(names: Sequence[str]) -> dict[str, int]:
    """Output column -> row position, as the pipeline hands it to the LINE encoder."""
    return dict(line_binding(names).index)


# --------------------------------------------------------------------------- encoder equivalence
# Rows of the benchmark's generator the equivalence tests compare, per parameter set.
N_GENERATED = 20_000


def outcome(encode: Any, row: Any) -> Any:
    """An encoder's verdict on a row: its bytes, or ("invalid", column, rule, reason)."""
    try:
        return encode(row)
    except InvalidRecord as err:
        return ("invalid", err.column, err.rule, err.reason)


def fetch_rows(url: str, sql: str) -> tuple[list[str], list[Any]]:
    """The query's columns and every row, through the exporter's own Source."""
    src = Source(url)
    try:
        with src.stream(sql) as stream:
            rows = [row for part in stream.partitions for row in part]
            return stream.columns, rows
    finally:
        src.dispose()


# Hand-written edge cases for the encoders ($NOW is replaced by the test's clock).
EDGE_SQL = r"""
WITH base AS (
  SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, 'Purchase' AS event_name,
         'web' AS source_type, $NOW::BIGINT - 60 AS event_timestamp,
         'a@example.com' AS email, NULL::VARCHAR AS phone, NULL::VARCHAR AS line_uid,
         NULL::VARCHAR AS click_id, NULL::VARCHAR AS browser_id, NULL::VARCHAR AS ifa,
         NULL::VARCHAR AS external_id, 'https://x.example/' AS url, NULL::VARCHAR AS referrer,
         NULL::VARCHAR AS title, NULL::VARCHAR AS user_agent, NULL::VARCHAR AS ip_address, i
  FROM range(40) t(i)
)
SELECT
  CASE i WHEN 1 THEN 'undefined' WHEN 2 THEN '' WHEN 3 THEN repeat('a', 257) WHEN 4 THEN 'a b'
         ELSE deduplication_key END AS deduplication_key,
  CASE i WHEN 5 THEN 'Conversion' WHEN 6 THEN '' ELSE event_type END AS event_type,
  CASE i WHEN 7 THEN '' WHEN 8 THEN repeat('n', 21) WHEN 9 THEN 'bad name' ELSE event_name END AS event_name,
  CASE i WHEN 10 THEN 'app' ELSE source_type END AS source_type,
  CASE i WHEN 11 THEN -5 WHEN 12 THEN $NOW::BIGINT + 2 * 86400 WHEN 13 THEN $NOW::BIGINT - 100 * 86400
         WHEN 14 THEN ($NOW::BIGINT - 60) * 1000 ELSE event_timestamp END AS event_timestamp,
  CASE i WHEN 15 THEN chr(12288) || 'Taro@Example.COM' || chr(160) WHEN 16 THEN upper(sha256('x'))
         WHEN 17 THEN ' ' || sha256('y') || ' ' WHEN 18 THEN 'taro@例え.jp' WHEN 19 THEN ''
         WHEN 20 THEN NULL WHEN 21 THEN repeat('f', 63) || 'g' ELSE email END AS email,
  CASE i WHEN 20 THEN NULL WHEN 21 THEN '+1 415 555 2671' WHEN 22 THEN '+14155552671'
         WHEN 23 THEN '+11234567890' WHEN 24 THEN '+810312345678' WHEN 25 THEN '+999123456'
         WHEN 26 THEN '+12' WHEN 27 THEN '+8190123456789012' WHEN 28 THEN '０９０１２３４５６７８'
         WHEN 29 THEN '09012345678' WHEN 30 THEN ' +819012345678 ' WHEN 31 THEN '+39 06 1234 5678'
         WHEN 32 THEN '+390612345678' WHEN 33 THEN '+٨١٩٠١٢٣٤٥٦٧٨' ELSE phone END AS phone,
  CASE i WHEN 34 THEN 'U' || md5('z') WHEN 35 THEN 'U' || upper(md5('z')) ELSE line_uid END AS line_uid,
  CASE i WHEN 36 THEN 'ab-c_1' WHEN 37 THEN 'ab c' ELSE click_id END AS click_id,
  CASE i WHEN 38 THEN '0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d' || chr(10) ELSE browser_id END AS browser_id,
  ifa,
  CASE i WHEN 39 THEN 'undefined' WHEN 0 THEN '' ELSE external_id END AS external_id,
  CASE i WHEN 1 THEN 'http://' WHEN 2 THEN 'https://a' || chr(10) || 'b' WHEN 3 THEN repeat('h', 2049) ELSE url END AS url,
  CASE i WHEN 4 THEN repeat('r', 2049) WHEN 5 THEN '' ELSE referrer END AS referrer,
  CASE i WHEN 6 THEN repeat('t', 1025) WHEN 7 THEN 'a "q" \ b' || chr(1) || chr(127) || '😀' ELSE title END AS title,
  CASE i WHEN 8 THEN '' WHEN 9 THEN 'UA' || chr(0) ELSE user_agent END AS user_agent,
  CASE i WHEN 10 THEN '::1' WHEN 11 THEN '1.2.3' WHEN 12 THEN '01.2.3.4' WHEN 13 THEN 'fe80::1%eth0'
         WHEN 14 THEN ' 1.2.3.4' ELSE ip_address END AS ip_address
FROM base ORDER BY i
"""


# --------------------------------------------------------------------------- local Trino server
# Started by `bash .ci/trino.sh start`; TRINO_PORT overrides the port.
TRINO_DEFAULT_PORT = 18080


def trino_port() -> int:
    return int(os.environ.get("TRINO_PORT") or TRINO_DEFAULT_PORT)


def trino_url(timeout: float = 2.0) -> str | None:
    """SQLAlchemy URL of the local Trino server if it is up and ready, else None.

    Ready means `GET /v1/info` answers with `"starting": false`.
    """
    port = trino_port()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=timeout) as resp:
            info = json.load(resp)
    except (OSError, ValueError):  # URLError, refused, timeout, bad JSON
        return None
    if not isinstance(info, dict) or info.get("starting") is not False:
        return None
    return f"trino://test@127.0.0.1:{port}/memory/default"


def required_service_missing(message: str) -> None:
    """A test's service is not there: it fails under CI=true (CI installs and starts every
    service), and skips elsewhere with `message` saying how to start it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


# --------------------------------------------------------------------------- headless Chromium
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def find_chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    required_service_missing("headless Chromium is needed for the web page tests: "
                             "apt-get install -y chromium (Debian package, /usr/bin/chromium)")
    raise AssertionError("unreachable")


def dump_dom(chromium: str, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="sandbox-chromium-") as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class ById(HTMLParser):
    """Text content and attributes of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.body: dict[str, Any] = {}
        self.rows: dict[str, int] = {}
        self._stack: list[tuple[str, str | None]] = []
        self._tables: list[str | None] = []
        self.html = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table":
            self._tables.append(a.get("id"))
        if tag == "tr" and self._tables and self._tables[-1]:
            self.rows[self._tables[-1]] = self.rows.get(self._tables[-1], 0) + 1
        if tag in VOID:
            return
        element_id = a.get("id")
        if element_id:
            self.text[element_id] = ""
            self.attrs[element_id] = a
        self._stack.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables.pop()
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._stack:
            if element_id:
                self.text[element_id] += data


class DevTools:
    """Headless Chromium driven over its DevTools pipe (file descriptors 3 and 4): open a page
    in a window of a given size and evaluate JavaScript in it, to measure the layout."""

    def __init__(self, chromium: str) -> None:
        import fcntl

        self._profile = tempfile.TemporaryDirectory(prefix="sandbox-chromium-")
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        # Out of the way of 3 and 4, which the child's copies must take.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_child, from_child)]
        for fd in (to_child, from_child):
            os.close(fd)

        def child_pipes() -> None:
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self._proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={self._profile.name}",
             "about:blank"],
            pass_fds=(3, 4, *ends), preexec_fn=child_pipes, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self._write, self._read = from_parent, to_parent
        self._id = 0
        self._buffer = b""
        self._session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self._session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._write, orjson.dumps(message) + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" not in self._buffer:
                assert time.monotonic() < deadline, f"no answer to {method}"
                chunk = os.read(self._read, 1 << 16)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = orjson.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def open(self, url: str, width: int, height: int) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        os.close(self._write)
        os.close(self._read)
        self._profile.cleanup()


# --------------------------------------------------------------------------- local PostgreSQL
# Started by `bash .ci/postgres.sh start` on 127.0.0.1; PG_PORT overrides the port.
PG_DEFAULT_PORT = 15432


def postgres_port() -> int:
    return int(os.environ.get("PG_PORT") or PG_DEFAULT_PORT)


def postgres_admin_url() -> str | None:
    """SQLAlchemy URL of the local PostgreSQL server's `postgres` database, if it answers."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres_port()}/postgres"
    try:
        with socket.create_connection(("127.0.0.1", postgres_port()), timeout=2):
            pass
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={postgres_port()} user=postgres "
                             "dbname=postgres connect_timeout=5"):
            pass
    except Exception:  # noqa: BLE001 - any failure means: not usable here
        return None
    return url


def postgres_database(name: str) -> str:
    """A fresh database `name` on the local PostgreSQL server (dropped first if it exists);
    its SQLAlchemy URL. Fails under CI=true, skips elsewhere, when the server is missing."""
    if postgres_admin_url() is None:
        required_service_missing(f"no PostgreSQL server on 127.0.0.1:{postgres_port()} (start "
                                 "one with: bash .ci/postgres.sh start)")
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={postgres_port()} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{postgres_port()}/{name}"


# --------------------------------------------------------------------------- scheduler helpers
class ManualClock:
    """A clock a test moves by hand (the scheduler service itself reads real time)."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start

    def now(self) -> float:
        return self.t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def slot_query(events: int = 3, prefix: str = "k") -> str:
    """DuckDB SQL for `events` conversions whose deduplication keys name the slot they were
    exported for: `{prefix}-{TD_SCHEDULED_TIME()}-{i}`."""
    return (f"SELECT '{prefix}-' || CAST(TD_SCHEDULED_TIME() AS VARCHAR) || '-' || CAST(i AS VARCHAR)"
            " AS deduplication_key, 'conversion' AS event_type, 'Purchase' AS event_name, "
            "'web' AS source_type, CAST(epoch(now()) AS BIGINT) - 60 AS event_timestamp, "
            f"'u' || CAST(i AS VARCHAR) AS external_id FROM range({events}) t(i)")


def start_scheduler(cwd: Path, *args: str, env: dict[str, str] | None = None,
                    name: str = "scheduler") -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m connector scheduler ARGS...` in the background, its log in a file (a pipe
    nobody reads could fill and stall it); the test token in its environment."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("CONNECTOR_DATABASE_URL", "CONNECTOR_STATE_URL")}
    full_env.update({"TEST_LINE_TOKEN": TOKEN, "XDG_STATE_HOME": str(cwd / "state"),
                     "CONNECTOR_CONFIG_HOME": str(cwd / "config-home"), **(env or {})})
    log = cwd / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "connector", "scheduler", *args], cwd=cwd,
                                env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return proc, log


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something true; its value. AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def backdate_schedule(store: Any, name: str, seconds: float) -> None:
    """Make a schedule look created (and active) `seconds` earlier: a simulated downtime for
    scheduler processes, which read real time."""
    from connector.schedule.state import schedules

    with store.engine.begin() as conn:
        conn.execute(schedules.update().where(schedules.c.name == name).values(
            created_at=schedules.c.created_at - seconds,
            active_since=schedules.c.active_since - seconds))
