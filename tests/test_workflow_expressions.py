"""${...} is JavaScript in V8 with Treasure Workflow's rules, and moment(session_time) formats,
adds, subtracts and converts zones as Moment.js and moment-timezone do."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.workflow.expressions import Evaluator, ExpressionError


@pytest.fixture(scope="module")
def ev():
    with Evaluator() as evaluator:
        yield evaluator


PARAMS = {
    "session_time": "2016-03-13T10:00:00+00:00",
    "brand": {"shoes": {"line": {"line_tag_id": "T-1"}}, "bags": {"line": {"line_tag_id": "T-2"}}},
    "params": "shoes", "nothing": None, "items": [1, "a"], "n": 3, "flag": True,
}


@pytest.mark.parametrize("template,expected", [
    ("${brand[params].line.line_tag_id}", "T-1"),
    ("${brand.bags.line.line_tag_id}", "T-2"),
    ("${Object.keys(brand)}", '["shoes","bags"]'),
    ("tag_${params}_${n + 1}", "tag_shoes_4"),
    ("${'a' + '-' + params}", "a-shoes"),
    ("[${nothing}]", "[]"),
    ("${items}", '[1,"a"]'),
    ("${flag}", "true"),
    ("${n > 2 ? 'many' : 'few'}", "many"),
    ("$$5 and $${n}", "$5 and $3"),
    ("${secret:line.token}", "${secret:line.token}"),
    ("keep ${unterminated", "keep ${unterminated"),
    ("${}", ""),
    ("${JSON.stringify({a: n})}", '{"a":3}'),
])
def test_templates(ev, template, expected):
    assert ev.template(template, PARAMS) == expected


# Moment.js's own results for these (digdag's moment test file, session 2016-03-13T10:00:00Z,
# in a UTC process), and moment-timezone's for the zone conversions.
@pytest.mark.parametrize("expr,expected", [
    ("moment(session_time).format()", "2016-03-13T10:00:00+00:00"),
    ("moment(session_time).add(1, 'days').format()", "2016-03-14T10:00:00+00:00"),
    ("moment(session_time).add(-1, 'days').format()", "2016-03-12T10:00:00+00:00"),
    ("moment(session_time).add(1, 'hours').format()", "2016-03-13T11:00:00+00:00"),
    ("moment(session_time).subtract(1, 'hours').format()", "2016-03-13T09:00:00+00:00"),
    ("moment(session_time).utc().format()", "2016-03-13T10:00:00Z"),
    ("moment(session_time).format('YYYY-MM-DD HH:mm:ss Z')", "2016-03-13 10:00:00 +00:00"),
    ("moment(session_time).format('LLL')", "March 13, 2016 10:00 AM"),
    ("moment(session_time).format('YYYYMMDD')", "20160313"),
    ("moment(session_time).subtract(1, 'months').format('YYYY-MM')", "2016-02"),
    ("moment('2016-01-31T00:00:00Z').add(1, 'month').format('YYYY-MM-DD')", "2016-02-29"),
    ("moment(session_time).tz('Asia/Tokyo').format()", "2016-03-13T19:00:00+09:00"),
    ("moment(session_time).tz('America/Los_Angeles').format('YYYY-MM-DD HH:mm ZZ')",
     "2016-03-13 03:00 -0700"),
    # 02:00 does not exist that day in Los Angeles: moved forward by the gap
    ("moment('2016-03-12T10:00:00Z').tz('America/Los_Angeles').add(1, 'day').format()",
     "2016-03-13T03:00:00-07:00"),
    ("moment(session_time).tz('Asia/Tokyo').startOf('day').unix()", "1457794800"),
    ("moment.parseZone('2016-01-30T00:00:00+09:00').format('YYYY-MM-DD')", "2016-01-30"),
    ("moment('2016-01-30T00:00:00+09:00').format('YYYY-MM-DD')", "2016-01-29"),
    ("moment('20160130', 'YYYYMMDD').format('DD/MM/YYYY')", "30/01/2016"),
    ("moment(session_time).format('[week] W, ddd Do MMM')", "week 10, Sun 13th Mar"),
    ("moment(session_time).add({days: 1, hours: 2}).format()", "2016-03-14T12:00:00+00:00"),
])
def test_moment(ev, expr, expected):
    assert ev.template("${" + expr + "}", PARAMS) == expected


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2060, 1, 1)),
       st.sampled_from(["UTC", "Asia/Tokyo", "America/Los_Angeles", "Europe/London",
                        "Australia/Sydney"]),
       st.integers(-400, 400), st.sampled_from(["days", "hours"]))
def test_moment_against_zoneinfo(ev, when, zone, amount, unit):
    """tz().add().format() agrees with Python's zoneinfo: days keep the wall clock, hours add
    elapsed time."""
    start = when.replace(microsecond=0, tzinfo=dt.timezone.utc)
    session = start.isoformat()
    got = ev.template("${moment(s).tz(z).add(a, u).format('YYYY-MM-DDTHH:mm:ssZ')}",
                      {"s": session, "z": zone, "a": amount, "u": unit})
    local = start.astimezone(ZoneInfo(zone))
    if unit == "hours":
        expected = (start + dt.timedelta(hours=amount)).astimezone(ZoneInfo(zone))
    else:
        wall = local.replace(tzinfo=None) + dt.timedelta(days=amount)
        expected = _wall_in_zone(wall, ZoneInfo(zone))
    assert got == expected.isoformat(timespec="seconds")


def _wall_in_zone(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A wall time in `zone` as moment-timezone resolves it: the earlier of a repeated time, and
    a skipped time moved forward by the gap."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) == wall:
        return first
    later = wall.replace(tzinfo=zone, fold=1)
    return (later.astimezone(dt.timezone.utc)).astimezone(zone)


@pytest.mark.parametrize("template,message", [
    ("${nope.x}", "ReferenceError: nope is not defined"),
    ("${brand.nothing.x}", "TypeError"),
    ("${moment('yesterday')}", "moment: cannot read"),
    ("${moment(session_time).tz('Mars/Base')}", "unknown time zone"),
    ("${(function(){ while (true) {} })()}", "ran longer than"),
])
def test_errors_name_the_expression(ev, template, message):
    with pytest.raises(ExpressionError) as err:
        ev.template(template, PARAMS)
    assert message in str(err.value)


def test_config_evaluation_scope(ev):
    """Each key sees the parameters and the keys before it in the same mapping; _do waits."""
    got = ev.evaluate({"a": "${n}", "b": "${a}-x", "_do": {"echo>": "${later}"},
                       "nested": {"c": "${n * 2}"}}, {"n": 1})
    assert got == {"a": "1", "b": "1-x", "_do": {"echo>": "${later}"}, "nested": {"c": "2"}}
