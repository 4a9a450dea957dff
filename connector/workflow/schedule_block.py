"""A workflow's `schedule:` block, as digdag reads it: a cron expression for the session times
and a delay from each session time to when the run starts.

`daily>: 07:00:00` is digdag's shorthand for sessions at 00:00 each day that start at 07:00
(a delay of 7 hours): `session_time` is midnight, as on Treasure Workflow. `hourly>`,
`weekly>` and `monthly>` work the same way; `cron>` and `minutes_interval>` take an optional
`delay:` in seconds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import WorkflowError

KINDS = ("cron", "daily", "hourly", "weekly", "monthly", "minutes_interval")
# Options the scheduler service reads from the definition (they change which slots run, not
# when a slot's session is).
OPTIONS = ("start", "end", "skip_on_overtime", "skip_delayed_by")
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class ScheduleBlock:
    kind: str  # one of KINDS
    text: str  # the value as written, e.g. "07:00:00"
    cron: str  # session times, in the workflow's time zone
    delay: int  # seconds from a session time to its run
    options: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.kind}>: {self.text}"


def _fail(kind: str, fmt: str, value: Any) -> WorkflowError:
    return WorkflowError(f"schedule: {kind}> requires {fmt} format: {value}")


def _clock(kind: str, fmt: str, value: str, parts: int) -> int:
    """Seconds in an `HH:MM:SS` (parts=3) or `MM:SS` (parts=2) text."""
    pieces = value.split(":")
    if len(pieces) != parts or not all(re.fullmatch(r"\d{1,2}", p) for p in pieces):
        raise _fail(kind, fmt, value)
    numbers = [int(p) for p in pieces]
    seconds = 0
    for n in numbers:
        seconds = seconds * 60 + n
    return seconds


def _delay(block: Mapping[str, Any]) -> int:
    raw = block.get("delay", 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise WorkflowError(f"schedule: delay must be a number of seconds, got {raw!r}") from None


def parse_schedule(block: Any) -> ScheduleBlock:
    """The block's cron and delay; WorkflowError naming what is wrong."""
    if not isinstance(block, Mapping):
        raise WorkflowError("schedule: must be a mapping such as {daily>: 07:00:00}")
    kinds = [k for k in block if k.endswith(">")]
    if len(kinds) != 1:
        raise WorkflowError("schedule: needs exactly one of " + ", ".join(f"{k}>" for k in KINDS))
    kind = kinds[0][:-1]
    if kind not in KINDS:
        raise WorkflowError(f"schedule: unknown {kind}> (use one of "
                            + ", ".join(f"{k}>" for k in KINDS) + ")")
    unknown = [k for k in block if k != kinds[0] and k not in OPTIONS and k != "delay"]
    if unknown:
        raise WorkflowError(f"schedule: unknown key {unknown[0]!r}")
    value = block[kinds[0]]
    text = "" if value is None else str(value).strip()
    options = {k: block[k] for k in OPTIONS if k in block}
    if kind == "cron":
        if not text:
            raise WorkflowError("schedule: cron> needs a cron expression")
        return ScheduleBlock(kind, text, text, _delay(block), options)
    if kind == "minutes_interval":
        if not re.fullmatch(r"\d+", text) or not 1 <= int(text) <= 59:
            raise WorkflowError(f"schedule: minutes_interval> needs minutes from 1 to 59: {text}")
        return ScheduleBlock(kind, text, f"*/{int(text)} * * * *", _delay(block), options)
    if kind == "hourly":
        return ScheduleBlock(kind, text, "0 * * * *", _clock(kind, "mm:ss", text, 2), options)
    if kind == "daily":
        return ScheduleBlock(kind, text, "0 0 * * *", _clock(kind, "hh:mm:ss", text, 3), options)
    day, _, clock = text.partition(",")
    day, clock = day.strip(), clock.strip()
    if kind == "weekly":
        fmt = "day,hh:mm:ss"
        names = {**_DAYS, **{n: i for i, n in enumerate(
            ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"))}}
        if day.lower() in names:
            number = names[day.lower()]
        elif re.fullmatch(r"[0-7]", day):
            number = int(day) % 7
        else:
            raise _fail(kind, fmt, text)
        return ScheduleBlock(kind, text, f"0 0 * * {number}", _clock(kind, fmt, clock, 3), options)
    fmt = "day,hh:mm:ss"
    if not re.fullmatch(r"\d{1,2}", day) or not 1 <= int(day) <= 31:
        raise _fail(kind, fmt, text)
    return ScheduleBlock(kind, text, f"0 0 {int(day)} * *", _clock(kind, fmt, clock, 3), options)
