"""Which due slots run: catch-up after downtime and the overlap rule, as a pure function of the
schedule, the last slot decided, the time and whether the schedule is busy.

A slot is due once `scheduled_time + delay` has passed. The newest due slot is on time when it
is found within the misfire grace of its start; every other due slot was missed (no scheduler
was running when it fell due, since a running one decides each slot as it falls due, whether
or not the schedule is busy). Per schedule:

- `latest` runs the newest due slot only (on time or not);
- `none` runs the newest due slot only when it is on time;
- `all` runs the missed slots in order, at most `catchup_limit` of them (the newest), then the
  on-time one.

Slots from before the schedule became active (created, enabled again, or given a new cron or
zone) are never due. Under overlap `skip`, slots that would run while the schedule has a run
queued or going are skipped instead. Every slot not run is recorded as skipped with its reason,
up to RECORD_LIMIT per decision (older ones are counted in the log), so none disappears silently.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from connector.schedule import cron as cronmod
from connector.schedule.store import Schedule

RECORD_LIMIT = 1000  # skipped slots written to the history by one decision
# Windows searched for the newest due slots, widest last: a long downtime of a frequent
# schedule never enumerates more than a window's slots.
_WINDOWS = (3600, 86400, 32 * 86400, 367 * 86400, None)


@dataclass(frozen=True)
class Decision:
    run: tuple[int, ...]  # scheduled times (UNIX seconds) to queue, oldest first
    skip: tuple[tuple[int, str, str], ...]  # (scheduled time, reason, note), oldest first
    through: int | None  # the newest slot decided: the next decision starts after it
    unrecorded: int = 0  # missed slots skipped but not written one by one (beyond the limit)
    older: bool = False  # missed slots older than those counted exist too

    @property
    def empty(self) -> bool:
        return self.through is None


def _utc(unix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc)


def due_slots(schedule: Schedule, after: float, now: float, keep: int
              ) -> tuple[list[int], int, bool]:
    """The newest `keep` scheduled times s with after < s and s + delay <= now, oldest first;
    how many older due slots were found and left out; whether due slots older still exist
    (not counted: a long downtime of a frequent schedule is searched in windows)."""
    parsed = schedule.parsed()
    end = now - schedule.delay
    if parsed.never or end <= after:
        return [], 0, False
    tz = schedule.tzinfo()
    for span in _WINDOWS:
        low = after if span is None else max(after, end - span)
        found: list[int] = []
        for moment in cronmod.runs(parsed, tz, _utc(low)):
            unix = int(moment.timestamp())
            if unix > end:
                break
            found.append(unix)
        if len(found) >= keep or low == after:
            beyond = False
            if low > after:
                first = next(cronmod.runs(parsed, tz, _utc(after)), None)
                beyond = first is not None and first.timestamp() <= low
            return found[-keep:], max(0, len(found) - keep), beyond
    raise AssertionError("unreachable: the last window is unbounded")


def catchup_note(schedule: Schedule) -> str:
    if schedule.catchup == "latest":
        return "missed while no scheduler was running; catch-up 'latest' runs only the newest"
    if schedule.catchup == "none":
        return "missed while no scheduler was running; catch-up 'none' runs no missed slot"
    return (f"missed while no scheduler was running; catch-up 'all' runs at most the "
            f"{schedule.catchup_limit} newest missed slots")


OVERLAP_NOTE = "the schedule's previous run was still queued or going (overlap 'skip')"


def decide(schedule: Schedule, after: float, now: float, *, busy: bool, misfire_grace: float,
           claimed: Iterable[int] = ()) -> Decision:
    """What to do with the slots due after `after` (exclusive) at `now`. `busy`: the schedule
    has a run queued or going; `claimed`: scheduled times that have a slot already (run by
    hand), which are neither run nor skipped again."""
    keep = max(RECORD_LIMIT, schedule.catchup_limit) + 1
    times, dropped, older = due_slots(schedule, after, now, keep)
    if not times:
        return Decision((), (), None)
    newest = times[-1]
    on_time = now - (newest + schedule.delay) <= misfire_grace
    missed = times if not on_time else times[:-1]
    if schedule.catchup == "latest":
        chosen = [newest]
    elif schedule.catchup == "none":
        chosen = [newest] if on_time else []
    else:
        chosen = missed[-schedule.catchup_limit:] + ([newest] if on_time else [])
    done = set(claimed)
    chosen_set = set(chosen)
    note = catchup_note(schedule)
    skip = [(t, "catchup", note) for t in times if t not in chosen_set and t not in done]
    run = [t for t in chosen if t not in done]
    if busy and schedule.overlap == "skip":
        skip = sorted(skip + [(t, "overlap", OVERLAP_NOTE) for t in run])
        run = []
    cut = max(0, len(skip) - RECORD_LIMIT)
    return Decision(tuple(run), tuple(skip[cut:]), newest, cut + dropped, older)
