"""Treasure Data's cron dialect, in front of cronsim.

The dialect (as Treasure Data documents it):
- five fields, `min hour day-of-month month day-of-week` (Sunday is 0, and 7 too); the names
  sun..sat and jan..dec in any case; values, `*`, ranges `a-b`, lists, `*/N` and `a-b/N`;
- `*/N` means the values divisible by N (day-of-month `*/5` is the 5th, 10th, ... 30th), where
  Vixie cron starts at the field's first value; `a-b/N` steps from a, as Vixie cron does;
- presets @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually); "" never runs;
- when both day fields are restricted, the one that fires on more days wins (counted over the
  400-year Gregorian cycle, in the allowed months; a tie goes to day-of-week) and the other is
  ignored;
- daylight saving, as Vixie and Debian cron handle it: with a fixed hour field, a wall time that
  occurs twice fires once (its first occurrence) and wall times skipped by the clock fire once,
  at the first instant after the gap; with an hour field starting with `*`, runs follow elapsed
  time (both occurrences of a repeated hour fire, a skipped hour has nothing to fire).

cronsim finds the wall-clock times that match (on naive datetimes, so it never applies rules of
its own); this module turns each into the instants it fires at.
"""
from __future__ import annotations

import calendar
import datetime as dt
import heapq
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

from cronsim import CronSim

from connector.errors import ConfigError

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Field:
    name: str  # as `explain --json` names it
    label: str  # as messages name it
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i


FIELDS = (
    Field("minute", "minute", 0, 59),
    Field("hour", "hour", 0, 23),
    Field("day_of_month", "day-of-month", 1, 31),
    Field("month", "month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                     "sep", "oct", "nov", "dec")),
    Field("day_of_week", "day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
MINUTE, HOUR, DOM, MONTH, DOW = FIELDS

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class CronError(ConfigError):
    """A cron expression Treasure Data's dialect does not accept."""


def _value(field: Field, text: str, cron: str) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if not text.isdigit():
        raise CronError(f"cron {cron!r}: {field.label} {text!r} is not a number"
                        + (f" or a name ({', '.join(field.names)})" if field.names else ""))
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"cron {cron!r}: {field.label} value {value} is out of range "
                        f"({field.low}-{field.high})")
    return value


def _step(field: Field, text: str, cron: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= field.high:
        raise CronError(f"cron {cron!r}: {field.label} step {text!r} must be a number from 1 "
                        f"to {field.high}")
    return int(text)


def _term(field: Field, term: str, cron: str) -> set[int]:
    if term == "":
        raise CronError(f"cron {cron!r}: {field.label} has an empty list item")
    base, slash, step_text = term.partition("/")
    if slash:
        step = _step(field, step_text, cron)
        if base == "*":  # Treasure Data: the values divisible by the step
            return {v for v in range(field.low, field.high + 1) if v % step == 0}
        if "-" not in base:
            raise CronError(f"cron {cron!r}: {field.label} {term!r}: a step applies to * or to "
                            f"a range a-b (for example {base}-{field.high}/{step_text})")
    if base == "*":
        return set(range(field.low, field.high + 1))
    if "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = _value(field, first_text, cron), _value(field, last_text, cron)
        if first > last:
            raise CronError(f"cron {cron!r}: {field.label} range {base!r} runs backwards")
        return set(range(first, last + 1, _step(field, step_text, cron) if slash else 1))
    return {_value(field, base, cron)}


def _parse_field(field: Field, text: str, cron: str) -> frozenset[int]:
    terms = text.split(",")
    if len(terms) > 1 and "*" in terms:
        raise CronError(f"cron {cron!r}: {field.label}: * cannot be part of a list")
    values: set[int] = set()
    for term in terms:
        values |= _term(field, term, cron)
    if field is DOW and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


# -------------------------------------------------------------------------- the day fields

@lru_cache(maxsize=1)
def _cycle_counts() -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Over one 400-year Gregorian cycle: how often each (month, day) and each (month, weekday)
    occurs. Weekdays are cron's (Sunday 0)."""
    by_day: dict[tuple[int, int], int] = {}
    by_weekday: dict[tuple[int, int], int] = {}
    for year in range(2000, 2400):
        for month in range(1, 13):
            first, length = calendar.monthrange(year, month)  # first: Monday 0
            for day in range(1, length + 1):
                by_day[month, day] = by_day.get((month, day), 0) + 1
            for offset in range(7):
                weekday = (first + offset + 1) % 7  # cron's numbering
                count = 4 + (1 if offset < length - 28 else 0)
                by_weekday[month, weekday] = by_weekday.get((month, weekday), 0) + count
    return by_day, by_weekday


def day_counts(days: frozenset[int], weekdays: frozenset[int],
               months: frozenset[int]) -> tuple[int, int]:
    """How many days each day field alone would fire over 400 years, in the allowed months."""
    by_day, by_weekday = _cycle_counts()
    return (sum(by_day.get((m, d), 0) for m in months for d in days),
            sum(by_weekday[m, w] for m in months for w in weekdays))


# -------------------------------------------------------------------------- the expression

def _compact(field: Field, values: frozenset[int]) -> str:
    full = set(range(field.low, 7 if field is DOW else field.high + 1))
    if set(values) == full:
        return "*"
    out: list[str] = []
    ordered = sorted(values)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{ordered[i]}-{ordered[j]}")
        else:
            out.extend(str(v) for v in ordered[i:j + 1])
        i = j + 1
    return ",".join(out)


@dataclass(frozen=True)
class Cron:
    """A parsed expression: what each field allows, which day field was ignored, and how daylight
    saving applies. `never` is the empty expression."""

    cron: str
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    ignored: str | None = None  # "day_of_month" | "day_of_week"
    elapsed: bool = False  # the hour field starts with *: runs follow elapsed time
    never: bool = False

    @property
    def effective(self) -> str:
        """The expression that runs, with every field spelled out ("" never runs)."""
        if self.never:
            return ""
        return " ".join(_compact(f, v) for f, v in zip(
            FIELDS, (self.minutes, self.hours, self.days, self.months, self.weekdays)))

    def warning(self) -> str | None:
        if self.ignored is None:
            return None
        kept = "day-of-week" if self.ignored == "day_of_month" else "day-of-month"
        lost = "day-of-month" if self.ignored == "day_of_month" else "day-of-week"
        return (f"cron {self.cron!r}: both day fields are restricted; {kept} fires more often, "
                f"so {lost} is ignored (runs as {self.effective!r})")


def parse(cron: str) -> Cron:
    """Parse an expression of Treasure Data's dialect (CronError names what is wrong)."""
    text = cron.strip()
    if text == "":
        return Cron(cron, never=True)
    expanded = PRESETS.get(text.lower())
    if text.startswith("@") and expanded is None:
        raise CronError(f"cron {cron!r}: unknown preset (known: {', '.join(PRESETS)})")
    parts = (expanded or text).split()
    if len(parts) != 5:
        raise CronError(f"cron {cron!r}: expected 5 fields (minute hour day-of-month month "
                        f"day-of-week), got {len(parts)}")
    minutes, hours, days, months, weekdays = (
        _parse_field(f, p, cron) for f, p in zip(FIELDS, parts))
    all_days, all_weekdays = frozenset(range(1, 32)), frozenset(range(7))
    ignored = None
    if days != all_days and weekdays != all_weekdays:
        by_day, by_weekday = day_counts(days, weekdays, months)
        if by_day > by_weekday:
            ignored, weekdays = "day_of_week", all_weekdays
        else:
            ignored, days = "day_of_month", all_days
    if weekdays == all_weekdays and day_counts(days, weekdays, months)[0] == 0:
        raise CronError(f"cron {cron!r}: day-of-month {_compact(DOM, days)} never occurs in "
                        f"month {_compact(MONTH, months)}")
    return Cron(cron, minutes, hours, days, months, weekdays, ignored,
                elapsed=parts[1].startswith("*"))


# -------------------------------------------------------------------------- firing times

def _transition_after(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first instant after the daylight-saving gap that `naive` falls into."""
    earlier = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the gap
    later = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)  # after it
    lo, hi = min(earlier, later), max(earlier, later)
    target = hi.astimezone(tz).utcoffset()
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _instants(naive: dt.datetime, tz: dt.tzinfo, elapsed: bool) -> list[dt.datetime]:
    """The instants a matching wall-clock time fires at."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    a, b = first.astimezone(UTC), second.astimezone(UTC)
    if a == b:
        return [a]
    exists = a.astimezone(tz).replace(tzinfo=None) == naive
    if exists:  # the clocks went back: this wall time occurs twice
        return sorted({a, b}) if elapsed else [min(a, b)]
    # the clocks went forward over this wall time
    return [] if elapsed else [_transition_after(naive, tz)]


# Every instant a wall time maps to lies within this of the wall time read as UTC.
_SLACK = dt.timedelta(hours=27)


def runs(cron: Cron, tz: dt.tzinfo, after: dt.datetime) -> Iterator[dt.datetime]:
    """The instants the expression fires at, strictly after `after` (aware), in order, in `tz`."""
    if cron.never:
        return
    after_utc = after.astimezone(UTC)
    start = (after_utc.astimezone(tz).replace(tzinfo=None) - _SLACK).replace(second=0, microsecond=0)
    matches = CronSim(cron.effective, start)
    pending: list[dt.datetime] = []
    last: dt.datetime | None = None
    for naive in matches:
        for instant in _instants(naive, tz, cron.elapsed):
            if instant > after_utc:
                heapq.heappush(pending, instant)
        # Wall times from now on fire no earlier than this: what is before it is final.
        horizon = naive.replace(tzinfo=UTC) - _SLACK
        while pending and pending[0] < horizon:
            instant = heapq.heappop(pending)
            if instant != last:
                last = instant
                yield instant.astimezone(tz)
    for instant in sorted(pending):  # the expression ran out (cronsim looks 50 years ahead)
        if instant != last:
            last = instant
            yield instant.astimezone(tz)


def next_runs(cron: Cron, tz: dt.tzinfo, after: dt.datetime, count: int) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    for instant in runs(cron, tz, after):
        if len(out) >= count:
            break
        out.append(instant)
    return out
