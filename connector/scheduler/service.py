"""The scheduler service: starts each due slot at `scheduled_time + delay`, all year, on one
machine or several sharing a PostgreSQL state database.

One loop (the caller's thread) decides due slots (catch-up and overlap, `catchup.py`) and
claims queued ones; each claimed slot runs on a worker thread through the schedule package's
runner (`run_slot`, whatever the schedule's kind), under a lease a renewer thread extends. When
a run ends, the worker records it, counts configuration errors (the third in a row disables
the schedule) and sends the notifications.

`stop()` (SIGTERM) stops taking slots and lets running ones finish for `grace_period` seconds;
then it cancels them (their reports say `interrupted`) and queues their slots again as new
attempts, so another scheduler, or this one when it is back, runs them: taking over a slot is
safe because LINE deduplicates events on `event_name` and `deduplication_key`.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import exc as sa_exc

from connector.cancel import CancelToken
from connector.connections import ConnectionStore
from connector.errors import Cancelled, ConfigError
from connector.schedule import claims
from connector.schedule import cron as cronmod
from connector.schedule.claims import QUEUED, RUNNING, LeasedClaim, ScheduleRow
from connector.schedule.runner import run_slot
from connector.schedule.store import RunRecord, Schedule, ScheduleStore

from . import notify
from .catchup import decide

log = logging.getLogger("connector.scheduler")

DISABLE_AFTER = 3  # consecutive configuration errors that disable a schedule


class Clock(Protocol):
    def now(self) -> float: ...


class RealClock:
    """The service's clock: UNIX time. Tests may pass another."""

    def now(self) -> float:
        return time.time()


@dataclass
class SchedulerOptions:
    lease: float = 60.0  # seconds a claim holds without renewal before another may take over
    grace_period: float = 30.0  # after stop(): seconds running exports get to finish
    misfire_grace: float = 300.0  # the newest due slot found this late is still on time
    max_concurrent: int = 4  # runs at once in this process (one per schedule at most)
    poll: float = 1.0  # seconds between looks at the database
    once: bool = False  # run what is due now, then return
    max_runs: int | None = None  # return after starting (and finishing) this many runs


@dataclass
class _Active:
    claim: LeasedClaim
    schedule: Schedule
    token: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None


def iso(unix: float | None, tz: dt.tzinfo) -> str | None:
    if unix is None:
        return None
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).astimezone(tz).isoformat(
        timespec="seconds")


def event_of(record: RunRecord, schedule: Schedule, disabled: bool) -> notify.RunEvent:
    tz = schedule.tzinfo()
    return notify.RunEvent({
        "schedule": schedule.name, "scheduled_time": iso(record.scheduled_time, tz),
        "status": "success" if record.status == "success" else "error",
        "reason": record.reason, "error": record.error, "attempt": record.attempt,
        "started": iso(record.started_at, tz), "finished": iso(record.finished_at, tz),
        "rows_read": record.rows_read, "events_sent": record.events_sent,
        "invalid_records": record.invalid_records, "rejected_events": record.rejected_events,
        "failed_events": record.failed_events, "report_path": record.report_path,
        "schedule_disabled": disabled, "note": record.note, "host": record.host,
    })


def hidden_names(schedule: Schedule) -> set[str]:
    """Environment variables a notification command must not inherit: those the schedule's
    definition, its saved connection and its notification targets read secrets from."""
    names = notify.referenced_names(dict(schedule.definition)) | \
        notify.referenced_names(list(schedule.notify))
    connection = schedule.definition.get("connection")
    if connection:
        try:
            names |= notify.referenced_names(ConnectionStore().get(connection).as_config())
        except ConfigError:
            pass  # the run failed on it already; nothing more to hide
    return names


class Scheduler:
    def __init__(self, store: ScheduleStore, options: SchedulerOptions | None = None,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.options = options or SchedulerOptions()
        self.clock = clock or RealClock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_runs = 0
        self.failed_runs = 0
        self._active: dict[int, _Active] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._deadline: float | None = None
        self._cancelled = False
        self._next_slot: dict[tuple[str, str, float], float | None] = {}
        self._renewer: threading.Thread | None = None
        self._done = threading.Event()

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Take no new slots; running exports get the grace period. Safe in a signal handler."""
        if not self._stopping:
            self._stopping = True
            self._deadline = time.monotonic() + self.options.grace_period
        self._wake.set()

    def cancel_now(self) -> None:
        """Stop at once: cancel running exports (a second SIGTERM)."""
        self.stop()
        self._deadline = time.monotonic()
        self._wake.set()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def _accepting(self) -> bool:
        if self._stopping:
            return False
        return self.options.max_runs is None or self.started_runs < self.options.max_runs

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Until stop(), --once is done or --max-runs reached. 0, or 1 when a --once run failed."""
        self._start_renewer()
        log.info("scheduler %s started (lease %gs, grace period %gs%s)", self.owner,
                 self.options.lease, self.options.grace_period,
                 ", once" if self.options.once else "")
        try:
            while True:
                claimed = 0
                if self._accepting():
                    try:
                        claimed = self.tick()
                    except sa_exc.SQLAlchemyError as exc:
                        # The database restarted or the network dropped: running exports go
                        # on, and the next look tries again.
                        log.warning("the state database did not answer (%s); trying again in "
                                    "%gs", type(getattr(exc, "orig", None) or exc).__name__,
                                    self.options.poll)
                        claimed = -1
                        if self.options.once:  # cron starts it again next time
                            self.failed_runs += 1
                            self.stop()
                if self._stopping and self._deadline is not None and not self._cancelled \
                        and time.monotonic() >= self._deadline and self.active:
                    self._cancel_all()
                idle = self.active == 0
                if idle and (self._stopping or (self.options.once and claimed == 0)
                             or not self._accepting()):
                    break
                self._wake.wait(self._sleep_time())
                self._wake.clear()
        finally:
            self._join_all()
            self._done.set()
            if self._renewer is not None:
                self._renewer.join(5)
        log.info("scheduler %s stopped: %d runs started, %d failed", self.owner,
                 self.started_runs, self.failed_runs)
        return 1 if self.options.once and self.failed_runs else 0

    def close(self) -> None:
        """Stop the lease renewer (after run_until_idle; run() stops it itself)."""
        self._done.set()

    def run_until_idle(self, timeout: float = 300) -> None:
        """Tick and wait for the runs it starts until nothing more is claimable (tests; the
        clock stays where the test put it)."""
        deadline = time.monotonic() + timeout
        self._start_renewer()
        while time.monotonic() < deadline:
            claimed = self.tick()
            if claimed == 0 and self.active == 0:
                return
            self._wake.wait(0.2)
            self._wake.clear()
        raise TimeoutError("the scheduler did not become idle")

    def _sleep_time(self) -> float:
        wait = self.options.poll
        if self._stopping and self._deadline is not None and not self._cancelled:
            wait = min(wait, max(0.0, self._deadline - time.monotonic()))
        return max(0.01, wait)

    def tick(self) -> int:
        """Decide every schedule's due slots, then claim what this process may run. Returns
        the number of runs started."""
        now = self.clock.now()
        rows = claims.schedule_rows(self.store)
        for row in rows:
            if row.schedule.enabled and self._due(row, now):
                self._decide(row.id, now)
        started = 0
        if not self._accepting():
            return 0
        open_runs = claims.open_runs(self.store)
        candidates: list[int] = []
        for run in open_runs:  # oldest slot first
            if run.schedule_id not in candidates and (run.status == QUEUED or run.expired(now)):
                candidates.append(run.schedule_id)
        live = {r.schedule_id for r in open_runs
                if r.live(now) or (r.status == RUNNING and r.lease_owner == self.owner)}
        for schedule_id in candidates:
            if schedule_id in live:
                continue
            with self._lock:
                full = len(self._active) >= self.options.max_concurrent
            if full or not self._accepting():
                break
            try:
                claim = claims.claim_next(self.store, schedule_id, self.owner,
                                          self.options.lease, now)
            except sa_exc.OperationalError as exc:
                log.warning("claim: the state database is busy (%s); trying again",
                            type(exc.orig or exc).__name__)
                continue
            if claim is not None:
                self._start(claim)
                started += 1
        return started

    # ------------------------------------------------------------------ deciding
    def _after(self, row: ScheduleRow) -> float:
        """Slots after this (exclusive) are undecided: after the last decided, and not before
        the schedule became active."""
        since = (row.schedule.active_since or row.schedule.created_at or 0.0) - 1e-6
        return max(since, float(row.scheduled_through) if row.scheduled_through is not None
                   else since)

    def _due(self, row: ScheduleRow, now: float) -> bool:
        s = row.schedule
        after = self._after(row)
        key = (s.cron, s.timezone, after)
        if key not in self._next_slot:
            try:
                first = next(cronmod.runs(s.parsed(), s.tzinfo(), dt.datetime.fromtimestamp(
                    after, dt.timezone.utc)), None)
            except ConfigError as exc:
                log.warning("schedule %s: %s", s.name, exc)
                first = None
            if len(self._next_slot) > 10_000:
                self._next_slot.clear()
            self._next_slot[key] = None if first is None else first.timestamp()
        nxt = self._next_slot[key]
        return nxt is not None and nxt + s.delay <= now

    def _decide(self, schedule_id: int, now: float) -> None:
        try:
            with claims.locked(self.store, schedule_id) as lk:
                if lk is None or not lk.schedule.enabled:
                    return
                s = lk.schedule
                after = self._after(lk.row)
                open_runs = lk.open_runs()
                # Busy: a slot queued, or running under a lease (live, or expired and about to
                # be taken over); a slot run by hand (`schedule run`, no lease) is not counted.
                busy = any(r.status == QUEUED or (r.status == RUNNING and r.lease_owner)
                           for r in open_runs)
                decision = decide(s, after, now, busy=busy,
                                  misfire_grace=self.options.misfire_grace,
                                  claimed=lk.claimed(int(after), int(now - s.delay) + 1))
                if decision.empty:
                    return
                for t in decision.run:
                    lk.queue(t, now)
                for t, reason, note in decision.skip:
                    lk.skip(t, now, reason, note)
                assert decision.through is not None
                lk.decided_through(decision.through)
        except sa_exc.IntegrityError:
            # A slot was claimed by hand (`schedule run`) between our look and our insert:
            # nothing was written; the next tick decides again and sees it.
            log.info("schedule %d: a slot was claimed meanwhile; deciding again", schedule_id)
            return
        except sa_exc.OperationalError as exc:
            log.warning("decide: the state database is busy (%s); trying again",
                        type(exc.orig or exc).__name__)
            return
        tz = s.tzinfo()
        for reason in ("catchup", "overlap"):
            skipped = [t for t, r, _ in decision.skip if r == reason]
            if skipped:
                log.info("skip %s: %d slot%s (%s) from %s to %s", s.name, len(skipped),
                         "" if len(skipped) == 1 else "s", reason, iso(skipped[0], tz),
                         iso(skipped[-1], tz))
        if decision.unrecorded or decision.older:
            counted = f"{decision.unrecorded} more" if decision.unrecorded else "more"
            log.info("skip %s: %s missed slots before those%s, without a history row each "
                     "(catch-up %s)", s.name, counted,
                     " (and older ones, not counted)" if decision.older else "", s.catchup)
        for t in decision.run:
            log.info("queue %s: slot %s", s.name, iso(t, tz))

    # ------------------------------------------------------------------ running
    def _start(self, claim: LeasedClaim) -> None:
        try:
            schedule = self.store.get(claim.schedule)
        except ConfigError:  # deleted since the claim
            return
        active = _Active(claim, schedule)
        active.thread = threading.Thread(target=self._work, args=(active,),
                                         name=f"run-{claim.schedule}-{claim.scheduled_time}",
                                         daemon=True)
        with self._lock:
            self._active[claim.run_id] = active
        self.started_runs += 1
        if claim.took_over is not None:
            gone = claim.took_over
            log.warning("take over %s: slot %s, attempt %d of %s on %s (pid %s) stopped renewing "
                        "its lease; running attempt %d", claim.schedule,
                        iso(claim.scheduled_time, schedule.tzinfo()), gone.attempt,
                        gone.lease_owner, gone.host, gone.pid, claim.attempt)
        active.thread.start()

    def _work(self, active: _Active) -> None:
        claim, schedule = active.claim, active.schedule
        tz = schedule.tzinfo()
        slot = dt.datetime.fromtimestamp(claim.scheduled_time, dt.timezone.utc).astimezone(tz)
        when = slot.isoformat(timespec="seconds")
        log.info("start %s: slot %s, attempt %d", schedule.name, when, claim.attempt)
        began = time.monotonic()
        try:
            self._execute(active, slot)
            record = self.store.run(claim.run_id)
            reason = active.token.reason if active.token.cancelled else None
            if reason == "shutdown":
                requeued = claims.requeue(self.store, claim, self.clock.now(),
                                          "stopped by the scheduler's shutdown; queued again")
                log.info("end %s: slot %s, attempt %d: interrupted by shutdown%s (%.1f s)",
                         schedule.name, when, claim.attempt,
                         "; queued again" if requeued else "", time.monotonic() - began)
                return
            if reason == "lease_lost":
                log.warning("end %s: slot %s, attempt %d: stopped, another scheduler took the "
                            "slot over (%.1f s)", schedule.name, when, claim.attempt,
                            time.monotonic() - began)
                return
            claims.release(self.store, claim)
            status = record.status if record else "error"
            if status != "success":
                with self._lock:
                    self.failed_runs += 1
            config_error = record is not None and record.reason == ConfigError.reason
            disabled = claims.count_configuration_error(
                self.store, claim.schedule_id, config_error, claim.run_id, DISABLE_AFTER,
                self.clock.now())
            log.info("end %s: slot %s, attempt %d: %s%s (%.1f s)", schedule.name, when,
                     claim.attempt, status, _counts(record), time.monotonic() - began)
            if disabled:
                log.warning("disable %s: %s", schedule.name, disabled)
            if record is not None and schedule.notify:
                record = self.store.run(claim.run_id) or record  # with the note, if any
                notify.notify(schedule.notify, event_of(record, schedule, bool(disabled)),
                              hidden_names(schedule))
        except Exception as exc:  # noqa: BLE001 - a worker must never die silently
            log.error("run %s: slot %s, attempt %d: the scheduler failed to record it: %s",
                      schedule.name, when, claim.attempt, type(exc).__name__)
        finally:
            with self._lock:
                self._active.pop(claim.run_id, None)
            self._wake.set()

    def _execute(self, active: _Active, slot: dt.datetime) -> None:
        claim = active.claim
        try:
            run_slot(self.store, active.schedule, slot, claim=claim.claim, cancel=active.token)
        except ConfigError as exc:  # before the run started (e.g. a kind this runner lacks)
            self.store.finish(claim.run_id, None, "error", ConfigError.reason, str(exc), None)
        except (Cancelled, KeyboardInterrupt):
            pass  # recorded by the runner as interrupted
        except Exception as exc:  # noqa: BLE001 - recorded, not raised: the service goes on
            record = self.store.run(claim.run_id)
            if record is not None and record.status in ("running", QUEUED):
                self.store.finish(claim.run_id, None, "error", "crashed",
                                  f"the run stopped unexpectedly: {type(exc).__name__}", None)

    def _cancel_all(self) -> None:
        self._cancelled = True
        with self._lock:
            active = list(self._active.values())
        if active:
            log.warning("grace period over: interrupting %d running export%s", len(active),
                        "" if len(active) == 1 else "s")
        for a in active:
            a.token.cancel("shutdown")

    def _join_all(self) -> None:
        while True:
            with self._lock:
                threads = [a.thread for a in self._active.values() if a.thread is not None]
            if not threads:
                return
            for t in threads:
                t.join(1.0)
            if self._stopping and self._deadline is not None and not self._cancelled \
                    and time.monotonic() >= self._deadline:
                self._cancel_all()

    # ------------------------------------------------------------------ leases
    def _start_renewer(self) -> None:
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewer",
                                             daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        every = max(0.2, self.options.lease / 3)
        while not self._done.wait(every):
            with self._lock:
                active = list(self._active.values())
            for a in active:
                if a.token.cancelled:
                    continue
                try:
                    held = claims.renew(self.store, a.claim, self.options.lease, self.clock.now())
                except sa_exc.SQLAlchemyError as exc:
                    log.warning("renew %s: the state database did not answer (%s)",
                                a.claim.schedule, type(exc).__name__)
                    continue
                if not held:
                    log.warning("lease lost %s: another scheduler took slot %s over; "
                                "stopping this attempt", a.claim.schedule,
                                iso(a.claim.scheduled_time, a.schedule.tzinfo()))
                    a.token.cancel("lease_lost")


def _counts(record: RunRecord | None) -> str:
    if record is None or record.rows_read is None:
        return f" ({record.reason})" if record is not None and record.reason else ""
    why = f" ({record.reason})" if record.reason else ""
    return (f"{why}, {record.rows_read} rows read, {record.events_sent} events sent, "
            f"{record.invalid_records} invalid, {record.failed_events} failed")
