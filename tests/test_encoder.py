"""LineEventEncoder end to end on row tuples: row -> event dict -> JSON bytes.

Every event the encoder produces must also pass check_wire_event, the sandbox's validation: the
exporter may never emit an event the receiving side would reject. The last tests run the CLI: a
malformed custom_data or event_timestamp cell makes only its own row invalid.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import orjson
import pytest

from helpers import TAG, gen_sql, line_columns, no_traceback, now_s, result_config, run_cli
from connector.outputs.line_conversion.fields import (
    FIELDS,
    REQUIRED_COLUMNS,
    FieldError,
    check_wire_event,
)
from connector.outputs.line_conversion.encoders import LineEventEncoder
from connector.outputs.line_conversion.custom import parse_custom

NOW = 1_735_689_600
EMAIL_HASH = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
PHONE_HASH = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
LINE_UID = "U" + "0123456789abcdef" * 2
UUID_LOWER = "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"

BASE = {
    "deduplication_key": "order-1",
    "event_type": "conversion",
    "source_type": "web",
    "event_timestamp": NOW,
    "email": " Taro.Yamada@Example.com ",
}


def make(values: dict[str, Any], *, channel: bool = False, test_flag: bool = False,
         region: str | None = None) -> tuple[LineEventEncoder, tuple]:
    cols = list(values)
    enc = LineEventEncoder(line_columns(cols), channel_id_present=channel, test_flag=test_flag,
                           default_phone_region=region, clock=lambda: NOW)
    return enc, tuple(values.values())


def build(overrides: dict[str, Any] | None = None, *, drop: tuple[str, ...] = (),
          **kw: Any) -> dict[str, Any]:
    values = {**BASE, **(overrides or {})}
    for d in drop:
        values.pop(d)
    enc, row = make(values, **kw)
    out = enc.build(row)
    data = enc.encode(row)
    assert orjson.loads(data) == out  # bytes are valid JSON equal to the dict
    check_wire_event(orjson.loads(data), NOW, kw.get("channel", False))
    return out


def invalid(overrides: dict[str, Any], **kw: Any) -> FieldError:
    values = {**BASE, **overrides}
    enc, row = make(values, **kw)
    with pytest.raises(FieldError) as ei:
        enc.encode(row)
    return ei.value


def _no_nulls(obj: Any) -> None:
    assert obj is not None
    if isinstance(obj, dict):
        for v in obj.values():
            _no_nulls(v)
    elif isinstance(obj, list):
        for v in obj:
            _no_nulls(v)


# --------------------------------------------------------------------------- shape


def test_minimal_event_shape():
    out = build()
    assert out == {
        "event": {"deduplication_key": "order-1", "event_type": "conversion", "source_type": "web",
                  "event_timestamp": NOW},
        "user": {"email": EMAIL_HASH},
    }


def full_row() -> dict[str, Any]:
    return {
        "referrer": "https://ref.example/", "ip_address": "203.0.113.10", "title": "Shop",
        "user_agent": "Mozilla/5.0", "url": "https://example.com/p", "deduplication_key": "k-1",
        "event_type": "conversion", "event_name": "Purchase", "source_type": "web",
        "event_timestamp": NOW, "browser_id": UUID_LOWER, "click_id": "clk_1", "phone": "+818012345678",
        "ifa": UUID_LOWER.upper(), "external_id": "user_1", "line_uid": LINE_UID,
        "email": "taro.yamada@example.com",
        "custom_data": '{"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1"], '
                       '"keywords": ["k"], "category": "shoes"}',
    }


def test_full_event_nested_shape():
    out = build(full_row(), channel=True)
    assert set(out) == {"event", "user", "web", "custom"}
    assert "custom_data" not in out and "app" not in out
    assert out["event"] == {"deduplication_key": "k-1", "event_type": "conversion",
                            "event_name": "Purchase", "source_type": "web", "event_timestamp": NOW}
    assert out["user"] == {"email": EMAIL_HASH, "phone": PHONE_HASH, "line_uid": LINE_UID,
                           "click_id": "clk_1", "browser_id": UUID_LOWER, "ifa": UUID_LOWER.upper(),
                           "external_id": "user_1"}
    assert out["web"] == {"url": "https://example.com/p", "referrer": "https://ref.example/",
                          "title": "Shop", "user_agent": "Mozilla/5.0", "ip_address": "203.0.113.10"}
    assert out["custom"] == {"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1"],
                             "keywords": ["k"], "category": "shoes"}


def test_every_field_lands_at_its_path():
    out = build(full_row(), channel=True)
    for f in FIELDS:
        assert f.key in out[f.section], f.path


def test_column_order_does_not_matter():
    row = full_row()
    reordered = dict(reversed(list(row.items())))
    assert build(reordered, channel=True) == build(row, channel=True)


def test_web_omitted_when_empty():
    out = build({"url": None, "title": "", "referrer": None})
    assert "web" not in out
    out = build({"title": "T"})
    assert out["web"] == {"title": "T"}


def test_columns_matched_case_insensitively():
    values = {"DEDUPLICATION_KEY": "k", "Event_Type": "page_view", "Source_Type": "web",
              "EVENT_TIMESTAMP": NOW, "EMAIL": "taro.yamada@example.com", "Url": "https://x.y",
              "Custom_Data": '{"value": 5}'}
    enc, row = make(values)
    out = enc.build(row)
    assert out["event"]["event_type"] == "page_view"
    assert out["user"] == {"email": EMAIL_HASH}
    assert out["web"] == {"url": "https://x.y"}
    assert out["custom"] == {"value": 5}


def test_unknown_columns_are_ignored():
    out = build({"favourite_colour": "blue", "Notes": "x"})
    assert "favourite_colour" not in orjson.dumps(out).decode()


# --------------------------------------------------------------------------- nulls and empties

OPTIONAL = [f.column for f in FIELDS if not f.required]


@pytest.mark.parametrize("column", OPTIONAL)
def test_null_optional_omitted(column):
    row = full_row()
    row[column] = None
    out = build(row, channel=True)
    _no_nulls(out)
    assert all(column not in section for section in out.values())


@pytest.mark.parametrize("column", OPTIONAL)
def test_empty_string_optional_omitted(column):
    row = full_row()
    row[column] = ""
    out = build(row, channel=True)
    assert all(column not in section for section in out.values())


def test_no_null_anywhere_in_output_bytes():
    row = {**BASE, **{c: None for c in OPTIONAL}, "email": "a@b.c", "custom_data": None}
    enc, tup = make(row)
    data = enc.encode(tup)
    assert b"null" not in data


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_required_null_is_invalid(column):
    err = invalid({column: None})
    assert (err.column, err.rule) == (column, "required")


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_required_empty_string_is_invalid(column):
    err = invalid({column: ""})
    assert err.column == column


# --------------------------------------------------------------------------- test_flag, channel


def test_test_flag_only_when_configured():
    assert "test_flag" not in build()["event"]
    assert build(test_flag=True)["event"]["test_flag"] is True


def test_line_uid_without_channel_invalid():
    err = invalid({"line_uid": LINE_UID})
    assert (err.column, err.rule) == ("line_uid", "channel_id")
    assert build({"line_uid": LINE_UID}, channel=True)["user"]["line_uid"] == LINE_UID


def test_no_identifier_invalid():
    err = invalid({"email": None})
    assert err.rule == "identifier"
    err = invalid({"email": ""})
    assert err.rule == "identifier"


# --------------------------------------------------------------------------- value conversions


@pytest.mark.parametrize("ts", [
    NOW, str(NOW), decimal.Decimal(NOW), float(NOW), dt.datetime(2025, 1, 1),
    dt.datetime(2025, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9))),
])
def test_timestamp_forms(ts):
    assert build({"event_timestamp": ts})["event"]["event_timestamp"] == NOW


def test_timestamp_in_milliseconds_flagged():
    err = invalid({"event_timestamp": NOW * 1000})
    assert (err.column, err.rule) == ("event_timestamp", "unit")
    assert "milliseconds" in err.reason


def test_timestamp_window_uses_the_clock():
    build({"event_timestamp": NOW - 90 * 86400})
    assert invalid({"event_timestamp": NOW - 90 * 86400 - 1}).rule == "window"
    assert invalid({"event_timestamp": NOW + 86400 + 1}).rule == "window"


def test_refresh_clock():
    ticks = iter([NOW, NOW + 200 * 86400])
    values = dict(BASE)
    enc = LineEventEncoder(line_columns(list(values)), channel_id_present=False, test_flag=False,
                           default_phone_region=None, clock=lambda: next(ticks))
    enc.build(tuple(values.values()))
    enc.refresh_clock()
    with pytest.raises(FieldError) as ei:
        enc.build(tuple(values.values()))
    assert ei.value.rule == "window"


def test_nan_timestamp_is_an_invalid_row_not_a_crash():
    """A DOUBLE column holding NaN must make the row invalid (FieldError), not raise ValueError,
    which the job does not catch as an invalid record."""
    enc, row = make({**BASE, "event_timestamp": float("nan")})
    with pytest.raises(FieldError):
        enc.build(row)


def test_typed_columns_become_text():
    out = build({"deduplication_key": 12345, "browser_id": uuid.UUID(UUID_LOWER),
                 "external_id": 42})
    assert out["event"]["deduplication_key"] == "12345"
    assert out["user"]["browser_id"] == UUID_LOWER
    assert out["user"]["external_id"] == "42"


@pytest.mark.parametrize("column, value", [("deduplication_key", 1.5), ("title", b"x"),
                                           ("event_type", True)])
def test_untyped_values_rejected(column, value):
    err = invalid({column: value})
    assert (err.column, err.rule) == (column, "type")


@pytest.mark.parametrize("column, value, rule", [
    ("deduplication_key", "a#b", "pattern"),
    ("deduplication_key", "undefined", "undefined"),
    ("event_type", "purchase", "enum"),
    ("source_type", "app", "enum"),
    ("event_name", "N" * 21, "pattern"),
    ("email", "not-an-email", "format"),
    ("phone", "08012345678", "country_code"),
    ("line_uid", "U" + "A" * 32, "pattern"),
    ("browser_id", "nope", "pattern"),
    ("url", "ftp://x", "pattern"),
    ("ip_address", "999.1.1.1", "format"),
    ("title", "t" * 1025, "max_length"),
])
def test_invalid_values(column, value, rule):
    err = invalid({column: value}, channel=True)
    assert (err.column, err.rule) == (column, rule)
    if value != "undefined":  # a fixed literal, not personal data
        assert str(value) not in err.reason


# --------------------------------------------------------------------------- custom_data


@pytest.mark.parametrize("raw, expected", [
    ('{"value": 1200, "currency": "JPY"}', {"value": 1200, "currency": "JPY"}),
    (b'{"value": 1200.5}', {"value": 1200.5}),
    ({"value": 1200, "currency": "JPY"}, {"value": 1200, "currency": "JPY"}),
    ({"value": decimal.Decimal("1200")}, {"value": 1200}),
    ({"value": decimal.Decimal("1200.50"), "quantity": decimal.Decimal("3")},
     {"value": 1200.5, "quantity": 3}),
    ({"key": ["value", "currency"], "value": [1200, "JPY"]}, {"value": 1200, "currency": "JPY"}),
    ({"item_ids": ("a", "b"), "keywords": ["k"]}, {"item_ids": ["a", "b"], "keywords": ["k"]}),
    ('{"value": 1, "currency": null}', {"value": 1}),
    ('{"category": "shoes"}', {"category": "shoes"}),
])
def test_custom_data_forms(raw, expected):
    out = build({"custom_data": raw})
    assert out["custom"] == expected
    assert isinstance(out["custom"].get("value", 0), (int, float))


def test_custom_data_trino_row():
    class NamedRowTuple(tuple):
        _names = ["value", "currency"]

    out = build({"custom_data": NamedRowTuple((decimal.Decimal("99"), "JPY"))})
    assert out["custom"] == {"value": 99, "currency": "JPY"}


@pytest.mark.parametrize("raw", [None, "", "{}", {}, '{"value": null}'])
def test_custom_data_empty_omitted(raw):
    assert "custom" not in build({"custom_data": raw})


@pytest.mark.parametrize("raw", ["{bad", "{'value': 1}", '{"value": 1', "nan"])
def test_custom_data_invalid_json(raw):
    err = invalid({"custom_data": raw})
    assert (err.column, err.rule) == ("custom_data", "json")


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", [1, 2], 42])
def test_custom_data_not_an_object(raw):
    err = invalid({"custom_data": raw})
    assert (err.column, err.rule) == ("custom_data", "type")


@pytest.mark.parametrize("raw, column, rule", [
    ('{"revenue": 1}', "custom_data", "unknown_key"),
    ('{"Value": 1}', "custom_data", "unknown_key"),
    ('{"value": -1}', "custom_data.value", "range"),
    ('{"value": 2147483648}', "custom_data.value", "range"),
    ('{"value": true}', "custom_data.value", "type"),
    ('{"value": "1200"}', "custom_data.value", "type"),
    ('{"currency": "jpy"}', "custom_data.currency", "pattern"),
    ('{"quantity": 1.5}', "custom_data.quantity", "type"),
    ('{"item_ids": ["a", 1]}', "custom_data.item_ids", "type"),
    ({"keywords": ["k"] * 11}, "custom_data.keywords", "max_items"),
    ({"item_ids": ["i"] * 101}, "custom_data.item_ids", "max_items"),
    ({"category": "c" * 301}, "custom_data.category", "max_length"),
    ({"value": decimal.Decimal("-0.01")}, "custom_data.value", "range"),
])
def test_custom_data_invalid_keys(raw, column, rule):
    err = invalid({"custom_data": raw})
    assert (err.column, err.rule) == (column, rule)


def test_parse_custom_direct():
    assert parse_custom('{"value": 0}') == {"value": 0}
    assert parse_custom({"value": 2147483647}) == {"value": 2147483647}


# --------------------------------------------------------------------------- many rows


def test_many_rows_pass_the_sandbox_check():
    cols = list(full_row())
    enc = LineEventEncoder(line_columns(cols), channel_id_present=True, test_flag=True,
                           default_phone_region="JP", clock=lambda: NOW)
    n = 0
    for i in range(200):
        row = full_row()
        row["deduplication_key"] = f"k-{i}"
        row["event_type"] = ("page_view", "conversion")[i % 2]
        row["event_timestamp"] = NOW - i * 3600
        row["phone"] = ("+818012345678", "080-1234-5678", PHONE_HASH.upper(), None)[i % 4]
        if i % 3 == 0:
            row["line_uid"] = None
        if i % 5 == 0:
            row["custom_data"] = None
        if i % 7 == 0:
            for c in ("url", "referrer", "title", "user_agent", "ip_address"):
                row[c] = None
        data = enc.encode(tuple(row[c] for c in cols))
        ev = orjson.loads(data)
        check_wire_event(ev, NOW, True)
        assert ev["event"]["test_flag"] is True
        n += 1
    assert n == 200


# ------------------------------------------------------ through the CLI: one bad cell, one invalid row


def test_custom_data_with_list_keys_makes_only_its_row_invalid(sandbox, tmp_path):
    """A custom_data cell shaped like DuckDB's MAP form but with list keys,
    {"key": [[1]], "value": [1]}, makes its row invalid (custom_data), and the other rows are
    sent: one malformed cell never stops the export."""
    sql = gen_sql(3, extra=""", CASE WHEN i = 2 THEN '{"key": [[1]], "value": [1]}'
                                 ELSE NULL END AS custom_data""")
    run = run_cli(tmp_path, sql, result_config(sandbox))
    no_traceback(run)
    assert run.report is not None
    assert (run.report["events_sent"], run.report["invalid_records"]) == (2, 1)


def test_custom_data_json_text_with_key_and_value_is_not_read_as_a_map(sandbox, tmp_path):
    """JSON text custom_data `{"key": ["currency"], "value": ["JPY"]}` is an object whose keys
    are "key" and "value", unknown custom_data keys: the row is invalid and nothing is sent.
    Only a MAP value from the engine (DuckDB's {"key": [...], "value": [...]} form) is read as
    key-value pairs; rewriting the text to {"currency": "JPY"} would send what the query never
    held."""
    custom = json.dumps({"key": ["currency"], "value": ["JPY"]})
    run = run_cli(tmp_path, gen_sql(1, extra=f", '{custom}' AS custom_data"),
                  result_config(sandbox))
    assert run.report["invalid_records"] == 1, sandbox.events(TAG)
    assert run.report["events_sent"] == 0


def test_timestamp_of_5000_digits_makes_only_its_row_invalid(sandbox, tmp_path):
    """A digit string too long for int() (Python refuses more than 4,300 digits) in
    event_timestamp makes its row invalid (event_timestamp); the other rows are sent and a
    report is written."""
    sql = f"""
        SELECT 'k-' || i AS deduplication_key, 'conversion' AS event_type, 'web' AS source_type,
               CASE WHEN i = 2 THEN repeat('9', 5000) ELSE '{now_s() - 60}' END AS event_timestamp,
               'u' || i || '@example.com' AS email
        FROM range(1, 4) t(i)
    """
    run = run_cli(tmp_path, sql, result_config(sandbox))
    no_traceback(run)
    assert run.report is not None
    assert (run.report["events_sent"], run.report["invalid_records"]) == (2, 1)
