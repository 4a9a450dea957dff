"""Bad input ends with a clear message and the documented exit status, never a traceback.

Exit 2 means bad usage or configuration, found before any query runs: a token that cannot be sent,
paths that cannot be written, query and --result files that are not UTF-8. The CLI runs as a
subprocess against the embedded DuckDB and the sandbox on loopback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import TOKEN, gen_sql, no_traceback, now_s, result_config, run_cli, run_main

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


# --------------------------------------------------------------------------- output paths
# Generated paths for --report-file and --dry-run, many of them impossible even for root, whom
# permission bits do not stop: under a regular file, under /proc or /sys, a name longer than the
# file system takes, an existing folder, a NUL character, nothing at all. Each run ends in exit 2
# before anything is sent, or it runs and the file is there at the end.

@st.composite
def _output_paths(draw: Any, folder: Path) -> str:
    name = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1,
                        max_size=12).filter(lambda n: n not in (".", "..")))
    a_file = folder / "a-file.txt"
    a_file.write_text("x")
    kind = draw(st.sampled_from(["under_file", "proc", "sys", "dev_null", "too_long", "folder",
                                 "nul", "empty", "blank", "missing_folder", "fine", "any"]))
    return {
        "under_file": f"{a_file}/{name}",
        "proc": f"/proc/self/{name}",
        "sys": f"/sys/{name}",
        "dev_null": f"/dev/null/{name}",
        "too_long": str(folder / (name * (300 // len(name) + 1))),
        "folder": str(folder),
        "nul": str(folder / f"{name}\x00x"),
        "empty": "",
        "blank": " " * len(name),
        "missing_folder": str(folder / "no-such-folder" / name),
        "fine": str(folder / f"{name}.out"),
        "any": draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)),
    }[kind]


@settings(max_examples=max(10, settings.default.max_examples // 2), suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), option=st.sampled_from(["--report-file", "--dry-run"]))
def test_generated_output_paths_fail_before_sending_or_are_written(data, option, sandbox_server,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    path = data.draw(_output_paths(tmp_path))
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(3))
    before = sandbox_server.stats()["requests"]
    rc, out, err = run_main([str(query), "--result", json.dumps(result_config(sandbox_server)),
                             option, path, "--quiet"])
    assert "Traceback" not in err
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"connector: error: {option}"), err
        assert sandbox_server.stats()["requests"] == before, "sent before refusing the path"
        return
    assert rc == 0, err[-2000:]
    written = Path(path).read_bytes()
    if option == "--report-file":
        assert json.loads(written)["events_sent"] == 3
    else:
        assert written.count(b"\n") == 1


@pytest.mark.parametrize("option", ["--report-file", "--dry-run"])
@pytest.mark.parametrize("path", ["/proc/self/report.json", "/sys/report.json", "a" * 300,
                                  "report\x00.json"])
def test_impossible_output_path_is_exit_2_even_for_root(option, path, sandbox, tmp_path,
                                                        monkeypatch):
    """`os.access` says yes to root for /proc and /sys, and a long name or a NUL character only
    fails when the file is opened: the path is tried, not its folder's permission bits."""
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(3))
    rc, _, err = run_main([str(query), "--result", json.dumps(result_config(sandbox)), option,
                           path])
    assert rc == 2 and err.startswith(f"connector: error: {option}"), err
    assert sandbox.stats()["requests"] == 0


def test_report_unwritable_at_the_end_is_printed_to_stderr(sandbox, tmp_path):
    """The report's folder disappears while the events are in flight: the report goes to stderr
    rather than being lost, and the export's own outcome stands."""
    folder = tmp_path / "reports"
    folder.mkdir()
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(3))
    sandbox.set_faults([{"delay_s": 3}])
    proc = subprocess.Popen(
        [PY, "-m", "connector", str(query), "--result", json.dumps(result_config(sandbox)),
         "--report-file", str(folder / "r.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "TEST_LINE_TOKEN": TOKEN})
    deadline = time.monotonic() + 60
    while not sandbox.faults()["pending"] == [] and time.monotonic() < deadline:
        time.sleep(0.05)  # the request holding the delay has arrived
    shutil.rmtree(folder)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "--report-file" in err and "cannot write" in err
    report = json.loads(err[err.index("{"):err.rindex("}") + 1])
    assert report["events_sent"] == 3 and report["status"] == "success"
    assert TOKEN not in out + err


# --------------------------------------------------------------------------- empty option values

@settings(max_examples=max(10, settings.default.max_examples // 2), suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(option=st.sampled_from(["--shard", "--database", "--report-file", "--dry-run", "--result"]),
       value=st.text(alphabet=" \t\n\r", max_size=3), form=st.sampled_from(["=", " "]))
def test_an_option_given_an_empty_value_is_exit_2(option, value, form, sandbox_server, tmp_path,
                                                  monkeypatch):
    """`--shard=` (a variable that expanded to nothing) must not export every row: an option that
    takes a value and gets an empty one is bad usage."""
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    query = tmp_path / "q.sql"
    query.write_text(gen_sql(3))
    args = {"--result": json.dumps(result_config(sandbox_server))}
    args[option] = value
    argv = [str(query)]
    for name, text in args.items():
        argv += [f"{name}={text}"] if form == "=" else [name, text]
    before = sandbox_server.stats()["requests"]
    rc, _, err = run_main(argv)
    assert rc == 2, err
    assert option in err and "Traceback" not in err
    assert sandbox_server.stats()["requests"] == before


# --------------------------------------------------------------------------- no traceback, ever
# The command line on one input of every class of bad input this suite knows, as a subprocess,
# the way a user meets it. None may print a traceback (or the last-resort "internal error"):
# each ends in its documented exit status with a message.

def _write(folder: Path, name: str, text: str | bytes) -> str:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _cases(folder: Path, endpoint: str) -> dict[str, tuple[list[str], int]]:
    """name -> (arguments after `python -m connector`, expected exit status)."""
    good = _write(folder, "good.sql", gen_sql(3))
    base = result_config(None, endpoint=endpoint)

    def result(**kw: Any) -> str:
        return json.dumps({**base, **kw})

    def export(*extra: str, sql: str = good, cfg: str | None = None) -> list[str]:
        return [sql, "--result", cfg or result(), *extra]

    def raw(key: str, token: str) -> str:
        return json.dumps(base)[:-1] + f', "{key}": {token}}}'

    deep = _write(folder, "deep.json", "[" * 100_000 + "]" * 100_000)
    huge = _write(folder, "huge.json", json.dumps({**base, "line_tag_id": "a" * 300_000}))
    a_file = _write(folder, "a-file.txt", "x")
    latin1 = _write(folder, "l1.json", b'{"x": "caf\xe9"}')
    dupes = _write(folder, "dupes.sql", gen_sql(3, ", 'b@example.com' AS EMAIL"))
    ts = _write(folder, "ts.sql", gen_sql(3).replace(
        f"{now_s() - 60} AS event_timestamp",
        "CASE WHEN i = 2 THEN 9007199254740993000 ELSE epoch(now())::BIGINT - 60 END "
        "AS event_timestamp"))
    return {
        # the --result object
        "nan": (export(cfg=raw("connection_timeout", "NaN")), 2),
        "infinity": (export(cfg=raw("initial_retry_wait", "Infinity")), 2),
        "overflowing number": (export(cfg=raw("max_retry_wait", "1e999")), 2),
        "5000 digits": (export(cfg=raw("max_records", "9" * 5000)), 2),
        "deep nesting": (export(cfg=f"@{deep}"), 2),
        "huge value": (export(cfg=f"@{huge}"), 2),
        "not json": (export(cfg="{'type': 1}"), 2),
        "not an object": (export(cfg="[1]"), 2),
        "unknown type": (export(cfg=result(type="nope")), 2),
        "unknown parameter": (export(cfg=result(emial="x")), 2),
        "out of range": (export(cfg=result(max_records=1)), 2),
        "missing variable": (export(cfg=result(access_token="${NOT_SET_ANYWHERE_15}")), 2),
        "empty variable": (export(cfg=result(access_token="${EMPTY_15}")), 2),
        "result file missing": (export(cfg=f"@{folder / 'nope.json'}"), 2),
        "result file not utf-8": (export(cfg="@" + latin1), 2),
        # the endpoint
        "endpoint credentials": (export(cfg=result(endpoint="http://u:pw-X-123@127.0.0.1:9")), 2),
        "endpoint query": (export(cfg=result(endpoint=endpoint + "/?a=1")), 2),
        "endpoint fragment": (export(cfg=result(endpoint=endpoint + "#x")), 2),
        "endpoint port letters": (export(cfg=result(endpoint="http://127.0.0.1:abc")), 2),
        "endpoint port too big": (export(cfg=result(endpoint="http://127.0.0.1:99999")), 2),
        "endpoint plain http": (export(cfg=result(endpoint="http://example.com")), 2),
        # rows and columns
        "timestamp beyond 2^53": (export("--dry-run", str(folder / "ts.jsonl"), sql=ts), 0),
        "case-duplicate columns": (export("--dry-run", str(folder / "d.jsonl"), sql=dupes), 2),
        "case-duplicate columns, no pushdown": (
            export("--dry-run", str(folder / "d2.jsonl"), "--no-pushdown", sql=dupes), 2),
        "missing required column": (export(sql=_write(folder, "m.sql", "SELECT 1 AS x")), 2),
        "query error": (export(sql=_write(folder, "bad.sql", "SELECT * FROM nowhere_15")), 1),
        "query file missing": (export(sql=str(folder / "nope.sql")), 2),
        "query file not utf-8": (export(sql=_write(folder, "l1.sql", b"SELECT '\xe9'")), 2),
        "query file empty": (export(sql=_write(folder, "empty.sql", " ;\n")), 2),
        # the database URL
        "database port letters": (export("--database", "postgresql://u:pw-X-123@127.0.0.1:abc/d"), 2),
        "database port too big": (export("--database", "trino://u:pw-X-123@127.0.0.1:99999/c"), 2),
        "database unknown driver": (export("--database", "nosuchdb://u:pw-X-123@h/d"), 2),
        "database not a url": (export("--database", "::::"), 2),
        # output paths
        "report under a file": (export("--report-file", f"{a_file}/r.json"), 2),
        "report in /proc": (export("--report-file", "/proc/self/r.json"), 2),
        "report in /sys": (export("--report-file", "/sys/r.json"), 2),
        "report name too long": (export("--report-file", str(folder / ("r" * 300))), 2),
        "report is a folder": (export("--report-file", str(folder)), 2),
        "dry run in /sys": (export("--dry-run", "/sys/out.jsonl"), 2),
        "report and dry run one file": (
            export("--report-file", str(folder / "same"), "--dry-run", str(folder / "same")), 2),
        # options
        "empty shard": (export("--shard="), 2),
        "empty database": (export("--database", ""), 2),
        "bad shard": (export("--shard", "3/2"), 2),
        "unknown option": (export("--bogus"), 2),
        "no arguments": ([], 2),
        # other commands
        "docs into a missing folder": (["docs", "--write", str(folder / "no" / "x.md")], 2),
        "sandbox data dir under a file": (["sandbox", "--port", "0", "--data-dir", a_file], 2),
        "sandbox bad fault": (["sandbox", "--fault", "{bad"], 2),
        "outputs bad option": (["outputs", "--bogus"], 2),
    }


@pytest.fixture(scope="module")
def every_error_class(tmp_path_factory: pytest.TempPathFactory, sandbox_server: Any) -> dict:
    import concurrent.futures

    folder = tmp_path_factory.mktemp("error-classes")
    env = {**{k: v for k, v in os.environ.items() if k not in ("CONNECTOR_DATABASE_URL",
                                                                "CONNECTOR_DEBUG")},
           "TEST_LINE_TOKEN": TOKEN, "EMPTY_15": ""}
    cases = _cases(folder, sandbox_server.url)

    def run(args: list[str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([PY, "-m", "connector", *args], capture_output=True,
                                  text=True, cwd=folder, env=env, timeout=90,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:  # e.g. retrying a request that cannot be sent
            return subprocess.CompletedProcess(args, -1, str(exc.stdout or ""),
                                               f"did not end in {exc.timeout} s")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        done = dict(zip(cases, pool.map(run, (args for args, _ in cases.values()))))
    return {name: (done[name], cases[name][1]) for name in cases}


def test_no_error_class_prints_a_traceback(every_error_class):
    problems = []
    for name, (proc, expected) in every_error_class.items():
        text = proc.stdout + proc.stderr
        if "Traceback" in text or "internal error" in text:
            problems.append(f"{name}: traceback\n{text[-1500:]}")
        elif proc.returncode != expected:
            problems.append(f"{name}: exit {proc.returncode}, expected {expected}\n{text[-800:]}")
        elif expected == 2 and not proc.stderr.strip():
            problems.append(f"{name}: exit 2 without a message")
        elif "pw-X-123" in text or TOKEN in text:
            problems.append(f"{name}: a secret was printed")
    assert not problems, "\n\n".join(problems)
    assert len(every_error_class) >= 45


def test_a_query_error_leads_with_the_error(tmp_path):
    """The engine's message is the first line, not the last line after a summary of zeros."""
    run = run_cli(tmp_path, "SELECT * FROM no_such_table_15",
                  result_config(None, access_token="tok-12345"), "--dry-run",
                  str(tmp_path / "out.jsonl"))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("connector: error: query failed:") and "no_such_table_15" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("Dry run ERROR (source_error)")
    assert "rows read" not in run.stderr


def test_a_failure_after_sending_leads_with_the_error_then_the_counts(sandbox, tmp_path):
    sandbox.set_faults([{"status": 401}])
    run = run_cli(tmp_path, gen_sql(3), result_config(sandbox))
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("connector: error: ") and "401" in lines[0]
    assert "rows read" in run.stderr and run.stderr.count("401") == 1
