"""High availability on a real PostgreSQL (started by `.ci/postgres.sh`): three scheduler
processes share one state database and an every-minute schedule for about three minutes (four
slots). Each
slot runs once and only once; the scheduler running a slot is killed with SIGKILL in the middle
of it, and another takes the slot over once the lease has expired, the history showing both
attempts. Under CI=true a missing PostgreSQL fails these tests; elsewhere they skip.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import sqlalchemy as sa

from connector.schedule import Schedule, ScheduleStore, export_definition
from helpers import (TAG, TOKEN, backdate_schedule, postgres_database, result_config,
                     slot_query, start_scheduler, wait_for)

pytestmark = pytest.mark.timeout(420)
LEASE = 4  # seconds: the takeover comes this long after the last renewal


def keys(sandbox: Any) -> list[str]:
    return [e["event"]["event"]["deduplication_key"] for e in sandbox.events(TAG)]


def history(store: ScheduleStore) -> list[Any]:
    return sorted(store.history("ha"), key=lambda r: (r.scheduled_time, r.attempt))


def successes(store: ScheduleStore) -> list[int]:
    return [r.scheduled_time for r in history(store) if r.status == "success"]


def test_three_schedulers_run_each_slot_once_and_take_over_a_killed_one(tmp_path, sandbox):
    url = postgres_database("connector_test_ha")
    store = ScheduleStore(url)
    store.create(Schedule(name="ha", cron="* * * * *", definition=export_definition(
        slot_query(3, "ha"), result_config(sandbox), None)))
    backdate_schedule(store, "ha", 61)  # the newest minute is due at once (catch-up latest)
    args = ("--state", url, "--lease", str(LEASE), "--poll", "0.5", "--grace-period", "10")
    # Started together on a database none of them has seen: the migrations run once.
    procs = [start_scheduler(tmp_path, *args, name=f"scheduler{i}") for i in range(3)]
    killed: dict[str, Any] = {}
    try:
        first = wait_for(lambda: successes(store), 90, "the first slot")[0]
        # The next slot's request hangs in the API: its scheduler is killed mid-run.
        sandbox.set_faults([{"delay_s": 25}])
        victim = wait_for(lambda: next((r for r in history(store) if r.status == "running"
                                        and r.scheduled_time == first + 60), None),
                          90, "the second slot to start")
        time.sleep(1.0)  # its request is in flight
        os.kill(victim.pid, signal.SIGKILL)
        killed = {"pid": victim.pid, "at": time.monotonic()}
        wait_for(lambda: first + 60 in successes(store), 60, "another scheduler to take over")
        took = time.monotonic() - killed["at"]
        # Two more minutes: about three minutes in all.
        wait_for(lambda: first + 120 in successes(store), 90, "the slot after it")
        wait_for(lambda: first + 180 in successes(store), 90, "the fourth slot")
    finally:
        for p, _ in procs:
            if p.poll() is None and p.pid != killed.get("pid"):
                p.send_signal(signal.SIGTERM)
        codes = {p.pid: p.wait(60) for p, _ in procs}
    logs = {p.pid: log.read_text() for p, log in procs}
    assert codes[killed["pid"]] == -signal.SIGKILL
    assert [c for pid, c in codes.items() if pid != killed["pid"]] == [0, 0], logs
    # After the lease expired (renewed every third of it), not before; and soon after.
    assert LEASE * 2 / 3 - 0.5 <= took <= LEASE + 15, took

    rows = history(store)
    # On a slow start a minute boundary may pass first: catch-up `latest` skipped the older.
    assert all(r.status == "skipped" and r.reason == "catchup"
               for r in rows if r.scheduled_time < first)
    rows = [r for r in rows if r.scheduled_time >= first]
    slots = sorted({r.scheduled_time for r in rows})
    assert slots[0] == first and all(b - a == 60 for a, b in zip(slots, slots[1:]))
    by_slot = {t: [r for r in rows if r.scheduled_time == t] for t in slots}
    for t, attempts in by_slot.items():
        done = [r for r in attempts if r.status == "success"]
        if t > first + 180 and not done:  # decided as the schedulers stopped
            continue
        assert len(done) == 1, attempts  # once and only once
        if t == first + 60:
            gone, retry = attempts
            assert (gone.attempt, gone.status, gone.reason) == (1, "abandoned", "lease_expired")
            assert gone.pid == killed["pid"] and "stopped renewing its lease" in gone.error
            assert (retry.attempt, retry.status) == (2, "success")
            assert retry.pid != killed["pid"]
        else:
            assert [(r.attempt, r.status) for r in attempts] == [(1, "success")]
    # One slot at a time, across the three processes.
    spans = sorted((r.started_at, r.finished_at) for r in rows if r.status == "success")
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))

    # The API got every slot's events exactly once: the killed attempt's copies, resent by
    # the takeover, were deduplicated on deduplication_key.
    sent = keys(sandbox)
    assert len(sent) == len(set(sent))
    done_slots = {t for t, attempts in by_slot.items()
                  if any(r.status == "success" for r in attempts)}
    assert set(sent) == {f"ha-{t}-{i}" for t in done_slots for i in range(3)}

    text = "".join(logs.values())
    assert "take over ha" in text and f"(pid {killed['pid']})" in text
    assert "Traceback" not in text and TOKEN not in text
    # The shared database's migration ran once, under its lock.
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() \
            == ["0002"]
    store.close()


def test_postgresql_claims_are_unique_under_concurrent_deciders(tmp_path, sandbox):
    """Many threads deciding and claiming one schedule's slots at once, each with its own
    connection: every slot gets one row and at most one running attempt."""
    import threading

    from connector.schedule import claims
    from connector.scheduler import Scheduler, SchedulerOptions

    url = postgres_database("connector_test_claims")
    store = ScheduleStore(url)
    store.create(Schedule(name="ha", cron="* * * * *", catchup="all", catchup_limit=50,
                          definition=export_definition(slot_query(1, "c"),
                                                       result_config(sandbox), None)))
    backdate_schedule(store, "ha", 40 * 60)
    stores = [ScheduleStore(url) for _ in range(6)]
    schedulers = [Scheduler(s, SchedulerOptions()) for s in stores]
    got: list[Any] = []
    barrier = threading.Barrier(len(schedulers))

    def race(sch: Scheduler) -> None:
        barrier.wait()
        now = time.time()
        for row in claims.schedule_rows(sch.store):
            sch._decide(row.id, now)
            claim = claims.claim_next(sch.store, row.id, sch.owner, 60, now)
            if claim is not None:
                got.append(claim)

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 1  # one slot of the schedule runs at a time
    rows = history(store)
    assert len({r.scheduled_time for r in rows}) == len(rows) in (40, 41)
    assert sum(r.status == "queued" for r in rows) == len(rows) - 1
    assert sum(r.status == "running" for r in rows) == 1
    for s in [store, *stores]:
        s.close()


def test_a_missing_postgresql_fails_under_ci_and_skips_elsewhere(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("PG_PORT", str(port))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="bash .ci/postgres.sh start"):
        postgres_database("connector_test_missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="bash .ci/postgres.sh start"):
        postgres_database("connector_test_missing")
