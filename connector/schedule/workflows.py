"""Workflow schedules: the cron of a workflow's `schedule:` block read with Treasure Data's cron
rules, the session a slot runs (with digdag's last_session_* and next_session_*), and what a
workflow schedule stores."""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, Mapping

from connector.session import SessionContext, zone
from connector.workflow import Workflow

from . import cron as cronmod


def previous_slot(parsed: cronmod.Cron, tz: dt.tzinfo, moment: dt.datetime) -> dt.datetime | None:
    """The latest scheduled time strictly before `moment`."""
    ahead = cronmod.next_runs(parsed, tz, moment - dt.timedelta(seconds=1), 2)
    if len(ahead) < 2:
        return None
    step = max(ahead[1] - ahead[0], dt.timedelta(minutes=1))
    back = step
    for _ in range(40):
        start = moment - back * 2
        first = cronmod.next_runs(parsed, tz, start, 1)
        if first and first[0] < moment:
            found = first[0]
            for slot in cronmod.runs(parsed, tz, found):
                if slot >= moment:
                    return found
                found = slot
        back *= 2
    return None


def session_for(workflow: Workflow, moment: dt.datetime) -> SessionContext:
    """The session of `workflow` at `moment`, in the workflow's time zone; with a `schedule:`,
    the slots before and after it."""
    last = following = None
    if workflow.schedule is not None:
        parsed = cronmod.parse(workflow.schedule.cron)
        tz = zone(workflow.timezone)
        if not parsed.never:
            last = previous_slot(parsed, tz, moment)
            upcoming = cronmod.next_runs(parsed, tz, moment, 1)
            following = upcoming[0] if upcoming else None
    return SessionContext(moment, workflow.timezone, last, following)


def last_scheduled(workflow: Workflow, now: dt.datetime) -> dt.datetime | None:
    """digdag's session for `--session last` of a scheduled workflow that never ran: the latest
    scheduled time before now."""
    if workflow.schedule is None:
        return None
    parsed = cronmod.parse(workflow.schedule.cron)
    return None if parsed.never else previous_slot(parsed, zone(workflow.timezone), now)


def workflow_definition(path: str, database_url: str | None,
                        params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a workflow schedule stores: the file (read when each slot runs, so edits reach the
    next slot), the database URL (None: the default), the -p parameters."""
    return {"workflow": os.path.abspath(path), "database_url": database_url,
            "params": dict(params or {})}
