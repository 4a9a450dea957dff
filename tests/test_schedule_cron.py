"""Treasure Data's cron dialect: the documented table and examples, names and steps, presets, the
more-frequent-day-field rule, time zones, and daylight saving (proved against a minute-by-minute
reference on generated expressions)."""
from __future__ import annotations

import calendar
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import ConfigError
from connector.schedule.cron import PRESETS, CronError, day_counts, next_runs, parse, runs
from connector.schedule.zones import check_timezone
from helpers import run_connector

UTC = dt.timezone.utc
LA, BERLIN, TOKYO = ZoneInfo("America/Los_Angeles"), ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def iso(cron: str, tz: dt.tzinfo, start: str, count: int) -> list[str]:
    return [m.isoformat() for m in next_runs(parse(cron), tz, at(start), count)]


# --------------------------------------------------------------------------- the documented table

@pytest.mark.parametrize("cron,effective,first", [
    ("0 * * * *", "0 * * * *", ["2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]),
    ("0 0 * * *", "0 0 * * *", ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]),
    ("0 0 1 * *", "0 0 1 * *", ["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"]),
    ("0 0 1-10 * *", "0 0 1-10 * *", ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]),
    ("0 0 1,11,21 * *", "0 0 1,11,21 * *",
     ["2026-01-11T00:00:00+00:00", "2026-01-21T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]),
    # every 2 hours starting at 00:30, on the 1st
    ("30 */2 1 * *", "30 0,2,4,6,8,10,12,14,16,18,20,22 1 * *",
     ["2026-01-01T00:30:00+00:00", "2026-01-01T02:30:00+00:00", "2026-01-01T04:30:00+00:00"]),
])
def test_the_documented_cron_table(cron, effective, first):
    assert parse(cron).effective == effective
    assert iso(cron, UTC, "2026-01-01T00:00:00+00:00", len(first)) == first


def test_every_5_days_starting_on_the_5th():
    days = [m.day for m in next_runs(parse("0 0 */5 * *"), UTC, at("2026-01-01T00:00:00+00:00"), 12)]
    assert days == [5, 10, 15, 20, 25, 30, 5, 10, 15, 20, 25, 5]  # February has no 30th


def test_a_list_of_a_value_a_step_and_a_value():
    # The documentation lists 5th, 10th, 20th and 25th; */10 (divisible by 10) also gives the 30th.
    assert parse("0 0 5,*/10,25 * *").effective == "0 0 5,10,20,25,30 * *"
    assert parse("2,*/5,8-10 * * * *").minutes == {0, 2, 5, 8, 9, 10, *range(15, 60, 5)}


def test_the_empty_expression_never_runs():
    parsed = parse("")
    assert parsed.never and parsed.effective == "" and parsed.ignored is None
    assert next_runs(parsed, UTC, at("2026-01-01T00:00:00+00:00"), 5) == []


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset(preset):
    assert parse(preset).effective == parse(PRESETS[preset]).effective
    assert parse(preset.upper()).effective == parse(PRESETS[preset]).effective


def test_daily_is_midnight_in_the_schedules_zone():
    assert iso("@daily", TOKYO, "2026-03-01T00:00:00+09:00", 2) == [
        "2026-03-02T00:00:00+09:00", "2026-03-03T00:00:00+09:00"]
    assert iso("@hourly", TOKYO, "2026-03-01T00:30:00+09:00", 1) == ["2026-03-01T01:00:00+09:00"]
    assert iso("@weekly", UTC, "2026-01-01T00:00:00+00:00", 1) == ["2026-01-04T00:00:00+00:00"]  # Sunday
    assert iso("@monthly", UTC, "2026-01-15T00:00:00+00:00", 1) == ["2026-02-01T00:00:00+00:00"]
    assert iso("@yearly", UTC, "2026-01-15T00:00:00+00:00", 1) == ["2027-01-01T00:00:00+00:00"]


# --------------------------------------------------------------------------- names and steps

def test_names_in_any_case_and_seven_is_sunday():
    assert parse("0 0 * JAN,Feb,mar Mon-FRI").effective == "0 0 * 1-3 1-5"
    assert parse("0 0 * * 7").weekdays == {0} == parse("0 0 * * SUN").weekdays
    assert parse("0 0 * * 5-7").weekdays == {0, 5, 6}


@pytest.mark.parametrize("field,index,low,high", [
    ("minute", 0, 0, 59), ("hour", 1, 0, 23), ("day", 2, 1, 31), ("month", 3, 1, 12)])
@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 10])
def test_star_slash_n_is_the_values_divisible_by_n(field, index, low, high, step):
    parts = ["*"] * 5
    parts[index] = f"*/{step}"
    parsed = parse(" ".join(parts))
    got = (parsed.minutes, parsed.hours, parsed.days, parsed.months)[index]
    assert got == {v for v in range(low, high + 1) if v % step == 0}


def test_a_range_with_a_step_starts_at_the_range():
    assert parse("1-10/3 * * * *").minutes == {1, 4, 7, 10}
    assert parse("0 0 * 2-11/3 *").months == {2, 5, 8, 11}
    assert parse("0 0 * * mon-fri/2").weekdays == {1, 3, 5}


@pytest.mark.parametrize("cron,words", [
    ("*/0 * * * *", "minute step '0'"), ("0 */24 * * *", "hour step '24'"),
    ("60 * * * *", "minute value 60 is out of range"), ("0 24 * * *", "hour value 24"),
    ("0 0 0 * *", "day-of-month value 0"), ("0 0 32 * *", "day-of-month value 32"),
    ("0 0 * 13 *", "month value 13"), ("0 0 * * 8", "day-of-week value 8"),
    ("0 0 * * jan", "day-of-week 'jan' is not a number or a name"),
    ("0 0 * mon *", "month 'mon'"), ("5-1 * * * *", "runs backwards"),
    ("1,* * * * *", "cannot be part of a list"), ("5/15 * * * *", "a step applies to * or to a range"),
    ("0 0 * *", "expected 5 fields"), ("0 0 0 * * *", "expected 5 fields"),
    ("@often", "unknown preset"), ("0 0 31 2 *", "never occurs"), ("1,,2 * * * *", "empty list item"),
])
def test_bad_expressions_name_the_field(cron, words):
    with pytest.raises(CronError) as err:
        parse(cron)
    assert words in str(err.value)


# --------------------------------------------------------------------------- the day fields

def test_the_more_frequent_day_field_wins():
    mondays = parse("0 0 1 * 1")
    assert (mondays.effective, mondays.ignored) == ("0 0 * * 1", "day_of_month")
    assert iso("0 0 1 * 1", UTC, "2026-01-01T00:00:00+00:00", 3) == [
        "2026-01-05T00:00:00+00:00", "2026-01-12T00:00:00+00:00", "2026-01-19T00:00:00+00:00"]
    first_week = parse("0 0 1-7 * 1")
    assert (first_week.effective, first_week.ignored) == ("0 0 1-7 * *", "day_of_week")
    assert parse("0 0 1-10 2 1").ignored == "day_of_week"  # 10 days a year vs 4 Mondays
    assert parse("0 0 31 * 0,6").ignored == "day_of_month"  # 7 days a year vs 104 weekend days
    assert "day-of-month is ignored" in (mondays.warning() or "")
    assert parse("0 0 1 * *").ignored is None and parse("0 0 * * 1").ignored is None


def test_counting_over_the_gregorian_cycle_matches_the_calendar():
    """day_counts against a walk over every day of 400 years."""
    months, days, weekdays = frozenset({2, 3}), frozenset({29, 30, 31}), frozenset({0, 3})
    by_day = by_weekday = 0
    day = dt.date(2000, 1, 1)
    while day < dt.date(2400, 1, 1):
        if day.month in months:
            by_day += day.day in days
            by_weekday += (day.weekday() + 1) % 7 in weekdays
        day += dt.timedelta(days=1)
    assert day_counts(days, weekdays, months) == (by_day, by_weekday)


def test_an_exact_tie_follows_day_of_week():
    # January, February and April: days 1-17 and Sundays, Mondays, Wednesdays and Fridays occur
    # equally often over 400 years.
    days, weekdays, months = frozenset(range(1, 18)), frozenset({0, 1, 3, 5}), frozenset({1, 2, 4})
    assert day_counts(days, weekdays, months)[0] == day_counts(days, weekdays, months)[1]
    parsed = parse("0 0 1-17 jan,feb,apr sun,mon,wed,fri")
    assert (parsed.ignored, parsed.effective) == ("day_of_month", "0 0 * 1,2,4 0,1,3,5")


# --------------------------------------------------------------------------- time zones

@pytest.mark.parametrize("name", ["JST", "PST", "EST", "PST8PDT", "CET", "US/Pacific", "Japan",
                                  "GMT", "Mars/Olympus"])
def test_a_schedule_zone_must_be_an_iana_name(name):
    with pytest.raises(ConfigError) as err:
        check_timezone(name)
    assert "IANA" in str(err.value)


@pytest.mark.parametrize("name", ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin",
                                  "America/Argentina/Buenos_Aires"])
def test_iana_names_are_accepted(name):
    check_timezone(name)


# --------------------------------------------------------------------------- daylight saving

@pytest.mark.parametrize("tz,cron,start,expected", [
    # Los Angeles, 2026-03-08: 02:00 PST jumps to 03:00 PDT
    (LA, "30 2 * * *", "2026-03-07T12:00:00-08:00",
     ["2026-03-08T03:00:00-07:00", "2026-03-09T02:30:00-07:00"]),
    (LA, "*/20 2 * * *", "2026-03-07T12:00:00-08:00",  # three skipped times: one run
     ["2026-03-08T03:00:00-07:00", "2026-03-09T02:00:00-07:00"]),
    (LA, "0 * * * *", "2026-03-08T00:30:00-08:00",  # nothing in the skipped hour
     ["2026-03-08T01:00:00-08:00", "2026-03-08T03:00:00-07:00", "2026-03-08T04:00:00-07:00"]),
    # Los Angeles, 2026-11-01: 02:00 PDT goes back to 01:00 PST
    (LA, "30 1 * * *", "2026-10-31T12:00:00-07:00",
     ["2026-11-01T01:30:00-07:00", "2026-11-02T01:30:00-08:00"]),
    (LA, "@daily", "2026-10-31T12:00:00-07:00",
     ["2026-11-01T00:00:00-07:00", "2026-11-02T00:00:00-08:00"]),
    (LA, "0 * * * *", "2026-11-01T00:30:00-07:00",  # the repeated hour runs twice
     ["2026-11-01T01:00:00-07:00", "2026-11-01T01:00:00-08:00", "2026-11-01T02:00:00-08:00"]),
    (LA, "@hourly", "2026-11-01T00:30:00-07:00",
     ["2026-11-01T01:00:00-07:00", "2026-11-01T01:00:00-08:00", "2026-11-01T02:00:00-08:00"]),
    # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST
    (BERLIN, "*/20 2 * * *", "2026-03-28T12:00:00+01:00",
     ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]),
    (BERLIN, "*/15 */2 * * *", "2026-03-29T00:40:00+01:00",
     ["2026-03-29T00:45:00+01:00", "2026-03-29T04:00:00+02:00"]),
    # Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET
    (BERLIN, "30 2 * * *", "2026-10-24T12:00:00+02:00",
     ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    (BERLIN, "*/15 */2 * * *", "2026-10-25T01:50:00+02:00",
     ["2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00", "2026-10-25T02:30:00+02:00",
      "2026-10-25T02:45:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:15:00+01:00",
      "2026-10-25T02:30:00+01:00", "2026-10-25T02:45:00+01:00", "2026-10-25T04:00:00+01:00"]),
])
def test_daylight_saving(tz, cron, start, expected):
    assert iso(cron, tz, start, len(expected)) == expected


def reference(cron: str, tz: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The rules, walked minute by minute in UTC: a wall time fires where it is seen; with a
    fixed hour field only its first occurrence; wall times the clock skipped fire once at the
    first instant after the gap."""
    parsed = parse(cron)

    def matches(local: dt.datetime) -> bool:
        return (local.minute in parsed.minutes and local.hour in parsed.hours
                and local.month in parsed.months and local.day in parsed.days
                and (local.weekday() + 1) % 7 in parsed.weekdays)

    fired: list[dt.datetime] = []
    t = start.astimezone(UTC).replace(second=0, microsecond=0)
    previous_wall = None
    while t <= end:
        local = t.astimezone(tz)
        wall = local.replace(tzinfo=None)
        if previous_wall is not None and wall - previous_wall > dt.timedelta(minutes=1):
            # the clocks went forward: the skipped wall times
            skipped = previous_wall + dt.timedelta(minutes=1)
            while skipped < wall:
                if matches(skipped) and not parsed.elapsed:
                    fired.append(t)
                    break
                skipped += dt.timedelta(minutes=1)
        if matches(local):
            seen_before = any(f.astimezone(tz).replace(tzinfo=None) == wall for f in fired[-200:])
            if parsed.elapsed or not seen_before:
                fired.append(t)
        previous_wall = wall
        t += dt.timedelta(minutes=1)
    out: list[dt.datetime] = []
    for f in fired:
        if f > start and (not out or out[-1] != f):
            out.append(f)
    return out


_field = st.one_of(
    st.just("*"), st.integers(0, 59).map(str),
    st.tuples(st.integers(0, 30), st.integers(0, 29)).map(lambda p: f"{p[0]}-{p[0] + p[1]}"),
    st.integers(1, 30).map(lambda n: f"*/{n}"))
_hours = st.one_of(st.just("*"), st.integers(0, 4).map(str), st.sampled_from(["*/2", "*/3", "1-3", "2,3", "0-2/2"]))
_transitions = [
    (LA, "2026-03-08T09:00:00+00:00"), (LA, "2026-11-01T08:00:00+00:00"),
    (BERLIN, "2026-03-29T00:00:00+00:00"), (BERLIN, "2026-10-25T00:00:00+00:00"),
    (ZoneInfo("Australia/Lord_Howe"), "2026-04-04T14:00:00+00:00"),  # a 30-minute change
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minute=_field.filter(lambda f: not f.startswith("*/") or int(f[2:]) <= 59),
       hour=_hours, where=st.sampled_from(_transitions), lead=st.integers(0, 300))
def test_daylight_saving_matches_the_minute_by_minute_reference(minute, hour, where, lead):
    tz, moment = where
    try:
        cron = f"{minute} {hour} * * *"
        parse(cron)
    except CronError:
        return
    start = at(moment) - dt.timedelta(hours=6, minutes=lead)
    end = start + dt.timedelta(hours=14)
    expected = reference(cron, tz, start, end)
    got = []
    for instant in runs(parse(cron), tz, start):
        if instant > end:
            break
        got.append(instant)
    assert [g.astimezone(UTC) for g in got] == expected


# --------------------------------------------------------------------------- the explain command

def test_explain_json_has_the_documented_shape(tmp_path):
    run = run_connector(tmp_path, "schedule", "explain", "0 0 1 * 1", "--timezone", "Asia/Tokyo",
                        "--from", "2026-12-01T00:00:00+09:00", "--count", "3", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "cron": "0 0 1 * 1", "timezone": "Asia/Tokyo", "effective": "0 0 * * 1",
        "ignored": "day_of_month",
        "runs": ["2026-12-07T00:00:00+09:00", "2026-12-14T00:00:00+09:00",
                 "2026-12-21T00:00:00+09:00"]}


def test_explain_from_is_exclusive(tmp_path):
    run = run_connector(tmp_path, "schedule", "explain", "@daily", "--from",
                        "2026-12-07T00:00:00+00:00", "--count", "1", "--json")
    assert json.loads(run.stdout)["runs"] == ["2026-12-08T00:00:00+00:00"]


@pytest.mark.parametrize("zone", ["JST", "PST", "EST", "PST8PDT"])
def test_explain_refuses_abbreviations_and_aliases(tmp_path, zone):
    run = run_connector(tmp_path, "schedule", "explain", "@daily", "--timezone", zone)
    assert run.returncode == 2
    assert "IANA" in run.stderr and "Traceback" not in run.stderr


def test_explain_names_the_bad_field(tmp_path):
    run = run_connector(tmp_path, "schedule", "explain", "0 0 32 * *")
    assert run.returncode == 2
    assert "day-of-month value 32" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_the_calendar_module_agrees_on_weekday_numbering():
    # cron's Sunday 0 against Python's Monday 0, on a known Sunday
    assert calendar.weekday(2026, 1, 4) == 6
    assert iso("0 0 * * 0", UTC, "2026-01-01T00:00:00+00:00", 1) == ["2026-01-04T00:00:00+00:00"]
