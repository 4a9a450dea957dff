"""Scheduled exports end to end: real `connector schedule` processes, real DuckDB, the LINE sandbox
over HTTP, the state database on disk. Backfill, history, the unique slot under a race, and the
commands' errors."""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connector.schedule.store import AlreadyClaimed, Schedule, ScheduleStore
from helpers import TOKEN, now_s, result_config, run_connector, stored_keys, write_csv

JST = dt.timezone(dt.timedelta(hours=9))
# Rows per day (Tokyo days); each slot at midnight exports the day before it.
DAYS = {dt.date(2026, 2, 27): 2, dt.date(2026, 2, 28): 3, dt.date(2026, 3, 1): 4,
        dt.date(2026, 3, 2): 5, dt.date(2026, 3, 3): 6}


def day_start(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), JST).timestamp())


def events_csv(folder: Path) -> Path:
    """Conversions spread over the days, with rows on both sides of each midnight."""
    rows = []
    stamp = now_s() - 60
    for day, count in DAYS.items():
        start = day_start(day)
        for i in range(count):
            # the first row at 00:00:00 exactly, the last at 23:59:59, others in between
            ts = start if i == 0 else start + 86399 if i == count - 1 else start + 3600 * i
            rows.append({"deduplication_key": f"{day.isoformat()}-{i}", "event_type": "conversion",
                         "event_name": "Purchase", "source_type": "web",
                         "event_timestamp": stamp, "email": f"u{i}@example.com", "ts": ts})
    return write_csv(folder / "events.csv", rows)


QUERY = """SELECT deduplication_key, event_type, event_name, source_type, event_timestamp, email
FROM '{csv}'
WHERE TD_TIME_RANGE(ts, TD_TIME_ADD(TD_SCHEDULED_TIME(), '-1d'), TD_SCHEDULED_TIME())
"""


def keys_of(day: dt.date) -> set[str]:
    return {f"{day.isoformat()}-{i}" for i in range(DAYS[day])}


@pytest.fixture
def daily(tmp_path, sandbox) -> dict[str, Any]:
    """A daily schedule in Tokyo, delayed by an hour, exporting the previous day's rows."""
    csv = events_csv(tmp_path)
    query = tmp_path / "daily.sql"
    query.write_text(QUERY.format(csv=csv))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    run = run_connector(tmp_path, "schedule", "create", "daily", "--cron", "@daily",
                        "--timezone", "Asia/Tokyo", "--delay", "3600", str(query),
                        "--result", json.dumps(result_config(sandbox)), "--state", state)
    assert run.returncode == 0, run.stderr
    return {"state": state, "path": tmp_path}


def history(ctx: dict[str, Any], name: str = "daily") -> list[dict[str, Any]]:
    run = run_connector(ctx["path"], "schedule", "history", name, "--json", "--state", ctx["state"])
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_backfill_of_three_daily_slots_exports_each_day_once(daily, sandbox):
    run = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-01T00:00:00+09:00",
                        "-n", "3", "--state", daily["state"])
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and TOKEN not in run.stderr + run.stdout
    keys = stored_keys(sandbox)
    expected = keys_of(dt.date(2026, 2, 28)) | keys_of(dt.date(2026, 3, 1)) | keys_of(dt.date(2026, 3, 2))
    assert sorted(keys) == sorted(expected)  # each exactly once, none from other days

    rows = history(daily)
    assert [r["scheduled_time"] for r in rows] == [
        "2026-03-03T00:00:00+09:00", "2026-03-02T00:00:00+09:00", "2026-03-01T00:00:00+09:00"]
    for row, day in zip(rows, (dt.date(2026, 3, 2), dt.date(2026, 3, 1), dt.date(2026, 2, 28))):
        assert row["status"] == "success" and row["attempt"] == 1
        assert row["rows_read"] == row["events_sent"] == DAYS[day]
        assert row["invalid_records"] == 0 and row["failed_events"] == 0
        assert row["started"] and row["finished"] and row["finished"] >= row["started"]
        report = json.loads(Path(row["report_path"]).read_text())
        assert report["events_sent"] == DAYS[day]
        assert TOKEN not in Path(row["report_path"]).read_text()

    # The table lists the same runs.
    table = run_connector(daily["path"], "schedule", "history", "daily", "--state", daily["state"])
    assert table.returncode == 0 and table.stdout.count("success") == 3


def test_a_slot_that_ran_is_skipped_unless_asked_again(daily, sandbox):
    first = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-02T00:00:00+09:00",
                          "--state", daily["state"])
    assert first.returncode == 0, first.stderr
    assert len(stored_keys(sandbox)) == DAYS[dt.date(2026, 3, 1)]
    sandbox.reset()
    again = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-02T00:00:00+09:00",
                          "--state", daily["state"])
    assert again.returncode == 0 and "skipped, it ran before: success" in again.stderr
    assert "--again" in again.stderr
    assert stored_keys(sandbox) == []
    forced = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-02T00:00:00+09:00",
                           "--again", "--state", daily["state"])
    assert forced.returncode == 0, forced.stderr
    assert sorted(stored_keys(sandbox)) == sorted(keys_of(dt.date(2026, 3, 1)))
    assert [(r["scheduled_time"], r["attempt"]) for r in history(daily)] == [
        ("2026-03-02T00:00:00+09:00", 2), ("2026-03-02T00:00:00+09:00", 1)]


def test_a_time_without_an_offset_is_in_the_schedules_zone(daily, sandbox):
    run = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-02T00:00:00",
                        "--state", daily["state"])
    assert run.returncode == 0, run.stderr
    assert history(daily)[0]["scheduled_time"] == "2026-03-02T00:00:00+09:00"
    # a time between slots starts at the next slot
    run = run_connector(daily["path"], "schedule", "run", "daily", "2026-03-02T08:00:00",
                        "--state", daily["state"])
    assert history(daily)[0]["scheduled_time"] == "2026-03-03T00:00:00+09:00"


def test_two_processes_racing_for_one_slot_run_it_once(daily, sandbox):
    command = [sys.executable, "-m", "connector", "schedule", "run", "daily",
               "2026-03-02T00:00:00+09:00", "--state", daily["state"]]
    env = {**{k: v for k, v in os.environ.items()
              if k not in ("CONNECTOR_STATE_URL", "CONNECTOR_DATABASE_URL")},
           "TEST_LINE_TOKEN": TOKEN, "XDG_STATE_HOME": str(daily["path"] / "state")}
    procs = [subprocess.Popen(command, cwd=daily["path"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(": skipped, " in err for _, err in outs) == 1, outs
    assert sorted(stored_keys(sandbox)) == sorted(keys_of(dt.date(2026, 3, 1)))
    rows = history(daily)
    assert len(rows) == 1 and rows[0]["attempt"] == 1 and rows[0]["status"] == "success"


def _claimer(url: str, name: str, times: list[int], barrier: Any, out: Any) -> None:
    store = ScheduleStore(url)
    won = []
    barrier.wait()
    for t in times:
        try:
            store.claim(name, t)
            won.append(t)
        except AlreadyClaimed:
            pass
    store.close()
    out.put(won)


def test_the_database_gives_each_slot_to_one_claimer(tmp_path):
    """Six processes claim the same 30 slots at once: the unique key hands each to one."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    store = ScheduleStore(url)
    store.create(Schedule(name="race", cron="* * * * *",
                          definition={"query": "SELECT 1", "output": {"type": "line_conversion"}}))
    store.close()
    times = [1_800_000_000 + 60 * i for i in range(30)]
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(6), ctx.Queue()
    workers = [ctx.Process(target=_claimer, args=(url, "race", times, barrier, out))
               for _ in range(6)]
    for w in workers:
        w.start()
    won = [t for _ in workers for t in out.get(timeout=120)]
    for w in workers:
        w.join(timeout=60)
    assert sorted(won) == times  # every slot claimed, none twice


def test_schedule_commands(tmp_path, sandbox):
    csv = events_csv(tmp_path)
    query = tmp_path / "q.sql"
    query.write_text(QUERY.format(csv=csv))
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    config = json.dumps(result_config(sandbox))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        run = run_connector(tmp_path, "schedule", *args, *state)
        assert "Traceback" not in run.stderr, run.stderr
        return run

    made = cli("create", "weekly", "--cron", "0 0 1 * 1", "--timezone", "Asia/Tokyo", str(query),
               "--result", config)
    assert made.returncode == 0
    assert "day-of-month is ignored" in made.stderr  # the warning when saved
    assert cli("create", "weekly", "--cron", "@daily", str(query), "--result", config).returncode == 2
    bad_zone = cli("create", "x", "--cron", "@daily", "--timezone", "JST", str(query), "--result", config)
    assert bad_zone.returncode == 2 and "IANA" in bad_zone.stderr
    bad_cron = cli("create", "x", "--cron", "0 0 * * 9", str(query), "--result", config)
    assert bad_cron.returncode == 2 and "day-of-week value 9" in bad_cron.stderr
    workflow = cli("create", "x", "--workflow", "export.dig")  # checked when saved
    assert workflow.returncode == 2 and "export.dig: no such workflow file" in workflow.stderr
    assert cli("create", "none", "--cron", "", str(query), "--result", config).returncode == 0

    shown = json.loads(cli("show", "weekly", "--json").stdout)
    assert shown["effective"] == "0 0 * * 1" and shown["ignored"] == "day_of_month"
    assert shown["definition"]["output"]["access_token"] == "${TEST_LINE_TOKEN}"
    assert all(dt.datetime.fromisoformat(r["scheduled_time"]).weekday() == 0 for r in shown["next_runs"])

    assert cli("update", "weekly", "--delay", "-600").returncode == 0
    shown = json.loads(cli("show", "weekly", "--json").stdout)
    first = shown["next_runs"][0]
    assert (dt.datetime.fromisoformat(first["starts_at"])
            - dt.datetime.fromisoformat(first["scheduled_time"])) == dt.timedelta(seconds=-600)
    assert shown["effective"] == "0 0 * * 1"  # unchanged

    assert cli("disable", "weekly").returncode == 0
    listed = {s["name"]: s for s in json.loads(cli("list", "--json").stdout)}
    assert listed["weekly"]["enabled"] is False and listed["none"]["next_runs"] == []
    assert cli("enable", "weekly").returncode == 0
    assert json.loads(cli("list", "--json").stdout)[1]["enabled"] is True
    assert "weekly" in cli("list").stdout

    # A saved export with no scheduled runs runs once, for the time given.
    ran = cli("run", "none", "2026-03-02T00:00:00+09:00")
    assert ran.returncode == 0, ran.stderr
    assert sorted(stored_keys(sandbox)) == sorted(keys_of(dt.date(2026, 3, 1)))

    assert cli("delete", "weekly").returncode == 0
    gone = cli("show", "weekly")
    assert gone.returncode == 2 and "no schedule named 'weekly'" in gone.stderr
    assert cli("history", "weekly").returncode == 2


def test_literal_secrets_are_masked_and_warned_about(tmp_path, sandbox):
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1 AS x")
    config = json.dumps(result_config(sandbox, access_token="literal-SECRET-123"))
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    made = run_connector(tmp_path, "schedule", "create", "s", "--cron", "@daily", str(query),
                         "--result", config, *state)
    assert made.returncode == 0, made.stderr
    assert "access_token will be stored" in made.stderr
    shown = run_connector(tmp_path, "schedule", "show", "s", *state)
    assert "literal-SECRET-123" not in shown.stdout + shown.stderr and "***" in shown.stdout


def test_a_missing_environment_variable_fails_the_slot_with_exit_2(tmp_path, sandbox):
    query = tmp_path / "q.sql"
    query.write_text("SELECT 1 AS x")
    config = json.dumps(result_config(sandbox, access_token="${UNSET_TOKEN_FOR_TEST}"))
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    made = run_connector(tmp_path, "schedule", "create", "s", "--cron", "@daily", str(query),
                         "--result", config, *state)
    assert made.returncode == 0 and "UNSET_TOKEN_FOR_TEST" in made.stderr
    ran = run_connector(tmp_path, "schedule", "run", "s", "2026-03-02T00:00:00Z", *state)
    assert ran.returncode == 2 and "UNSET_TOKEN_FOR_TEST" in ran.stderr
    rows = json.loads(run_connector(tmp_path, "schedule", "history", "s", "--json", *state).stdout)
    assert rows[0]["status"] == "error" and rows[0]["reason"] == "config_error"


def test_the_default_state_database_is_under_xdg_state_home(tmp_path):
    run = run_connector(tmp_path, "schedule", "list")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "state" / "connector" / "state.db").exists()
    other = tmp_path / "elsewhere.db"
    run = run_connector(tmp_path, "schedule", "list", env={"CONNECTOR_STATE_URL": f"sqlite:///{other}"})
    assert run.returncode == 0 and other.exists()


def test_a_schedule_through_a_saved_connection_reads_the_token_when_it_runs(tmp_path, sandbox):
    """The schedule stores the connection's name and the settings over it, not the merged
    configuration: the token is read from the connection when each slot runs, so a rotated
    token reaches the next slot; result_settings without a connection is refused with
    Treasure Workflow's message."""
    from connector.outputs.line_conversion.sandbox import run_sandbox

    env = {"CONNECTOR_CONFIG_HOME": str(tmp_path / "config"), "LINE_TOKEN": "token-one-111"}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    query = tmp_path / "q.sql"
    query.write_text(f"SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, "
                     f"'web' AS source_type, {now_s() - 60} AS event_timestamp, "
                     "'u' || i || '@example.com' AS email FROM range(1, 4) t(i)")
    with run_sandbox(tags={"tag-1": "token-one-111"}) as sb:
        saved = run_connector(tmp_path, "connections", "add", "line", "--type", "line_conversion",
                              "--set", "line_tag_id=tag-1", "--set", f"endpoint={sb.url}",
                              "--secret", "access_token=env:LINE_TOKEN", env=env)
        assert saved.returncode == 0, saved.stderr
        bad = run_connector(tmp_path, "schedule", "create", "s", "--cron", "@daily", str(query),
                            "--result-settings", '{"max_records": 1000}', "--state", state,
                            env=env)
        assert bad.returncode == 2
        assert "result_settings is valid only if result_connection is set" in bad.stderr
        created = run_connector(tmp_path, "schedule", "create", "s", "--cron", "@daily",
                                str(query), "--result-connection", "line", "--result-settings",
                                '{"test_flag": true}', "--state", state, env=env)
        assert created.returncode == 0, created.stderr
        shown = run_connector(tmp_path, "schedule", "show", "s", "--json", "--state", state,
                              env=env)
        definition = json.loads(shown.stdout)["definition"]
        assert definition["connection"] == "line"
        assert definition["output"] == {"test_flag": True}
        assert "token-one-111" not in shown.stdout + created.stdout + created.stderr
        ran = run_connector(tmp_path, "schedule", "run", "s", "2026-11-01T00:00:00Z",
                            "--state", state, env=env)
        assert ran.returncode == 0, ran.stderr
        assert len(sb.events("tag-1")) == 3
        assert all(e["event"]["event"]["test_flag"] is True for e in sb.events("tag-1"))
        # The token rotates in the environment the connection names: the next slot reads it.
        rotated = run_connector(tmp_path, "schedule", "run", "s", "2026-11-02T00:00:00Z",
                                "--state", state, env={**env, "LINE_TOKEN": "token-two-222"})
        assert rotated.returncode == 1  # the sandbox only knows the old token
        assert "token-two-222" not in rotated.stdout + rotated.stderr
