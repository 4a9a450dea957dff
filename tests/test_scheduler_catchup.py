"""Which slots the scheduler service runs: catch-up `latest`/`all`/`none` after a simulated
downtime, never a slot from before the schedule was active, overlap `wait`/`skip`, and the
schedule disabled after three configuration errors in a row (and resumed by `schedule enable`).

The decision is a pure function, checked on a table of cases and, for the class "a slot is never
decided twice and never dropped silently", on generated schedules and downtimes. The service is
then run in-process with a clock the test moves (the service itself reads real time), exporting
real DuckDB rows to the sandbox over HTTP.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.schedule import Schedule, ScheduleStore, cron as cronmod, export_definition
from connector.scheduler import Scheduler, SchedulerOptions, decide
from connector.scheduler.catchup import RECORD_LIMIT
from helpers import TAG, TOKEN, ManualClock, result_config, run_connector, slot_query

UTC = dt.timezone.utc
HOUR = 3600
# A fixed start for the pure tests: 2026-03-01 00:10:00 UTC.
T0 = dt.datetime(2026, 3, 1, 0, 10, tzinfo=UTC).timestamp()


def hourly(**policy: Any) -> Schedule:
    return Schedule(name="s", cron="0 * * * *", created_at=T0, active_since=T0, **policy)


def at(hour: int, minute: int = 0) -> int:
    return int(dt.datetime(2026, 3, 1, hour, minute, tzinfo=UTC).timestamp())


# --------------------------------------------------------------------------- the decision

@pytest.mark.parametrize("catchup,now,run,skipped", [
    # Down from 00:10 to 05:10: five missed slots (05:00 is ten minutes late, past the grace).
    ("latest", at(5, 10), [at(5)], [at(1), at(2), at(3), at(4)]),
    ("all", at(5, 10), [at(1), at(2), at(3), at(4), at(5)], []),
    ("none", at(5, 10), [], [at(1), at(2), at(3), at(4), at(5)]),
    # Back at 05:01: 05:00 is on time and runs whatever the policy; the others were missed.
    ("latest", at(5, 1), [at(5)], [at(1), at(2), at(3), at(4)]),
    ("all", at(5, 1), [at(1), at(2), at(3), at(4), at(5)], []),
    ("none", at(5, 1), [at(5)], [at(1), at(2), at(3), at(4)]),
    # No downtime: the one slot due is on time.
    ("none", at(1, 0) + 2, [at(1)], []),
    ("latest", at(0, 59), [], []),  # nothing due yet
])
def test_catchup_policies(catchup, now, run, skipped):
    d = decide(hourly(catchup=catchup), T0 - 1e-6, now, busy=False, misfire_grace=300)
    assert list(d.run) == run
    assert [t for t, _, _ in d.skip] == skipped
    assert all(reason == "catchup" for _, reason, _ in d.skip)
    assert d.through == (max(run + skipped) if run + skipped else None)


def test_all_runs_at_most_the_limit_newest_first_in_order():
    d = decide(hourly(catchup="all", catchup_limit=3), T0, at(10, 30), busy=False,
               misfire_grace=300)
    assert list(d.run) == [at(8), at(9), at(10)]
    assert [t for t, _, _ in d.skip] == [at(h) for h in range(1, 8)]
    assert "at most the 3 newest" in d.skip[0][2]


def test_slots_before_the_schedule_became_active_never_run():
    # Created at 00:10: the 00:00 slot is before it, even with catch-up all.
    d = decide(hourly(catchup="all"), T0 - 1e-6, at(0, 30), busy=False, misfire_grace=3600)
    assert d.empty and d.run == () and d.skip == ()
    # A slot at the very instant the schedule became active is due.
    exact = Schedule(name="s", cron="0 * * * *", catchup="all", active_since=at(1))
    d = decide(exact, at(1) - 1e-6, at(1, 0) + 5, busy=False, misfire_grace=300)
    assert list(d.run) == [at(1)]


def test_delay_moves_the_start_not_the_slot():
    s = Schedule(name="s", cron="0 * * * *", delay=1800, active_since=T0)
    assert decide(s, T0, at(1, 29), busy=False, misfire_grace=300).empty
    d = decide(s, T0, at(1, 30) + 1, busy=False, misfire_grace=300)
    assert list(d.run) == [at(1)]
    # With a negative delay the slot starts before its scheduled time.
    early = Schedule(name="s", cron="0 * * * *", delay=-600, active_since=T0)
    assert list(decide(early, T0, at(0, 50) + 1, busy=False, misfire_grace=300).run) == [at(1)]


def test_overlap_skip_skips_while_busy_and_wait_queues():
    skip = decide(hourly(overlap="skip"), T0, at(1) + 5, busy=True, misfire_grace=300)
    assert skip.run == () and skip.skip == ((at(1), "overlap", skip.skip[0][2]),)
    assert "overlap 'skip'" in skip.skip[0][2]
    wait = decide(hourly(overlap="wait"), T0, at(1) + 5, busy=True, misfire_grace=300)
    assert list(wait.run) == [at(1)] and wait.skip == ()


def test_slots_claimed_by_hand_are_neither_run_nor_skipped_again():
    d = decide(hourly(catchup="all"), T0, at(3, 30), busy=False, misfire_grace=300,
               claimed={at(2)})
    assert list(d.run) == [at(1), at(3)] and d.skip == () and d.through == at(3)


def test_a_year_of_downtime_of_a_minutely_schedule_is_bounded():
    s = Schedule(name="s", cron="* * * * *", active_since=T0)
    d = decide(s, T0, T0 + 366 * 86400, busy=False, misfire_grace=300)
    assert len(d.run) == 1 and len(d.skip) == RECORD_LIMIT
    assert d.older  # older missed slots exist beyond those counted
    assert d.skip[-1][0] < d.run[0] == d.through


CRONS = st.builds(
    lambda minute, hour, dom, dow: f"{minute} {hour} {dom} * {dow}",
    st.sampled_from(["0", "*/15", "5,35", "*/20", "59"]),
    st.sampled_from(["*", "*/2", "9-17", "3", "1,2,3"]),
    st.sampled_from(["*", "1-10", "*/5"]),
    st.sampled_from(["*", "1-5", "0"]))
ZONES = st.sampled_from(["UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron=CRONS, zone=ZONES, delay=st.integers(-3600, 3600),
       catchup=st.sampled_from(["latest", "all", "none"]), limit=st.integers(1, 30),
       start=st.integers(0, 366 * 86400),
       gaps=st.lists(st.integers(1, 3 * 86400), min_size=1, max_size=12),
       grace=st.sampled_from([0, 60, 300, 3600]))
def test_every_slot_is_decided_once_and_none_before_the_start(cron, zone, delay, catchup,
                                                              limit, start, gaps, grace):
    """Ticks at random intervals (short: the service was up; long: it was down). Every due slot
    since the schedule became active is decided exactly once, run or recorded as skipped; none
    from before; `latest`/`none` run at most one per decision, `all` at most limit + 1, and
    `none` never runs a slot later than the grace."""
    active = T0 + start + 0.5
    s = Schedule(name="s", cron=cron, timezone=zone, delay=delay, catchup=catchup,
                 catchup_limit=limit, active_since=active)
    through: int | None = None
    now = active
    seen: list[int] = []
    for gap in gaps:
        now += gap
        after = max(active - 1e-6, float(through) if through is not None else active - 1e-6)
        d = decide(s, after, now, busy=False, misfire_grace=grace)
        assert not d.older and d.unrecorded == 0  # spans here stay under the record limit
        run, skipped = list(d.run), [t for t, _, _ in d.skip]
        assert run == sorted(run)
        assert len(run) <= (limit + 1 if catchup == "all" else 1)
        if catchup == "none":
            assert all(now - (t + delay) <= grace for t in run)
        seen += run + skipped
        if d.through is not None:
            assert d.through == max(run + skipped)
            through = d.through
    due = []
    for moment in cronmod.runs(s.parsed(), s.tzinfo(), dt.datetime.fromtimestamp(active, UTC)):
        if moment.timestamp() + delay > now:
            break
        due.append(int(moment.timestamp()))
    assert sorted(seen) == due  # each due slot once, none missing, none before `active`
    assert len(set(seen)) == len(seen)


# --------------------------------------------------------------------------- the service

@pytest.fixture
def env(tmp_path, monkeypatch, sandbox):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TEST_LINE_TOKEN", TOKEN)
    monkeypatch.delenv("CONNECTOR_STATE_URL", raising=False)
    return {"url": f"sqlite:///{tmp_path / 'state.db'}", "path": tmp_path, "sandbox": sandbox}


def create(store: ScheduleStore, sandbox: Any, name: str, cron: str = "0 * * * *",
           output: dict[str, Any] | None = None, query: str | None = None,
           **policy: Any) -> Schedule:
    return store.create(Schedule(
        name=name, cron=cron, definition=export_definition(
            query=query or slot_query(3, prefix=name),
            output=output or result_config(sandbox), database_url=None), **policy))


def keys(sandbox: Any, prefix: str) -> list[str]:
    return [e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG)
            if e["event"]["event"]["deduplication_key"].startswith(prefix + "-")]


def slots_of(key_list: list[str]) -> list[int]:
    """Slots in the order their first event arrived."""
    out: list[int] = []
    for k in key_list:
        t = int(k.split("-")[1])
        if t not in out:
            out.append(t)
    return out


def runs_of(store: ScheduleStore, name: str) -> list[tuple[int, int, str, str | None]]:
    return sorted((r.scheduled_time, r.attempt, r.status, r.reason) for r in store.history(name))


def hour_floor(t: float) -> int:
    return int(t // HOUR * HOUR)


def test_catchup_after_downtime_and_then_on_time(env):
    sandbox = env["sandbox"]
    clock = ManualClock(hour_floor(time.time()) - 48 * HOUR + 600)  # hh:10, two days ago
    store = ScheduleStore(env["url"], clock=clock)
    for policy in ("latest", "all", "none"):
        create(store, sandbox, policy, catchup=policy)
    scheduler = Scheduler(store, SchedulerOptions(misfire_grace=300), clock)
    h = hour_floor(clock.t)
    clock.advance(5 * HOUR)  # down for five hours: slots h+1 .. h+5 (the last ten minutes late)
    scheduler.run_until_idle()
    missed = [h + i * HOUR for i in range(1, 6)]
    assert runs_of(store, "latest") == [(t, 1, "skipped", "catchup") for t in missed[:-1]] + [
        (missed[-1], 1, "success", None)]
    assert runs_of(store, "all") == [(t, 1, "success", None) for t in missed]
    assert runs_of(store, "none") == [(t, 1, "skipped", "catchup") for t in missed]
    assert slots_of(keys(sandbox, "latest")) == [missed[-1]]
    assert slots_of(keys(sandbox, "all")) == missed  # in order, one at a time
    assert len(keys(sandbox, "all")) == len(set(keys(sandbox, "all"))) == 15
    assert keys(sandbox, "none") == []

    # Up again: the next slot is on time and runs under every policy, once.
    clock.advance(HOUR - 600 + 30)
    scheduler.run_until_idle()
    nxt = h + 6 * HOUR
    for policy in ("latest", "all", "none"):
        assert runs_of(store, policy)[-1] == (nxt, 1, "success", None)
        assert slots_of(keys(sandbox, policy))[-1] == nxt
        assert len(keys(sandbox, policy)) == len(set(keys(sandbox, policy)))
    # The skipped slots say why in the history.
    note = store.history("none")[-1].note
    assert note and "catch-up 'none' runs no missed slot" in note
    store.close()


def test_no_slot_from_before_creation_or_while_disabled(env, tmp_path):
    sandbox = env["sandbox"]
    clock = ManualClock(hour_floor(time.time()) - 10 * HOUR + 1800)  # hh:30, ten hours ago
    store = ScheduleStore(env["url"], clock=clock)
    create(store, sandbox, "young", catchup="all")
    scheduler = Scheduler(store, SchedulerOptions(), clock)
    clock.advance(1200)  # hh:50: the hh:00 slot is before the schedule
    scheduler.run_until_idle()
    assert store.history("young") == []
    clock.advance(600 + 5)  # the next hour, on time
    scheduler.run_until_idle()
    first = hour_floor(clock.t)
    assert runs_of(store, "young") == [(first, 1, "success", None)]

    # Disabled for the hours until now (real time), then enabled with the real command: the
    # slots of the disabled hours never run, even with catch-up all.
    disable = run_connector(tmp_path, "schedule", "disable", "young", "--state", env["url"])
    assert disable.returncode == 0, disable.stderr
    clock.advance(3 * HOUR)
    scheduler.run_until_idle()
    assert runs_of(store, "young") == [(first, 1, "success", None)]
    enabled_at = time.time()
    enable = run_connector(tmp_path, "schedule", "enable", "young", "--state", env["url"])
    assert enable.returncode == 0, enable.stderr
    clock.t = time.time() + HOUR  # past the next real hour
    scheduler.run_until_idle()
    after_enable = [r for r in runs_of(store, "young") if r[0] > first]
    assert after_enable and all(t >= enabled_at for t, *_ in after_enable)
    assert all(status == "success" for _, _, status, _ in after_enable)
    store.close()


def slot_due_while_running(env: dict[str, Any], overlap: str) -> tuple[Any, ...]:
    """A schedule whose first slot runs three seconds (the API delays it); the next slot falls
    due meanwhile. Returns the store, the scheduler, the clock and the first slot."""
    sandbox = env["sandbox"]
    clock = ManualClock(hour_floor(time.time()) - 10 * HOUR + 600)
    store = ScheduleStore(env["url"], clock=clock)
    create(store, sandbox, overlap, overlap=overlap)
    scheduler = Scheduler(store, SchedulerOptions(), clock)
    first = hour_floor(clock.t) + HOUR
    sandbox.set_faults([{"delay_s": 3}])  # the first slot's request takes three seconds
    clock.t = first + 5
    assert scheduler.tick() == 1
    clock.t = first + HOUR + 5  # the next slot falls due while the first still runs
    assert scheduler.tick() == 0  # not started
    return store, scheduler, clock, first


def test_overlap_wait_runs_the_next_slot_after_the_previous_ends(env):
    store, scheduler, clock, first = slot_due_while_running(env, "wait")
    statuses = {r.scheduled_time: r.status for r in store.history("wait")}
    assert statuses == {first: "running", first + HOUR: "queued"}
    scheduler.run_until_idle()
    assert runs_of(store, "wait") == [(first, 1, "success", None),
                                      (first + HOUR, 1, "success", None)]
    got = keys(env["sandbox"], "wait")
    assert slots_of(got) == [first, first + HOUR]
    assert all(int(k.split("-")[1]) == first for k in got[:3])  # the second only after the first
    store.close()


def test_overlap_skip_records_the_slot_as_skipped(env):
    store, scheduler, clock, first = slot_due_while_running(env, "skip")
    scheduler.run_until_idle()
    assert runs_of(store, "skip") == [(first, 1, "success", None),
                                      (first + HOUR, 1, "skipped", "overlap")]
    assert slots_of(keys(env["sandbox"], "skip")) == [first]
    assert "overlap 'skip'" in (store.history("skip")[0].note or "")
    # Once the schedule is free, the next slot runs.
    clock.t = first + 2 * HOUR + 5
    scheduler.run_until_idle()
    assert runs_of(store, "skip")[-1] == (first + 2 * HOUR, 1, "success", None)
    store.close()


def test_three_configuration_errors_disable_the_schedule_until_enabled(env, tmp_path,
                                                                       monkeypatch):
    sandbox = env["sandbox"]
    told = tmp_path / "told.jsonl"
    notify = [{"type": "command", "on": "failure",
               "command": [sys.executable, "-c",
                           "import json, os; open(os.environ['OUT'], 'a').write(json.dumps("
                           "{k: v for k, v in os.environ.items() if k.startswith('CONNECTOR_')"
                           "}) + '\\n')"]}]
    monkeypatch.setenv("OUT", str(told))
    monkeypatch.delenv("TEST_MISSING_TOKEN", raising=False)
    clock = ManualClock(hour_floor(time.time()) - 10 * HOUR + 600)
    store = ScheduleStore(env["url"], clock=clock)
    # The token's variable is not set: every run fails with a configuration error (exit 2).
    create(store, sandbox, "broken",
           output=result_config(sandbox, access_token="${TEST_MISSING_TOKEN}"), notify=notify)
    # A schedule whose runs fail otherwise (the query's file is missing): notified, never
    # disabled.
    create(store, sandbox, "flaky", query="SELECT * FROM read_csv('/nonexistent/x.csv')",
           notify=notify)
    scheduler = Scheduler(store, SchedulerOptions(), clock)
    first = hour_floor(clock.t) + HOUR
    for i in range(4):
        clock.t = first + i * HOUR + 5
        scheduler.run_until_idle()
    broken = store.history("broken")
    assert [(r.scheduled_time, r.status, r.reason) for r in reversed(broken)] == [
        (first + i * HOUR, "error", "config_error") for i in range(3)]  # the fourth never ran
    assert "TEST_MISSING_TOKEN" in (broken[0].error or "")
    assert broken[0].note and "disabled after 3 consecutive runs" in broken[0].note
    assert broken[1].note is None
    schedule = store.get("broken")
    assert not schedule.enabled and "connector schedule enable broken" in schedule.disabled_reason
    flaky = store.history("flaky")
    assert [r.reason for r in flaky] == ["source_error"] * 4 and store.get("flaky").enabled

    messages = [json.loads(line) for line in told.read_text().splitlines()]
    by = {name: [m for m in messages if m["CONNECTOR_SCHEDULE"] == name]
          for name in ("broken", "flaky")}
    assert [m["CONNECTOR_SCHEDULE_DISABLED"] for m in by["broken"]] == ["false", "false", "true"]
    assert len(by["flaky"]) == 4 and {m["CONNECTOR_REASON"] for m in by["flaky"]} == {
        "source_error"}
    assert by["broken"][-1]["CONNECTOR_STATUS"] == "error"
    assert "disabled after 3" in by["broken"][-1]["CONNECTOR_NOTE"]
    assert TOKEN not in told.read_text()

    # The history and `show` say why; `schedule enable` resumes it (with the token set now).
    shown = run_connector(tmp_path, "schedule", "show", "broken", "--state", env["url"])
    assert "disabled_reason:" in shown.stdout and "consecutive" in shown.stdout
    hist = run_connector(tmp_path, "schedule", "history", "broken", "--json", "--state",
                         env["url"])
    assert "disabled after 3 consecutive" in json.loads(hist.stdout)[0]["note"]
    table = run_connector(tmp_path, "schedule", "history", "broken", "--state", env["url"])
    assert "\nnote: " in table.stdout and "disabled after 3 consecutive" in table.stdout
    enable = run_connector(tmp_path, "schedule", "enable", "broken", "--state", env["url"])
    assert enable.returncode == 0, enable.stderr
    resumed = store.get("broken")
    assert resumed.enabled and resumed.disabled_reason is None
    monkeypatch.setenv("TEST_MISSING_TOKEN", TOKEN)
    clock.t = time.time() + HOUR
    scheduler.run_until_idle()
    latest = store.history("broken")[0]
    assert latest.status == "success" and latest.scheduled_time > first + 3 * HOUR
    assert slots_of(keys(sandbox, "broken")) == [latest.scheduled_time]
    store.close()


def test_the_store_keeps_the_policy(env):
    store = ScheduleStore(env["url"])
    create(store, env["sandbox"], "p", catchup="all", catchup_limit=5, overlap="skip")
    s = store.get("p")
    assert (s.catchup, s.catchup_limit, s.overlap) == ("all", 5, "skip")
    assert s.active_since == pytest.approx(s.created_at)
    store.close()


def test_the_commands_take_and_show_the_policy(env, tmp_path):
    query = tmp_path / "q.sql"
    query.write_text(slot_query(1, "cli"))
    base = ["--state", env["url"]]
    made = run_connector(tmp_path, "schedule", "create", "cli", "--cron", "@hourly", str(query),
                         "--result", json.dumps(result_config(env["sandbox"])),
                         "--catchup", "all", "--catchup-limit", "6", "--overlap", "skip", *base)
    assert made.returncode == 0, made.stderr
    shown = json.loads(run_connector(tmp_path, "schedule", "show", "cli", "--json", *base).stdout)
    assert (shown["catchup"], shown["catchup_limit"], shown["overlap"]) == ("all", 6, "skip")
    # update keeps what is not given
    upd = run_connector(tmp_path, "schedule", "update", "cli", "--cron", "@daily", *base)
    assert upd.returncode == 0, upd.stderr
    shown = json.loads(run_connector(tmp_path, "schedule", "show", "cli", "--json", *base).stdout)
    assert (shown["catchup"], shown["catchup_limit"], shown["overlap"]) == ("all", 6, "skip")
    bad = run_connector(tmp_path, "schedule", "update", "cli", "--catchup-limit", "0", *base)
    assert bad.returncode == 2 and "--catchup-limit" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_connector(tmp_path, "schedule", "update", "cli", "--overlap", "never", *base)
    assert bad.returncode == 2 and "--overlap" in bad.stderr


def test_an_old_state_database_is_upgraded_with_the_defaults(tmp_path):
    """A database made by the first migration only (schedules saved before the service
    existed) opens with catch-up latest, overlap wait, and active since its creation."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from connector.schedule.state import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text(
            "INSERT INTO schedules (name, kind, cron, timezone, delay_seconds, enabled, "
            "definition, created_at, updated_at) VALUES ('old', 'export', '@daily', 'UTC', 0, "
            "1, '{}', 1700000000, 1700000000)"))
    engine.dispose()
    store = ScheduleStore(url)
    s = store.get("old")
    assert (s.catchup, s.catchup_limit, s.overlap, tuple(s.notify)) == ("latest", 24, "wait", ())
    assert s.active_since == 1700000000
    store.close()
    assert Path(tmp_path / "old.db").exists()
