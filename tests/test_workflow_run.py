"""`connector workflow run` on real DuckDB with the sandbox over HTTP: parameters and _export
scoping, _parallel, _retry, _error, _check, if>, for_each>, loop>, call>, td_ddl>, insert_into
feeding a later export, every refusal (exit 2 before any task runs), the warnings, another
output type's connection, and the token kept out of every line, log and report."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from helpers import TAG, TOKEN, blob, no_traceback, run_command

SESSION = "2026-11-20"
SESSION_UNIX = 1795132800  # 2026-11-20T00:00:00Z


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def workflow(tmp_path: Path, dig: str, *args: str, files: dict[str, str] | None = None,
             env: dict[str, str] | None = None):
    write(tmp_path, {"w.dig": dig, **(files or {})})
    run = run_command(tmp_path, "workflow", "run", "w.dig", "--session", SESSION, *args,
                      env=env, timeout=300)
    no_traceback(run)
    return run


def lines(run) -> dict[str, str]:
    """Task name -> its status, from the task lines."""
    out = {}
    for line in run.stdout.splitlines():
        if line.startswith("+"):
            name, status = line.split("  ")[:2]
            out[name] = status
    return out


def run_json(tmp_path: Path) -> dict[str, Any]:
    found = sorted((tmp_path / ".connector" / "runs" / "w").glob("*/run.json"))
    return json.loads(found[-1].read_text())


def sandbox_connection(tmp_path: Path, sandbox: Any, name: str = "line_sandbox") -> None:
    home = tmp_path / "config-home"
    home.mkdir(exist_ok=True, mode=0o700)
    (home / "connections.toml").write_text(textwrap.dedent(f"""\
        [connections.{name}]
        type = "line_conversion"
        endpoint = "{sandbox.url}"
        access_token = {{env = "TEST_LINE_TOKEN"}}
        initial_retry_wait = 1

        [connections.meta_capi]
        type = "facebook_conversions"
        pixel_id = "123"
        """))
    (home / "connections.toml").chmod(0o600)


EVENTS = """SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type,
  'Purchase' AS event_name, 'web' AS source_type,
  TD_SCHEDULED_TIME() - 60 AS event_timestamp, 'u' || i || '@example.com' AS email
FROM range(1, 4) t(i)"""


def test_parameters_and_export_scoping(tmp_path):
    run = workflow(tmp_path, """\
        _export:
          who: top
          td:
            database: shop
        +group:
          _export:
            who: group
            only_here: yes
          +inside:
            echo>: inside ${who} ${only_here} ${td.database}
          +own:
            _export:
              who: own
            echo>: own ${who}
        +after:
          echo>: after ${who} ${typeof only_here} ${p} ${task_name}
        +session:
          echo>: ${session_time} ${session_date_compact} ${session_unixtime + 1} ${session_tz_offset} ${timezone}
        """, "-p", "p=from-p", "-p", "who=ignored")
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stdout.splitlines() if not line.startswith("+")]
    assert said == ["inside group yes shop", "own own", "after top undefined from-p +w+after",
                    f"2026-11-20T00:00:00+00:00 20261120 {SESSION_UNIX + 1} +0000 UTC"]


def test_if_for_each_loop_and_stored_parameters(tmp_path):
    run = workflow(tmp_path, """\
        timezone: Asia/Tokyo
        _export:
          brands:
            shoes: {on: true, tag: T-1}
            bags: {on: false, tag: T-2}
        +each:
          for_each>:
            brand: ${Object.keys(brands)}
            n: [1, 2]
          _do:
            if>: ${brands[brand].on}
            _do:
              echo>: send ${brand}/${n} to ${brands[brand].tag}
            _else_do:
              echo>: skip ${brand}/${n}
        +loop:
          loop>: 3
          _do:
            echo>: day ${moment(session_time).add(i, 'days').tz(timezone).format('MM-DD')}
        +count:
          td>:
          query: SELECT 41 + 1 AS answer, 'x' AS label
          store_last_results: true
        +say:
          echo>: ${td.last_results.answer} ${td.last_results.label} rows=${td.last_job.num_records} job=${td.last_job_id}
        """)
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stdout.splitlines() if not line.startswith("+")]
    assert said == ["send shoes/1 to T-1", "send shoes/2 to T-1", "skip bags/1", "skip bags/2",
                    "day 11-20", "day 11-21", "day 11-22", "42 x rows=1 job=1"]
    assert "+w+each^sub+for-0=brand=0=shoes&1=n=0=1" in lines(run)


def test_parallel_runs_children_at_once(tmp_path, sandbox):
    """Two exports whose requests each take 2 s: under _parallel their work overlaps; without
    it the second starts after the first ended."""
    sandbox_connection(tmp_path, sandbox)

    def intervals(parallel: bool) -> list[tuple[float, float]]:
        sandbox.reset()
        sandbox.set_faults([{"delay_s": 2}, {"delay_s": 2}])
        run = workflow(tmp_path, f"""\
            +both:
              _parallel: {'true' if parallel else 'false'}
              +a:
                td>:
                query: {json.dumps(EVENTS)}
                result_connection: line_sandbox
                result_settings: {{line_tag_id: {TAG}-a}}
              +b:
                td>:
                query: {json.dumps(EVENTS)}
                result_connection: line_sandbox
                result_settings: {{line_tag_id: {TAG}-b}}
            """)
        assert run.returncode == 0, run.stdout + run.stderr
        tasks = {t["name"]: t for t in run_json(tmp_path)["tasks"]}
        return [(tasks[n]["started_at"], tasks[n]["started_at"] + tasks[n]["seconds"])
                for n in ("+w+both+a", "+w+both+b")]

    (a0, a1), (b0, b1) = sorted(intervals(True))
    assert b0 < a1, "parallel tasks did not overlap"
    (a0, a1), (b0, b1) = sorted(intervals(False))
    assert b0 >= a1, "sequential tasks overlapped"


def test_parallel_limit_and_failures(tmp_path):
    """_parallel: {limit: 2} runs in batches: a failure stops the later batches, not its own
    batch; without a limit every child runs; in sequence the rest is blocked."""
    run = workflow(tmp_path, """\
        +limited:
          _parallel: {limit: 2}
          +a:
            fail>: a failed
          +b:
            echo>: b ran
          +c:
            echo>: c ran
        +free:
          _parallel: true
          +a:
            fail>: a failed
          +b:
            echo>: b ran too
        """)
    assert run.returncode == 1
    status = lines(run)
    assert status["+w+limited+a"] == "error" and status["+w+limited+b"] == "success"
    assert status["+w+limited+c"] == "blocked"
    assert status["+w+free"] == "blocked"  # the group after a failed one does not start
    run = workflow(tmp_path, """\
        +free:
          _parallel: true
          +a:
            fail>: a failed
          +b:
            echo>: b ran too
        +seq:
          +a:
            echo>: never
        """)
    assert lines(run)["+w+free+b"] == "success" and lines(run)["+w+seq"] == "blocked"


def test_retry_error_and_check(tmp_path):
    db = tmp_path / "shop.duckdb"
    run = workflow(tmp_path, """\
        +attempts:
          _retry: 3
          +count:
            td>:
            query: SELECT 1 AS x
            insert_into: tries
          +read:
            td>:
            query: SELECT count(*) AS n FROM tries
            store_last_results: true
          +enough:
            if>: ${td.last_results.n < 3}
            _do:
              fail>: only ${td.last_results.n} tries
        +done:
          echo>: after ${td.last_results.n} tries
        +broken:
          fail>: boom
          _retry:
            limit: 1
            interval: 1
          _error:
            echo>: handled ${error.message}
        """, "--database", f"duckdb:///{db}")
    assert run.returncode == 1
    said = [line for line in run.stdout.splitlines() if not line.startswith("+")]
    assert said == ["after 3 tries", "handled boom"]
    assert run.stderr.count("+w+broken: failed; retry 1 of 1 in 1s") == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM tries").fetchone() == (3,)

    run = workflow(tmp_path, """\
        +checked:
          td>:
          query: SELECT 0 AS n
          store_last_results: true
          _check:
            if>: ${td.last_results.n == 0}
            _do:
              fail>: no rows
        """)
    assert run.returncode == 1 and "no rows" in run.stdout


def test_call_runs_another_file_from_its_folder(tmp_path):
    run = workflow(tmp_path, """\
        _export:
          greeting: hello
        +first:
          call>: common/shared
        """, files={
            "common/shared.dig": """\
                _export:
                  who: shared
                +q:
                  td>: queries/q.sql
                  store_last_results: true
                +say:
                  echo>: ${greeting} ${who} ${td.last_results.v}
                """,
            "common/queries/q.sql": "SELECT '${greeting}-from-file' AS v\n",
        })
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hello shared hello-from-file" in run.stdout.splitlines()


def test_td_ddl_and_tables_kept_in_a_duckdb_file(tmp_path):
    db = tmp_path / "shop.duckdb"
    run = workflow(tmp_path, """\
        +ddl:
          td_ddl>:
          create_databases: [analytics]
          create_tables: [analytics.a, analytics.b, analytics.c]
        +fill:
          td>:
          query: SELECT 1 AS id, 'x' AS label
          insert_into: analytics.b
        +more:
          td>:
          query: SELECT 2 AS id
          database: analytics
          create_table: c
        +again:
          td_ddl>:
          database: analytics
          empty_tables: [c]
          rename_tables: [{from: b, to: renamed}]
          drop_tables: [a]
        """, "--database", f"duckdb:///{db}")
    assert run.returncode == 0, run.stdout + run.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='analytics'").fetchall()}
        assert tables == {"renamed", "c"}
        assert con.execute("SELECT id, label FROM analytics.renamed").fetchall() == [(1, "x")]
        assert con.execute("SELECT count(*) FROM analytics.c").fetchone() == (0,)
        assert [r[0] for r in con.execute("DESCRIBE analytics.c").fetchall()] == ["time"]


def test_insert_into_feeds_a_later_export(tmp_path, sandbox):
    sandbox_connection(tmp_path, sandbox)
    run = workflow(tmp_path, f"""\
        +stage:
          td>:
          query: {json.dumps(EVENTS)}
          create_table: staged
        +more:
          td>:
          query: SELECT 'k-9' AS deduplication_key, 'conversion' AS event_type, 'Purchase' AS event_name, 'web' AS source_type, TD_SCHEDULED_TIME() - 60 AS event_timestamp, 'nine@example.com' AS email
          insert_into: staged
        +send:
          td>:
          query: SELECT * FROM staged
          result_connection: line_sandbox
          result_settings:
            line_tag_id: {TAG}
        """)
    assert run.returncode == 0, run.stdout + run.stderr
    keys = sorted(e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG))
    assert keys == ["k-1", "k-2", "k-3", "k-9"]
    send = [t for t in run_json(tmp_path)["tasks"] if t["name"] == "+w+send"][0]
    assert (send["rows"], send["events"]) == (4, 4)
    report = json.loads(Path(send["report"]).read_text())
    assert report["events_sent"] == 4
    # TD_SCHEDULED_TIME() was the session time in every query
    assert {e["event"]["event"]["event_timestamp"] for e in sandbox.events(TAG)} == {SESSION_UNIX - 60}


REFUSED_OPERATORS = ["sh", "py", "rb", "http", "mail", "td_run", "td_result_export", "td_load",
                     "embulk"]


@pytest.mark.parametrize("operator", REFUSED_OPERATORS)
def test_operators_that_cannot_run_are_refused_before_any_task(tmp_path, operator):
    run = workflow(tmp_path, f"""\
        +first:
          echo>: this must not run
        +later:
          for_each>:
            x: [1]
          _do:
            {operator}>: something
        """)
    assert run.returncode == 2
    assert run.stdout == ""  # no task ran
    assert f"+w+later^sub: {operator}> cannot run here" in run.stderr


@pytest.mark.parametrize("task,message", [
    ("td>:\nquery: SELECT 1\ndownload_file: out.csv", "download_file is not supported"),
    ("td>:\nquery: SELECT 1\nresult_url: '{\"type\": \"line_conversion\"}'\nresult_connection: x",
     "result_url and result_connection cannot be used together"),
    ("td>:\nquery: SELECT 1\nresult_settings: {line_tag_id: x}",
     "result_settings is valid only if result_connection is set"),
    ("td>:\nquery: SELECT 1\nengine: hive", "engine: hive cannot run here"),
    ("td>:\nquery: SELECT 1\ncreate_table: a\ninsert_into: b",
     "setting both insert_into and create_table is invalid"),
    ("td>:\nquery: SELECT 1\nresult_url: td://me/db/table", "only its JSON form"),
    ("td>: missing.sql", "missing.sql: no such query file"),
    ("td>: ../outside.sql", "files must be inside the workflow's folder"),
    ("call>: nowhere.dig", "nowhere.dig: no such workflow file"),
    ("if>: true", "both _do and _else_do are not specified"),
])
def test_td_refusals(tmp_path, task, message):
    body = textwrap.indent(task, "  ")
    run = workflow(tmp_path, "+ok:\n  echo>: must not run\n+t:\n" + body + "\n")
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""
    assert message in run.stderr


def test_result_settings_via_exported_connection_is_accepted(tmp_path):
    """result_connection may come from an _export (td: defaults too), as on Treasure Workflow."""
    write(tmp_path, {"w.dig": "_export:\n  td:\n    result_connection: x\n+t:\n  td>:\n"
                              "  query: SELECT 1\n  result_settings: {a: 1}\n"})
    run = run_command(tmp_path, "workflow", "check", "w.dig")
    assert run.returncode == 0, run.stderr


def test_keys_that_mean_nothing_here_warn(tmp_path):
    run = workflow(tmp_path, """\
        sla:
          time: 02:00
          +notice:
            echo>: late
        +q:
          td>:
          query: SELECT 1 AS x
          priority: 1
          job_retry: 2
          engine_version: stable
          presto_pool_name: poc
          preview: true
        """)
    assert run.returncode == 0, run.stderr
    for key in ("priority", "job_retry", "engine_version", "presto_pool_name", "preview", "sla"):
        assert f"{key}" in run.stderr and "ignored" in run.stderr
    assert lines(run) == {"+w+q": "success"}


def test_another_output_type_fails_when_its_task_runs(tmp_path, sandbox):
    sandbox_connection(tmp_path, sandbox)
    dig = """\
        _export:
          meta_on: {on}
        +line:
          td>:
          query: {events}
          result_connection: line_sandbox
          result_settings: {{line_tag_id: {tag}}}
        +meta:
          if>: ${{meta_on}}
          _do:
            td>:
            query: SELECT 1 AS x
            result_connection: meta_capi
        """
    run = workflow(tmp_path, dig.format(on="true", events=json.dumps(EVENTS), tag=TAG))
    assert run.returncode == 1
    assert "'facebook_conversions'" in run.stdout and "no facebook_conversions output" in run.stdout
    assert lines(run)["+w+line"] == "success"
    sandbox.reset()
    run = workflow(tmp_path, dig.format(on="false", events=json.dumps(EVENTS), tag=TAG))
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(sandbox.events(TAG)) == 3


def test_token_never_shown(tmp_path, sandbox):
    """A literal token in result_settings (as the documentation's example writes it) and one
    from the secrets store stay out of task lines, warnings, errors and the run folder."""
    sandbox_connection(tmp_path, sandbox)
    secret = "sec-SECRET-5e1d0b"
    env = {"CONNECTOR_SECRET_LINE_TOKEN": secret}
    run = workflow(tmp_path, f"""\
        +literal:
          td>:
          query: {json.dumps(EVENTS)}
          result_connection: line_sandbox
          result_settings:
            line_tag_id: {TAG}
            access_token: {TOKEN}
        +from_store:
          td>:
          query: SELECT 1 AS not_a_line_column
          result_connection: line_sandbox
          result_settings:
            line_tag_id: {TAG}
            access_token: ${{secret:line_token}}
        """, env=env)
    assert run.returncode == 1  # the second export's columns are wrong
    shown = blob(run)
    for folder in (tmp_path / ".connector").rglob("*"):
        if folder.is_file():
            shown += folder.read_text(errors="replace")
    assert TOKEN not in shown and secret not in shown
    assert len(sandbox.events(TAG)) == 3
