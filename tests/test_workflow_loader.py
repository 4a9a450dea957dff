"""Workflow files are read as digdag reads them: its YAML types, duplicate keys, !include with
deep merge and no way out of the folder, and the task rules (one operator or +children, unknown
_ keys named)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.workflow import WorkflowError, load_workflow
from connector.workflow.loader import load_file, parse_yaml

import yaml


def test_digdag_types_not_pyyamls():
    text = ("a: yes\nb: on\nc: 10:00:00\nd: 2016-01-01\ne: true\nf: 0.5\ng: 1.5\nh: 12\n"
            "i: Off\nj: TRUE\nk: null\nl: '10'\nm: 2016-01-01 10:00:00\nn: False\n")
    got = parse_yaml(text, "x.dig")
    assert got == {"a": "yes", "b": "on", "c": "10:00:00", "d": "2016-01-01", "e": True,
                   "f": "0.5", "g": 1.5, "h": 12, "i": "Off", "j": "TRUE", "k": None, "l": "10",
                   "m": "2016-01-01 10:00:00", "n": False}
    # what PyYAML would have made of the same text
    plain = yaml.safe_load(text)
    assert plain["a"] is True and plain["c"] == 36000 and plain["d"].year == 2016


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.builds(lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}", st.integers(0, 23), st.integers(0, 59),
              st.integers(0, 59)),
    st.builds(lambda m, s: f"{m}:{s:02d}", st.integers(0, 59), st.integers(0, 59)),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off",
                     "OFF", "y", "n", "Y", "N", "TRUE", "FALSE"]),
))
def test_times_dates_and_yaml11_booleans_stay_text(value):
    """Every clock time, date and YAML 1.1 boolean word stays the text it was written as."""
    assert parse_yaml(f"v: {value}\n", "x.dig") == {"v": value}


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**12, 10**12))
def test_integers_are_numbers(n):
    assert parse_yaml(f"v: {n}\n", "x.dig") == {"v": n}


def test_duplicate_key_is_an_error():
    with pytest.raises(WorkflowError, match=r"Duplicated keys: \['td>'\]"):
        parse_yaml("+t:\n  td>: a.sql\n  td>: b.sql\n", "x.dig")


def test_include_deep_merges_and_refuses_parent(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "params.yml").write_text(
        "brands:\n  a: {tag: T1}\ntd:\n  database: shop\nflag: on\n")
    (tmp_path / "w.dig").write_text(
        "_export:\n  td:\n    engine: presto\n  !include : 'config/params.yml'\n  extra: 1\n"
        "+t:\n  echo>: hi\n")
    got = load_file(tmp_path / "w.dig", tmp_path)
    assert got["_export"] == {"td": {"engine": "presto", "database": "shop"},
                              "brands": {"a": {"tag": "T1"}}, "flag": "on", "extra": 1}

    (tmp_path / "outside.yml").write_text("x: 1\n")
    (tmp_path / "config" / "w2.dig").write_text("_export:\n  !include : '../outside.yml'\n")
    with pytest.raises(WorkflowError, match=r"must not include \.\."):
        load_file(tmp_path / "config" / "w2.dig", tmp_path)
    (tmp_path / "w3.dig").write_text("_export:\n  !include : '/etc/hostname'\n")
    with pytest.raises(WorkflowError, match=r"must not include \.\."):
        load_file(tmp_path / "w3.dig", tmp_path)
    (tmp_path / "w4.dig").write_text("_export:\n  !include : 'missing.yml'\n")
    with pytest.raises(WorkflowError, match="missing.yml: no such file"):
        load_file(tmp_path / "w4.dig", tmp_path)
    (tmp_path / "loop.yml").write_text("!include : 'loop.yml'\n")
    with pytest.raises(WorkflowError, match="includes itself"):
        load_file(tmp_path / "loop.yml", tmp_path)


@pytest.mark.parametrize("text,message", [
    ("+t:\n  td>: q.sql\n  +child:\n    echo>: x\n", "can't have subtasks"),
    ("+t:\n  echo>: x\n  td>: q.sql\n", "more than one operator"),
    ("+t:\n  echo>: x\n  _retyr: 3\n", "unknown key '_retyr' (did you mean _retry"),
    ("+g:\n  _paralel: true\n  +a:\n    echo>: x\n", "contains invalid keys: '_paralel' (did you mean _parallel"),
    ("+g:\n  database: x\n  +a:\n    echo>: x\n", "contains invalid keys: 'database'"),
    ("timezone: Mars/Base\n+a:\n  echo>: x\n", "unknown time zone"),
    ("td>: q.sql\n", "includes unknown keys: 'td>'"),
    ("+a:\n  echo>: x\n  _retry: often\n", "_retry must be a number"),
    ("+a:\n  _parallel: sometimes\n  +b:\n    echo>: x\n", "_parallel must be true"),
    ("schedule:\n  daily>: 7am\n+a:\n  echo>: x\n", "daily> requires hh:mm:ss"),
])
def test_task_rules(tmp_path, text, message):
    path = tmp_path / "w.dig"
    path.write_text(text)
    with pytest.raises(WorkflowError) as err:
        load_workflow(path)
    assert message in str(err.value)


@pytest.mark.parametrize("block,cron,delay", [
    ("daily>: 07:00:00", "0 0 * * *", 7 * 3600),
    ("hourly>: 30:00", "0 * * * *", 1800),
    ("weekly>: Sun,09:00:00", "0 0 * * 0", 9 * 3600),
    ("monthly>: 1,09:00:00", "0 0 1 * *", 9 * 3600),
    ("minutes_interval>: 30", "*/30 * * * *", 0),
    ("cron>: 42 4 1 * *", "42 4 1 * *", 0),
    ("cron>: 0 * * * *\n  delay: 600", "0 * * * *", 600),
])
def test_schedule_blocks(tmp_path, block, cron, delay):
    path = tmp_path / "w.dig"
    path.write_text(f"timezone: Asia/Tokyo\nschedule:\n  {block}\n+a:\n  echo>: x\n")
    workflow = load_workflow(path)
    assert workflow.schedule is not None
    assert (workflow.schedule.cron, workflow.schedule.delay) == (cron, delay)
    assert workflow.timezone == "Asia/Tokyo"
