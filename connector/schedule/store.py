"""Schedules and their history in the state database.

A schedule runs one thing on its cron: today an export (`kind` "export": the query text, the
output configuration as the export command receives it, the database URL). The record keeps
`kind` and a JSON `definition` per kind, so a workflow schedule (`kind` "workflow": a .dig file)
adds a kind, not a table.

A slot (schedule, scheduled time) is claimed by inserting it: the unique key on the pair makes
a second claim fail in the database, whichever process tries. Running a claimed slot again
(asked for explicitly) adds an attempt, under a unique key on (slot, attempt).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from connector.errors import ConfigError

from . import cron as cronmod
from .policy import DEFAULT_CATCHUP, DEFAULT_CATCHUP_LIMIT, DEFAULT_OVERLAP, check_policy
from .state import open_engine, runs, schedules, slots
from .zones import check_timezone

# "export": a query to an output; "activation": the same with an output mapping and segment
# metadata (Treasure Data's activation); "workflow": a Treasure Workflow file.
KINDS = ("export", "activation", "workflow")
MAX_DELAY = 366 * 86400


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    timezone: str = "UTC"
    delay: int = 0  # seconds; a run starts at scheduled time + delay (may be negative)
    kind: str = "export"
    definition: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    created_at: float | None = None
    updated_at: float | None = None
    # What the scheduler service does with missed and overlapping slots (policy.py), whom it
    # tells about runs (a list of notification targets, connector.scheduler.notify), and why it
    # disabled the schedule, if it did.
    catchup: str = DEFAULT_CATCHUP
    catchup_limit: int = DEFAULT_CATCHUP_LIMIT
    overlap: str = DEFAULT_OVERLAP
    notify: Sequence[Mapping[str, Any]] = ()
    disabled_reason: str | None = None
    active_since: float | None = None  # slots before it never run (None: since created_at)

    def parsed(self) -> cronmod.Cron:
        return cronmod.parse(self.cron)

    def tzinfo(self) -> dt.tzinfo:
        return check_timezone(self.timezone)

    def slots_after(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Scheduled times strictly after `after`, in the schedule's zone."""
        return cronmod.runs(self.parsed(), self.tzinfo(), after)

    def slots_from(self, start: dt.datetime, count: int) -> list[dt.datetime]:
        """`count` consecutive scheduled times from the first at or after `start`. A schedule
        that never runs ("") has one slot: `start` itself."""
        if self.parsed().never:
            return [start.astimezone(self.tzinfo())][:count]
        out: list[dt.datetime] = []
        for moment in self.slots_after(start - dt.timedelta(seconds=1)):
            if moment < start:
                continue
            out.append(moment)
            if len(out) >= count:
                break
        return out


def check_schedule(schedule: Schedule) -> cronmod.Cron:
    """The parsed cron; ConfigError for anything a schedule may not hold."""
    if not schedule.name or len(schedule.name) > 200 or any(c in schedule.name for c in "/\\\0\n"):
        raise ConfigError(f"schedule name {schedule.name!r}: use 1-200 characters, no slashes")
    if schedule.kind not in KINDS:
        raise ConfigError(f"schedule kind {schedule.kind!r} is not supported (supported: "
                          f"{', '.join(KINDS)})")
    if not -MAX_DELAY <= schedule.delay <= MAX_DELAY:
        raise ConfigError(f"--delay: {schedule.delay} seconds is more than a year")
    check_timezone(schedule.timezone)
    check_policy(schedule.catchup, schedule.catchup_limit, schedule.overlap)
    return schedule.parsed()


@dataclass(frozen=True)
class RunRecord:
    schedule: str
    scheduled_time: int
    attempt: int
    status: str
    reason: str | None
    error: str | None
    started_at: float
    finished_at: float | None
    rows_read: int | None
    events_sent: int | None
    invalid_records: int | None
    rejected_events: int | None
    failed_events: int | None
    report_path: str | None
    host: str | None
    pid: int | None
    run_id: int = 0
    note: str | None = None  # what the scheduler did because of this run (it disabled the schedule)


@dataclass(frozen=True)
class Claim:
    run_id: int
    attempt: int


class AlreadyClaimed(Exception):
    """The slot ran (or is running) already; `latest` is its latest run, if any."""

    def __init__(self, latest: RunRecord | None) -> None:
        super().__init__("slot already claimed")
        self.latest = latest


def _policy(schedule: Schedule) -> dict[str, Any]:
    return {"catchup": schedule.catchup, "catchup_limit": schedule.catchup_limit,
            "overlap": schedule.overlap, "notify": json.dumps([dict(t) for t in schedule.notify])}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ScheduleStore:
    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock  # UNIX time of creations, claims and finishes (tests may pass another)
        self.engine = open_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ schedules
    def _row(self, row: Any) -> Schedule:
        return Schedule(name=row.name, cron=row.cron, timezone=row.timezone,
                        delay=row.delay_seconds, kind=row.kind,
                        definition=json.loads(row.definition), enabled=bool(row.enabled),
                        created_at=row.created_at, updated_at=row.updated_at,
                        catchup=row.catchup, catchup_limit=row.catchup_limit,
                        overlap=row.overlap, notify=tuple(json.loads(row.notify or "[]")),
                        disabled_reason=row.disabled_reason,
                        active_since=row.active_since if row.active_since is not None
                        else row.created_at)

    def get(self, name: str) -> Schedule:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schedules).where(schedules.c.name == name)).first()
        if row is None:
            raise ConfigError(f"no schedule named {name!r} (connector schedule list shows them)")
        return self._row(row)

    def list(self) -> list[Schedule]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schedules).order_by(schedules.c.name)).fetchall()
        return [self._row(r) for r in rows]

    def create(self, schedule: Schedule) -> Schedule:
        check_schedule(schedule)
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(schedules.insert().values(
                    name=schedule.name, kind=schedule.kind, cron=schedule.cron,
                    timezone=schedule.timezone, delay_seconds=schedule.delay,
                    enabled=schedule.enabled, definition=json.dumps(dict(schedule.definition)),
                    created_at=now, updated_at=now, active_since=now, **_policy(schedule)))
        except sa_exc.IntegrityError:
            raise ConfigError(f"a schedule named {schedule.name!r} exists already "
                              "(connector schedule update changes it)") from None
        return replace(schedule, created_at=now, updated_at=now, active_since=now)

    def update(self, schedule: Schedule) -> Schedule:
        """Save the schedule's settings. Enabling it, or a new cron or zone, starts it afresh:
        slots before now never run, and the count of consecutive configuration errors and
        the reason it was disabled are cleared."""
        check_schedule(schedule)
        now = self.clock()
        current = self.get(schedule.name)
        values: dict[str, Any] = {}
        if schedule.enabled and not current.enabled:
            values.update(config_errors=0, disabled_reason=None, active_since=now)
        elif (schedule.cron, schedule.timezone) != (current.cron, current.timezone):
            values.update(active_since=now)
        if schedule.enabled:
            values["disabled_reason"] = None
        with self.engine.begin() as conn:
            done = conn.execute(schedules.update().where(schedules.c.name == schedule.name).values(
                kind=schedule.kind, cron=schedule.cron, timezone=schedule.timezone,
                delay_seconds=schedule.delay, enabled=schedule.enabled,
                definition=json.dumps(dict(schedule.definition)), updated_at=now,
                **_policy(schedule), **values))
        if done.rowcount == 0:
            self.get(schedule.name)  # raises: no such schedule
        return replace(schedule, updated_at=now,
                       disabled_reason=None if schedule.enabled else schedule.disabled_reason,
                       active_since=values.get("active_since", current.active_since))

    def delete(self, name: str) -> None:
        schedule_id = self._id(name)
        with self.engine.begin() as conn:
            slot_ids = sa.select(slots.c.id).where(slots.c.schedule_id == schedule_id)
            conn.execute(runs.delete().where(runs.c.slot_id.in_(slot_ids)))
            conn.execute(slots.delete().where(slots.c.schedule_id == schedule_id))
            conn.execute(schedules.delete().where(schedules.c.id == schedule_id))

    def _id(self, name: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(schedules.c.id).where(schedules.c.name == name)).scalar()
        if found is None:
            raise ConfigError(f"no schedule named {name!r} (connector schedule list shows them)")
        return int(found)

    # ------------------------------------------------------------------ slots and runs
    def claim(self, name: str, scheduled_time: int, again: bool = False) -> Claim:
        """Claim the slot for this process. AlreadyClaimed when it was claimed before, unless
        `again`, which adds an attempt (still refused while an attempt is running elsewhere)."""
        schedule_id = self._id(name)
        now = self.clock()
        host, pid = socket.gethostname(), os.getpid()
        try:
            with self.engine.begin() as conn:
                slot_id = conn.execute(slots.insert().values(
                    schedule_id=schedule_id, scheduled_time=scheduled_time,
                    claimed_at=now)).inserted_primary_key[0]
                run_id = conn.execute(runs.insert().values(
                    slot_id=slot_id, attempt=1, status="running", started_at=now, host=host,
                    pid=pid)).inserted_primary_key[0]
            return Claim(int(run_id), 1)
        except sa_exc.IntegrityError:
            pass
        latest = self.latest_run(name, scheduled_time)
        if not again:
            raise AlreadyClaimed(latest)
        if latest is not None and latest.status in ("running", "queued"):  # queued: by the service
            if latest.host == host and latest.pid is not None and not _pid_alive(latest.pid):
                self._finish(latest.run_id, status="abandoned", reason="process_gone",
                             error=f"process {latest.pid} ended without recording the run")
            else:
                raise AlreadyClaimed(latest)
        attempt = (latest.attempt if latest else 0) + 1
        try:
            with self.engine.begin() as conn:
                slot_id = conn.execute(sa.select(slots.c.id).where(
                    slots.c.schedule_id == schedule_id,
                    slots.c.scheduled_time == scheduled_time)).scalar_one()
                run_id = conn.execute(runs.insert().values(
                    slot_id=slot_id, attempt=attempt, status="running", started_at=now,
                    host=host, pid=pid)).inserted_primary_key[0]
        except sa_exc.IntegrityError:
            raise AlreadyClaimed(self.latest_run(name, scheduled_time)) from None
        return Claim(int(run_id), attempt)

    def finish(self, run_id: int, report: Mapping[str, Any] | None, status: str,
               reason: str | None, error: str | None, report_path: str | None) -> None:
        counts = {k: (report or {}).get(k) for k in (
            "rows_read", "events_sent", "invalid_records", "rejected_events", "failed_events")}
        self._finish(run_id, status=status, reason=reason, error=error,
                     report_path=report_path, **counts)

    def _finish(self, run_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                finished_at=self.clock(), **values))

    def _records(self, where: Any, newest_first: bool = False, limit: int | None = None
                 ) -> list[RunRecord]:
        order = (slots.c.scheduled_time.desc(), runs.c.attempt.desc()) if newest_first else (
            slots.c.scheduled_time, runs.c.attempt)
        query = (sa.select(schedules.c.name, slots.c.scheduled_time, runs)
                 .select_from(runs.join(slots, runs.c.slot_id == slots.c.id)
                              .join(schedules, slots.c.schedule_id == schedules.c.id))
                 .where(where).order_by(*order))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
        return [RunRecord(
            schedule=r.name, scheduled_time=r.scheduled_time, attempt=r.attempt, status=r.status,
            reason=r.reason, error=r.error, started_at=r.started_at, finished_at=r.finished_at,
            rows_read=r.rows_read, events_sent=r.events_sent, invalid_records=r.invalid_records,
            rejected_events=r.rejected_events, failed_events=r.failed_events,
            report_path=r.report_path, host=r.host, pid=r.pid, run_id=r.id, note=r.note)
            for r in rows]

    def run(self, run_id: int) -> RunRecord | None:
        found = self._records(runs.c.id == run_id)
        return found[0] if found else None

    def latest_run(self, name: str, scheduled_time: int) -> RunRecord | None:
        found = self._records(sa.and_(schedules.c.name == name,
                                      slots.c.scheduled_time == scheduled_time),
                              newest_first=True, limit=1)
        return found[0] if found else None

    def history(self, name: str, limit: int | None = None) -> list[RunRecord]:
        """Runs of the schedule, newest scheduled time first (all attempts)."""
        self._id(name)
        return self._records(schedules.c.name == name, newest_first=True, limit=limit)
