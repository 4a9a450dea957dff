"""The scheduler service as it runs: real `connector scheduler` processes on one SQLite state
file, real DuckDB queries, the LINE sandbox over HTTP. Two processes give each slot to exactly
one of them, one at a time; SIGTERM lets a running export finish within the grace period, or
interrupts it and queues its slot again; --once, --max-runs and bad options.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from connector.schedule import Schedule, ScheduleStore, export_definition
from helpers import (TAG, TOKEN, backdate_schedule, result_config, run_connector, slot_query,
                     start_scheduler, wait_for)

pytestmark = pytest.mark.timeout(300)


def keys(sandbox: Any, prefix: str) -> list[str]:
    return [e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG)
            if e["event"]["event"]["deduplication_key"].startswith(prefix + "-")]


def runs(store: ScheduleStore, name: str) -> list[Any]:
    return sorted(store.history(name), key=lambda r: (r.scheduled_time, r.attempt))


def create(store: ScheduleStore, sandbox: Any, name: str, **policy: Any) -> Schedule:
    return store.create(Schedule(name=name, cron="* * * * *", definition=export_definition(
        slot_query(3, name), result_config(sandbox), None), **policy))


def stop(proc: Any, timeout: float = 60) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def test_two_processes_on_one_sqlite_file_run_each_slot_once(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ScheduleStore(url)
    create(store, sandbox, "burst", catchup="all", catchup_limit=24)
    backdate_schedule(store, "burst", 30 * 60)  # down for 30 minutes: 30 slots due at once
    procs = [start_scheduler(tmp_path, "--state", url, "--poll", "0.3") for _ in range(2)]
    try:
        def settled() -> bool:
            rs = runs(store, "burst")
            return len(rs) >= 30 and all(r.status in ("success", "skipped") for r in rs)
        wait_for(settled, 180, "30 slots decided and the chosen ones run")
        # Then the next minute's slot, decided as it falls due by both processes at once.
        newest = max(r.scheduled_time for r in runs(store, "burst"))
        wait_for(lambda: any(r.scheduled_time == newest + 60 and r.status == "success"
                             for r in runs(store, "burst")), 120, "the next minute's slot")
    finally:
        codes = [stop(p) for p, _ in procs]
    logs = [log.read_text() for _, log in procs]
    assert codes == [0, 0], logs
    rs = runs(store, "burst")
    times = [r.scheduled_time for r in rs]
    assert len(set(times)) == len(times)  # one attempt per slot, none twice
    assert all(b - a == 60 for a, b in zip(times, times[1:]))  # every minute, none missing
    done = [r for r in rs if r.status == "success"]
    skipped = [r for r in rs if r.status == "skipped"]
    assert len(done) >= 25 and all(r.reason == "catchup" for r in skipped)
    assert [r.scheduled_time for r in done] == times[-len(done):]  # the newest run
    # Never two slots of the schedule at once, whichever process ran them.
    spans = sorted((r.started_at, r.finished_at) for r in done)
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:]))
    sent = keys(sandbox, "burst")
    assert sorted(sent) == sorted(f"burst-{r.scheduled_time}-{i}" for r in done for i in range(3))
    for log in logs:
        assert "Traceback" not in log and TOKEN not in log
    assert sum(log.count("start burst") for log in logs) == len(done)
    store.close()


def test_sigterm_lets_a_running_export_finish_within_the_grace_period(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ScheduleStore(url)
    create(store, sandbox, "graceful")
    backdate_schedule(store, "graceful", 65)  # the newest slot is due now
    sandbox.set_faults([{"delay_s": 2}])
    proc, log = start_scheduler(tmp_path, "--state", url, "--grace-period", "60")
    wait_for(lambda: any(r.status == "running" for r in store.history("graceful")), 60,
             "the run to start")
    (slot,) = [r.scheduled_time for r in store.history("graceful") if r.status == "running"]
    time.sleep(0.5)
    assert stop(proc) == 0, log.read_text()
    # On a slow machine the next minute's slot may fall due before SIGTERM: not this one's.
    (run,) = [r for r in store.history("graceful") if r.scheduled_time == slot]
    assert (run.status, run.attempt) == ("success", 1)
    assert len(keys(sandbox, "graceful")) == 3
    text = log.read_text()
    assert "start graceful" in text and "end graceful" in text and "success" in text
    store.close()


def test_sigterm_after_the_grace_period_interrupts_and_queues_the_slot_again(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ScheduleStore(url)
    create(store, sandbox, "cut")
    backdate_schedule(store, "cut", 65)
    sandbox.set_faults([{"delay_s": 30}])  # the request hangs longer than the grace period
    proc, log = start_scheduler(tmp_path, "--state", url, "--grace-period", "2")
    wait_for(lambda: any(r.status == "running" for r in store.history("cut")), 60,
             "the run to start")
    (slot,) = [r.scheduled_time for r in store.history("cut") if r.status == "running"]
    time.sleep(1.0)  # the request is in flight
    began = time.monotonic()
    assert stop(proc) == 0, log.read_text()
    assert time.monotonic() - began < 20  # the grace period, then the interruption
    text = log.read_text()
    assert "grace period over: interrupting 1 running export" in text
    assert "interrupted by shutdown; queued again" in text
    # On a slow machine the next minute's slot may fall due meanwhile: only this slot counts.
    first, second = [r for r in runs(store, "cut") if r.scheduled_time == slot]
    assert (first.attempt, first.status, first.reason) == (1, "error", "interrupted")
    assert "queued again" in (first.note or "")
    assert (second.attempt, second.status) == (2, "queued")
    report = json.loads(Path(first.report_path).read_text())
    assert report["reason"] == "interrupted"

    # The next scheduler (here: a --once run) takes the queued attempt and finishes it.
    once = run_connector(tmp_path, "scheduler", "--state", url, "--once")
    assert once.returncode == 0, once.stderr
    first, second = [r for r in runs(store, "cut") if r.scheduled_time == slot]
    assert (second.attempt, second.status) == (2, "success")
    assert {k for k in keys(sandbox, "cut") if k.startswith(f"cut-{slot}-")} == \
        {f"cut-{slot}-{i}" for i in range(3)}
    assert TOKEN not in text + once.stderr
    store.close()


def test_once_and_max_runs(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ScheduleStore(url)
    hour = int(time.time() // 3600 * 3600)

    def hourly(name: str, hours: int, query: str | None = None) -> None:
        """Active since just after the hour `hours` ago: exactly `hours` slots are due."""
        made = store.create(Schedule(name=name, cron="0 * * * *", catchup="all",
                                     definition=export_definition(
                                         query or slot_query(3, name), result_config(sandbox),
                                         None)))
        backdate_schedule(store, name, made.active_since - (hour - (hours - 1) * 3600 - 1))

    hourly("ok", 3)
    hourly("bad", 1, "SELECT * FROM read_csv('/nonexistent/x.csv')")
    once = run_connector(tmp_path, "scheduler", "--state", url, "--once")
    assert once.returncode == 1, once.stderr  # a run failed
    assert [(r.scheduled_time, r.status) for r in runs(store, "ok")] == [
        (hour - 2 * 3600, "success"), (hour - 3600, "success"), (hour, "success")]
    assert [r.reason for r in runs(store, "bad")] == ["source_error"]
    assert once.stderr.count("start ok") == 3 and "end bad" in once.stderr
    again = run_connector(tmp_path, "scheduler", "--state", url, "--once")
    assert again.returncode == 0 and "0 runs started" in again.stderr  # nothing due now

    hourly("more", 5)
    capped = run_connector(tmp_path, "scheduler", "--state", url, "--max-runs", "2")
    assert capped.returncode == 0, capped.stderr
    assert capped.stderr.count("start more") == 2 and "2 runs started" in capped.stderr
    assert [r.status for r in runs(store, "more")] == ["success"] * 2 + ["queued"] * 3
    store.close()


@pytest.mark.parametrize("args,message", [
    (["--state", "nosuchdriver://x"], "--state: cannot use"),
    (["--max-runs", "0"], "--max-runs: must be more than 0"),
    (["--lease", "soon"], "--lease: not a number"),
    (["--ui-port", "70000"], "--ui-port: must be 0..65535"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, args, message):
    run = run_connector(tmp_path, "scheduler", *args)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_dashboard_port_in_use_exits_2(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = run_connector(tmp_path, "scheduler", "--state", f"sqlite:///{tmp_path}/s.db",
                            "--ui", "--ui-port", str(port), "--once")
    assert run.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_service_rides_out_a_state_database_it_cannot_read(tmp_path):
    """--once with a state database that fails under it: a warning, exit 1, no traceback."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'state.db'}"
    ScheduleStore(url).close()  # created and migrated
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the table the service reads first is gone
        conn.execute(sa.text("ALTER TABLE schedules RENAME TO schedules_gone"))
    engine.dispose()
    run = run_connector(tmp_path, "scheduler", "--state", url, "--once")
    assert run.returncode == 1, run.stderr
    assert "the state database did not answer (OperationalError)" in run.stderr
    assert "Traceback" not in run.stderr
