"""The scheduler service's side of the state database: the slots it decided to run (queued),
claims with a lease the running scheduler renews, takeovers once a lease has expired, and the
count of consecutive configuration errors that disables a schedule.

Every transaction that decides or claims a schedule's slots starts by bumping that schedule's
`lock_version`. On PostgreSQL the update locks the row until the transaction ends; on SQLite a
write takes the database's write lock. Either way the reads and inserts that follow run for one
process at a time per schedule, on any number of machines, and the unique keys on (schedule,
scheduled time) and (slot, attempt) back them: a slot has one row, each attempt one row.

A run row moves queued -> running (claimed: its slot holds a lease) -> success | error, or
queued -> skipped. A running attempt whose lease expired (its scheduler died or hung) becomes
`abandoned` and the slot gets a new attempt, queued: the history shows both.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from .state import runs, schedules, slots
from .store import Claim, Schedule, ScheduleStore

QUEUED, RUNNING, SKIPPED, ABANDONED = "queued", "running", "skipped", "abandoned"


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as the service sees it: the settings, the row id, the last slot decided."""
    id: int
    schedule: Schedule
    scheduled_through: int | None
    config_errors: int


@dataclass(frozen=True)
class OpenRun:
    """A queued or running attempt."""
    schedule_id: int
    slot_id: int
    scheduled_time: int
    run_id: int
    attempt: int
    status: str
    lease_owner: str | None
    lease_expires: float | None
    host: str | None
    pid: int | None

    def live(self, now: float) -> bool:
        """Running under a lease that has not expired."""
        return (self.status == RUNNING and self.lease_owner is not None
                and self.lease_expires is not None and self.lease_expires >= now)

    def expired(self, now: float) -> bool:
        return (self.status == RUNNING and self.lease_owner is not None
                and (self.lease_expires is None or self.lease_expires < now))


@dataclass(frozen=True)
class LeasedClaim:
    """A slot this process runs, under a lease it must renew."""
    schedule: str
    schedule_id: int
    slot_id: int
    scheduled_time: int
    run_id: int
    attempt: int
    owner: str
    took_over: OpenRun | None = None  # the attempt this one replaces, if its lease expired

    @property
    def claim(self) -> Claim:
        return Claim(self.run_id, self.attempt)


def _schedule_row(store: ScheduleStore, row: Any) -> ScheduleRow:
    return ScheduleRow(id=int(row.id), schedule=store._row(row),
                       scheduled_through=row.scheduled_through,
                       config_errors=int(row.config_errors))


_OPEN = (sa.select(slots.c.schedule_id, slots.c.id.label("slot_id"), slots.c.scheduled_time,
                   runs.c.id.label("run_id"), runs.c.attempt, runs.c.status,
                   slots.c.lease_owner, slots.c.lease_expires, runs.c.host, runs.c.pid)
         .select_from(runs.join(slots, runs.c.slot_id == slots.c.id))
         .where(runs.c.status.in_((QUEUED, RUNNING)))
         .order_by(slots.c.scheduled_time, runs.c.attempt))


def _open_runs(rows: Sequence[Any]) -> list[OpenRun]:
    return [OpenRun(schedule_id=int(r.schedule_id), slot_id=int(r.slot_id),
                    scheduled_time=int(r.scheduled_time), run_id=int(r.run_id),
                    attempt=int(r.attempt), status=r.status, lease_owner=r.lease_owner,
                    lease_expires=r.lease_expires, host=r.host, pid=r.pid) for r in rows]


def schedule_rows(store: ScheduleStore) -> list[ScheduleRow]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(schedules).order_by(schedules.c.name)).fetchall()
    return [_schedule_row(store, r) for r in found]


def open_runs(store: ScheduleStore) -> list[OpenRun]:
    """Every queued or running attempt, oldest slot first."""
    with store.engine.connect() as conn:
        return _open_runs(conn.execute(_OPEN).fetchall())


class Locked:
    """One schedule, its row locked for the transaction: what the service reads and decides."""

    def __init__(self, store: ScheduleStore, conn: sa.engine.Connection, row: Any) -> None:
        self.conn = conn
        self.row = _schedule_row(store, row)
        self.host, self.pid = socket.gethostname(), os.getpid()

    @property
    def schedule(self) -> Schedule:
        return self.row.schedule

    def open_runs(self) -> list[OpenRun]:
        return _open_runs(self.conn.execute(
            _OPEN.where(slots.c.schedule_id == self.row.id)).fetchall())

    def claimed(self, after: int, through: int) -> set[int]:
        """Scheduled times in (after, through] that have a slot row already (run by hand, or
        decided before)."""
        return set(self.conn.execute(sa.select(slots.c.scheduled_time).where(
            slots.c.schedule_id == self.row.id, slots.c.scheduled_time > after,
            slots.c.scheduled_time <= through)).scalars())

    def _slot(self, scheduled_time: int, now: float) -> int:
        return int(self.conn.execute(slots.insert().values(
            schedule_id=self.row.id, scheduled_time=scheduled_time,
            claimed_at=now)).inserted_primary_key[0])

    def queue(self, scheduled_time: int, now: float) -> None:
        self.conn.execute(runs.insert().values(
            slot_id=self._slot(scheduled_time, now), attempt=1, status=QUEUED, started_at=now))

    def skip(self, scheduled_time: int, now: float, reason: str, note: str) -> None:
        self.conn.execute(runs.insert().values(
            slot_id=self._slot(scheduled_time, now), attempt=1, status=SKIPPED, reason=reason,
            note=note, started_at=now, finished_at=now))

    def decided_through(self, scheduled_time: int) -> None:
        self.conn.execute(schedules.update().where(schedules.c.id == self.row.id).values(
            scheduled_through=scheduled_time))

    def abandon(self, run: OpenRun, now: float, why: str) -> None:
        """The attempt's lease expired: record it as abandoned and queue the next attempt."""
        self.conn.execute(runs.update().where(runs.c.id == run.run_id,
                                              runs.c.status == RUNNING).values(
            status=ABANDONED, reason="lease_expired", error=why, finished_at=now))
        self.conn.execute(slots.update().where(slots.c.id == run.slot_id).values(
            lease_owner=None, lease_expires=None))
        self.conn.execute(runs.insert().values(
            slot_id=run.slot_id, attempt=run.attempt + 1, status=QUEUED, started_at=now))

    def drop_queued(self, now: float, reason: str, note: str) -> int:
        queued = [r.run_id for r in self.open_runs() if r.status == QUEUED]
        if queued:
            self.conn.execute(runs.update().where(runs.c.id.in_(queued)).values(
                status=SKIPPED, reason=reason, note=note, finished_at=now))
        return len(queued)

    def start(self, run: OpenRun, owner: str, lease: float, now: float) -> bool:
        """queued -> running under a lease held by `owner`."""
        done = self.conn.execute(runs.update().where(runs.c.id == run.run_id,
                                                     runs.c.status == QUEUED).values(
            status=RUNNING, started_at=now, host=self.host, pid=self.pid))
        if done.rowcount != 1:
            return False
        self.conn.execute(slots.update().where(slots.c.id == run.slot_id).values(
            lease_owner=owner, lease_expires=now + lease))
        return True


@contextmanager
def locked(store: ScheduleStore, schedule_id: int) -> Iterator[Locked | None]:
    """The schedule's row, locked until the block ends (committed unless it raises); None when
    the schedule was deleted."""
    with store.engine.begin() as conn:
        done = conn.execute(schedules.update().where(schedules.c.id == schedule_id).values(
            lock_version=schedules.c.lock_version + 1))
        if done.rowcount != 1:
            yield None
            return
        row = conn.execute(sa.select(schedules).where(schedules.c.id == schedule_id)).one()
        yield Locked(store, conn, row)


def claim_next(store: ScheduleStore, schedule_id: int, owner: str, lease: float, now: float
               ) -> LeasedClaim | None:
    """Claim the schedule's oldest queued slot, unless one of its slots runs under a live lease
    (never two slots of a schedule at once). A running attempt whose lease expired is taken
    over first: abandoned, and its slot queued again as the next attempt, which this claims.
    A disabled schedule's queued slots are recorded as skipped."""
    with locked(store, schedule_id) as lk:
        if lk is None:
            return None
        if not lk.schedule.enabled:
            lk.drop_queued(now, "disabled", "the schedule was disabled before the slot ran")
            return None
        open_ = lk.open_runs()
        # A live lease, or one this owner holds (its run goes on here, whatever the clock says).
        if any(r.live(now) or (r.status == RUNNING and r.lease_owner == owner) for r in open_):
            return None
        replaced: dict[int, OpenRun] = {}
        for run in open_:
            if run.expired(now):
                lk.abandon(run, now, f"the scheduler running it ({run.lease_owner}) stopped "
                                     "renewing its lease; another scheduler took the slot over")
                replaced[run.slot_id] = run
        if replaced:
            open_ = lk.open_runs()
        queued = [r for r in open_ if r.status == QUEUED]
        if not queued:
            return None
        run = queued[0]
        if not lk.start(run, owner, lease, now):
            return None
        return LeasedClaim(schedule=lk.schedule.name, schedule_id=schedule_id,
                           slot_id=run.slot_id, scheduled_time=run.scheduled_time,
                           run_id=run.run_id, attempt=run.attempt, owner=owner,
                           took_over=replaced.get(run.slot_id))


def renew(store: ScheduleStore, claim: LeasedClaim, lease: float, now: float) -> bool:
    """Extend the lease; False when this process no longer holds it (another took over)."""
    with store.engine.begin() as conn:
        done = conn.execute(slots.update().where(slots.c.id == claim.slot_id,
                                                 slots.c.lease_owner == claim.owner).values(
            lease_expires=now + lease))
    return done.rowcount == 1


def release(store: ScheduleStore, claim: LeasedClaim) -> None:
    with store.engine.begin() as conn:
        conn.execute(slots.update().where(slots.c.id == claim.slot_id,
                                          slots.c.lease_owner == claim.owner).values(
            lease_owner=None, lease_expires=None))


def requeue(store: ScheduleStore, claim: LeasedClaim, now: float, note: str) -> bool:
    """Queue the slot again as a new attempt (its run was stopped before it ended, by this
    process's shutdown), and release the lease. False when another process has it already."""
    with locked(store, claim.schedule_id) as lk:
        if lk is None:
            return False
        held = lk.conn.execute(sa.select(slots.c.lease_owner).where(
            slots.c.id == claim.slot_id)).scalar()
        if held != claim.owner:
            return False
        lk.conn.execute(runs.update().where(runs.c.id == claim.run_id).values(note=note))
        lk.conn.execute(slots.update().where(slots.c.id == claim.slot_id).values(
            lease_owner=None, lease_expires=None))
        lk.conn.execute(runs.insert().values(
            slot_id=claim.slot_id, attempt=claim.attempt + 1, status=QUEUED, started_at=now))
        return True


def count_configuration_error(store: ScheduleStore, schedule_id: int, config_error: bool,
                              run_id: int, disable_after: int, now: float) -> str | None:
    """Count consecutive configuration errors (any other outcome resets the count); at
    `disable_after`, disable the schedule and say why on the run. Returns that reason when
    this call disabled the schedule."""
    with locked(store, schedule_id) as lk:
        if lk is None:
            return None
        count = lk.row.config_errors + 1 if config_error else 0
        values: dict[str, Any] = {"config_errors": count}
        reason = None
        if config_error and count >= disable_after and lk.schedule.enabled:
            reason = (f"disabled after {count} consecutive runs failed with a configuration "
                      "error; fix it, then `connector schedule enable "
                      f"{lk.schedule.name}`")
            values.update(enabled=False, disabled_reason=reason, updated_at=now)
            lk.conn.execute(runs.update().where(runs.c.id == run_id).values(note=reason))
        lk.conn.execute(schedules.update().where(schedules.c.id == schedule_id).values(**values))
        return reason
