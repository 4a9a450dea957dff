"""Unit tests of the LINE field table (connector/outputs/line_conversion/fields.py and rules.py).

Rules come from LINE's Conversion API documentation and Treasure Data's column table. Where the
table carries the information (FIELDS, CUSTOM_KEYS, the validation text), the tests are driven from
it, so a field added to the table without tests shows up as a failure here.
"""
from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from typing import Any

import pytest

from connector.outputs.line_conversion import fields as F
from connector.outputs.line_conversion.fields import (
    BY_COLUMN,
    CUSTOM_BY_KEY,
    CUSTOM_KEYS,
    FIELDS,
    IDENTIFIER_KEYS,
    FieldError,
    check_cross_rules,
    check_timestamp_window,
    check_wire_event,
    timestamp_seconds,
)

NOW = 1_735_689_600  # 2025-01-01T00:00:00Z, a fixed clock for every window test
DAY = 24 * 3600
HEX64 = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
LINE_UID = "U" + "0123456789abcdef" * 2
UUID_LOWER = "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"

# One valid wire value per column. Every column of FIELDS must be here (checked below).
VALID: dict[str, Any] = {
    "deduplication_key": "order-123_A",
    "event_type": "conversion",
    "event_name": "Purchase",
    "source_type": "web",
    "event_timestamp": NOW,
    "email": HEX64,
    "phone": "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713",
    "line_uid": LINE_UID,
    "click_id": "abc_DEF-123",
    "browser_id": UUID_LOWER,
    "ifa": UUID_LOWER.upper(),
    "external_id": "user_42-x",
    "url": "https://example.com/p?q=1",
    "referrer": "https://ref.example/",
    "title": "Shop",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "ip_address": "203.0.113.10",
}


def rule_of(check, value) -> str:
    with pytest.raises(FieldError) as ei:
        check(value)
    return ei.value.rule


def field(column: str) -> F.Field:
    return BY_COLUMN[column]


# --------------------------------------------------------------------------- the table itself


def test_every_field_has_a_valid_example():
    assert set(VALID) == {f.column for f in FIELDS}


def test_table_matches_the_wire_contract():
    """Sections, required, hashed and identifier flags as LINE's API documentation declares
    them."""
    sections = {s: {f.key for f in FIELDS if f.section == s} for s in ("event", "user", "web")}
    assert sections["event"] == {"deduplication_key", "event_type", "event_name", "source_type",
                                 "event_timestamp"}
    assert sections["user"] == {"email", "phone", "line_uid", "click_id", "browser_id", "ifa",
                                "external_id"}
    assert sections["web"] == {"url", "referrer", "title", "user_agent", "ip_address"}
    assert set(F.REQUIRED_COLUMNS) == {"deduplication_key", "event_type", "source_type",
                                       "event_timestamp"}
    assert {f.column for f in FIELDS if f.hashed} == {"email", "phone"}
    assert set(IDENTIFIER_KEYS) == sections["user"]
    assert F.CUSTOM_SECTION == "custom"
    assert F.CUSTOM_COLUMN == "custom_data"
    assert {c.key for c in CUSTOM_KEYS} == {"value", "currency", "quantity", "item_ids",
                                            "keywords", "category"}
    assert "app" not in F.SECTIONS


def test_known_columns_are_treasure_datas_columns():
    td = ("referrer, ip_address, title, user_agent, url, deduplication_key, event_type, event_name, "
          "source_type, event_timestamp, browser_id, click_id, phone, ifa, external_id, line_uid, "
          "email").split(", ")
    assert set(F.KNOWN_COLUMNS) == set(td) | {"custom_data"}


def test_only_codes_times_and_amounts_are_visible():
    assert F.VISIBLE_COLUMNS == {"event_type", "event_name", "source_type", "event_timestamp",
                                 "custom_data.value", "custom_data.currency",
                                 "custom_data.quantity"}


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.column)
def test_valid_example_passes(f):
    f.check(VALID[f.column])


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.column)
def test_wrong_type_rejected(f):
    bad = "1735689600" if f.column == "event_timestamp" else 12345
    assert rule_of(f.check, bad) == "type"
    assert rule_of(f.check, ["x"]) == "type"


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.column)
def test_bool_is_not_a_value(f):
    assert rule_of(f.check, True) == "type"


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.column)
def test_error_names_the_column(f):
    bad = "x" if f.column == "event_timestamp" else 3.5
    with pytest.raises(FieldError) as ei:
        f.check(bad)
    assert ei.value.column == f.column


# Columns whose rule is anchored at the end of the value: a trailing newline must not slip through
# (Python's `$` matches before a final "\n").
ANCHORED = ["deduplication_key", "event_type", "event_name", "source_type", "email", "phone",
            "line_uid", "click_id", "browser_id", "ifa", "external_id", "ip_address"]


@pytest.mark.parametrize("column", ANCHORED)
def test_trailing_newline_rejected(column):
    with pytest.raises(FieldError):
        field(column).check(VALID[column] + "\n")


@pytest.mark.parametrize("column", ANCHORED)
def test_surrounding_space_rejected(column):
    with pytest.raises(FieldError):
        field(column).check(" " + VALID[column])


def _length_limits() -> dict[str, int]:
    """Maximum lengths read from the documented validation text of each field."""
    out = {}
    for f in FIELDS:
        m = re.search(r"\{1,(\d+)\}", f.validation) or re.search(r"at most (\d+) characters",
                                                                  f.validation)
        if m:
            out[f.column] = int(m.group(1))
    return out


LIMITS = _length_limits()


def _of_length(column: str, n: int) -> str:
    return "https://" + "a" * (n - 8) if column == "url" else "a" * n


def test_length_limits_match_spec():
    assert LIMITS == {"deduplication_key": 256, "event_name": 20, "external_id": 512,
                      "url": 2048, "referrer": 2048, "title": 1024}


@pytest.mark.parametrize("column", sorted(LIMITS))
def test_length_limit_boundary(column):
    n = LIMITS[column]
    field(column).check(_of_length(column, n))
    with pytest.raises(FieldError) as ei:
        field(column).check(_of_length(column, n + 1))
    assert ei.value.column == column
    assert ei.value.rule in ("pattern", "max_length")


# --------------------------------------------------------------------------- event section


@pytest.mark.parametrize("value", ["a", "A-b_9", "_", "-", "0" * 256, "Z" * 256,
                                   "undefined_", "Undefined"])
def test_deduplication_key_valid(value):
    field("deduplication_key").check(value)


@pytest.mark.parametrize("value, rule", [
    ("", "pattern"),
    ("a" * 257, "pattern"),
    ("a#b", "pattern"),
    ("a b", "pattern"),
    ("a.b", "pattern"),
    ("キー", "pattern"),
    ("undefined", "undefined"),
])
def test_deduplication_key_invalid(value, rule):
    assert rule_of(field("deduplication_key").check, value) == rule


@pytest.mark.parametrize("value", ["page_view", "conversion"])
def test_event_type_valid(value):
    field("event_type").check(value)


@pytest.mark.parametrize("value", ["Conversion", "PAGE_VIEW", "pageview", "click", "", "web"])
def test_event_type_invalid(value):
    assert rule_of(field("event_type").check, value) == "enum"


@pytest.mark.parametrize("value", ["Conversion", "Purchase", "a", "A" * 20, "add_to-cart_9"])
def test_event_name_valid(value):
    field("event_name").check(value)


@pytest.mark.parametrize("value", ["A" * 21, "", "add to cart", "buy!", "購入"])
def test_event_name_invalid(value):
    assert rule_of(field("event_name").check, value) == "pattern"


def test_source_type_only_web():
    field("source_type").check("web")
    for bad in ("app", "offline", "Web", "WEB", ""):
        assert rule_of(field("source_type").check, bad) == "enum"


def test_event_timestamp_wire_check():
    check = field("event_timestamp").check
    check(1)
    check(NOW)
    assert rule_of(check, 0) == "range"
    assert rule_of(check, -1) == "range"
    # A number on the wire, as LINE's own server-side tag sends it (milliseconds / 1000).
    check(float(NOW))
    check(NOW + 0.123)
    assert rule_of(check, float("nan")) == "range"
    assert rule_of(check, str(NOW)) == "type"
    assert rule_of(check, True) == "type"


# ---------------------------------------------------------------- event_timestamp: conversion


@pytest.mark.parametrize("value, expected", [
    (NOW, NOW),
    (1, 1),
    (str(NOW), NOW),
    (f"  {NOW} ", NOW),
    (decimal.Decimal(NOW), NOW),
    (decimal.Decimal(f"{NOW}.000"), NOW),
    (float(NOW), NOW),
    (dt.datetime(2025, 1, 1), NOW),  # naive = UTC
    (dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))), NOW),
    (dt.datetime(2024, 12, 31, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), NOW),
    (dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), NOW),
    (dt.datetime(2025, 1, 1, 0, 0, 0, 999_999), NOW),  # sub-second part truncated
])
def test_timestamp_seconds_converts(value, expected):
    assert timestamp_seconds(value) == expected
    assert type(timestamp_seconds(value)) is int


@pytest.mark.parametrize("value", [
    True, False, "", "abc", "-5", "1.5", "1e9", "0x10", f"{NOW}.5", float(NOW) + 0.5,
    decimal.Decimal("1.5"), dt.date(2025, 1, 1), dt.time(12, 0), [NOW], b"1735689600",
])
def test_timestamp_seconds_rejects_with_field_error(value):
    with pytest.raises(FieldError) as ei:
        timestamp_seconds(value)
    assert ei.value.column == "event_timestamp"
    assert ei.value.rule == "type"


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), float("-inf"),
    decimal.Decimal("NaN"), decimal.Decimal("Infinity"), decimal.Decimal("sNaN"),
    "²",  # str.isdigit() is true for superscripts, int() rejects them
], ids=["nan", "inf", "-inf", "Decimal-NaN", "Decimal-Infinity", "Decimal-sNaN", "superscript-2"])
def test_timestamp_seconds_odd_values_raise_field_error_not_crash(value):
    """A DOUBLE or DECIMAL column may hold NaN/Infinity. The row must be reported invalid
    (FieldError, an InvalidRecord the job catches), not crash the job with ValueError or
    OverflowError."""
    with pytest.raises(FieldError):
        timestamp_seconds(value)


def test_window_boundaries_inclusive():
    check_timestamp_window(NOW, NOW)
    check_timestamp_window(NOW - 90 * DAY, NOW)
    check_timestamp_window(NOW + DAY, NOW)
    assert F.TIMESTAMP_PAST_SECONDS == 90 * DAY
    assert F.TIMESTAMP_FUTURE_SECONDS == DAY


def test_window_past_edge():
    with pytest.raises(FieldError) as ei:
        check_timestamp_window(NOW - 90 * DAY - 1, NOW)
    assert (ei.value.column, ei.value.rule) == ("event_timestamp", "window")
    assert "90 days" in ei.value.reason


def test_window_future_edge():
    with pytest.raises(FieldError) as ei:
        check_timestamp_window(NOW + DAY + 1, NOW)
    assert (ei.value.column, ei.value.rule) == ("event_timestamp", "window")
    assert "24 hours" in ei.value.reason


@pytest.mark.parametrize("value", [0, -1, -NOW])
def test_window_non_positive(value):
    with pytest.raises(FieldError) as ei:
        check_timestamp_window(value, NOW)
    assert ei.value.rule == "range"


@pytest.mark.parametrize("value", [NOW * 1000, (NOW - 3600) * 1000, (NOW - 80 * DAY) * 1000,
                                   NOW * 1_000_000])
def test_window_milliseconds_hint(value):
    with pytest.raises(FieldError) as ei:
        check_timestamp_window(value, NOW)
    assert ei.value.rule == "unit"
    assert "milliseconds" in ei.value.reason


def test_window_with_float_now():
    check_timestamp_window(NOW, NOW + 0.75)
    with pytest.raises(FieldError):
        check_timestamp_window(NOW - 90 * DAY - 1, NOW + 0.0)


# --------------------------------------------------------------------------- user section


@pytest.mark.parametrize("column", ["email", "phone"])
def test_hashed_wire_values(column):
    check = field(column).check
    check("0" * 64)
    check("f" * 64)
    assert rule_of(check, HEX64.upper()) == "pattern"
    assert rule_of(check, HEX64[:-1]) == "pattern"
    assert rule_of(check, HEX64 + "0") == "pattern"
    assert rule_of(check, "g" * 64) == "pattern"
    assert rule_of(check, "taro@example.com") == "pattern"
    assert rule_of(check, "+818012345678") == "pattern"


def test_line_uid():
    check = field("line_uid").check
    check(LINE_UID)
    assert rule_of(check, "U" + "0123456789ABCDEF" * 2) == "pattern"  # upper-case hex
    assert rule_of(check, "u" + "0123456789abcdef" * 2) == "pattern"
    assert rule_of(check, LINE_UID[:-1]) == "pattern"
    assert rule_of(check, LINE_UID + "0") == "pattern"
    assert rule_of(check, "0123456789abcdef" * 2) == "pattern"
    assert rule_of(check, "U" + "g" * 32) == "pattern"


def test_click_id():
    check = field("click_id").check
    for ok in ("a", "A-z_0", "x" * 500):
        check(ok)
    for bad in ("", "a b", "a.b", "a=b", "a/b", "ldtag_cl=abc"):
        assert rule_of(check, bad) == "pattern"


@pytest.mark.parametrize("column", ["browser_id", "ifa"])
def test_uuid_fields(column):
    check = field(column).check
    check(UUID_LOWER)
    check(UUID_LOWER.upper())
    check(str(uuid.uuid4()))
    check("00000000-0000-0000-0000-000000000000")
    for bad in (UUID_LOWER.replace("-", ""), "{" + UUID_LOWER + "}", UUID_LOWER[:-1],
                UUID_LOWER + "0", UUID_LOWER.replace("0", "g"), "urn:uuid:" + UUID_LOWER, ""):
        assert rule_of(check, bad) == "pattern"


def test_external_id():
    check = field("external_id").check
    check("a" * 512)
    check("abc_DEF-9")
    assert rule_of(check, "a" * 513) == "pattern"
    assert rule_of(check, "") == "pattern"
    assert rule_of(check, "a@b") == "pattern"
    assert rule_of(check, "undefined") == "undefined"


# --------------------------------------------------------------------------- web section


@pytest.mark.parametrize("value", ["http://a", "https://example.com/path?q=1#f",
                                   "https://" + "a" * 2040])
def test_url_valid(value):
    field("url").check(value)


@pytest.mark.parametrize("value, rule", [
    ("ftp://example.com/file", "pattern"),
    ("example.com", "pattern"),
    ("https://", "pattern"),
    ("//example.com", "pattern"),
    ("javascript:alert(1)", "pattern"),
    ("", "pattern"),
    ("https://" + "a" * 2041, "max_length"),
])
def test_url_invalid(value, rule):
    assert rule_of(field("url").check, value) == rule


def test_referrer_and_title_free_text():
    field("referrer").check("")
    field("referrer").check("not a url at all")
    field("title").check("ショップ | Shop")
    assert rule_of(field("referrer").check, "r" * 2049) == "max_length"
    assert rule_of(field("title").check, "t" * 1025) == "max_length"


def test_user_agent_any_string():
    field("user_agent").check("")
    field("user_agent").check("u" * 10_000)


@pytest.mark.parametrize("value", ["203.0.113.10", "0.0.0.0", "255.255.255.255", "2001:db8::1",
                                   "::1", "::", "::ffff:192.0.2.1",
                                   "2001:0db8:0000:0000:0000:0000:0000:0001"])
def test_ip_valid(value):
    field("ip_address").check(value)


@pytest.mark.parametrize("value", ["256.1.1.1", "1.2.3", "1.2.3.4.5", "example.com", "",
                                   "1.2.3.4/24", "2001:db8::g", "1.2.3.4:80", "01.2.3.4"])
def test_ip_invalid(value):
    assert rule_of(field("ip_address").check, value) == "format"


# --------------------------------------------------------------------------- custom keys

CUSTOM = {c.key: c.check for c in CUSTOM_KEYS}


@pytest.mark.parametrize("value", [0, 1, 1200, 2147483647, 0.0, 0.5, 1200.75, 2147483647.0])
def test_custom_value_valid(value):
    CUSTOM["value"](value)


@pytest.mark.parametrize("value, rule", [
    (-1, "range"), (-0.5, "range"), (2147483648, "range"), (2147483647.5, "range"),
    (float("nan"), "range"), (float("inf"), "range"),
    (True, "type"), (False, "type"), ("1200", "type"), (None, "type"), ([1], "type"),
])
def test_custom_value_invalid(value, rule):
    assert rule_of(CUSTOM["value"], value) == rule


def test_custom_currency():
    for ok in ("JPY", "USD", "TWD"):
        CUSTOM["currency"](ok)
    for bad in ("jpy", "Jpy", "JP", "JPYY", "¥", "", "JPY\n", "1PY"):
        assert rule_of(CUSTOM["currency"], bad) == "pattern"
    assert rule_of(CUSTOM["currency"], 392) == "type"


def test_custom_quantity():
    for ok in (0, 1, 2147483647):
        CUSTOM["quantity"](ok)
    for bad, rule in ((-1, "range"), (2147483648, "range"), (1.0, "type"), (1.5, "type"),
                      (True, "type"), ("2", "type")):
        assert rule_of(CUSTOM["quantity"], bad) == rule


@pytest.mark.parametrize("key, limit", [("item_ids", 100), ("keywords", 10)])
def test_custom_string_lists(key, limit):
    check = CUSTOM[key]
    check([])
    check(["a"] * limit)
    assert rule_of(check, ["a"] * (limit + 1)) == "max_items"
    assert rule_of(check, ["a", 1]) == "type"
    assert rule_of(check, ["a", None]) == "type"
    assert rule_of(check, "a") == "type"
    assert rule_of(check, ("a",)) == "type"


def test_custom_category():
    CUSTOM["category"]("c" * 300)
    CUSTOM["category"]("")
    assert rule_of(CUSTOM["category"], "c" * 301) == "max_length"
    assert rule_of(CUSTOM["category"], 5) == "type"


def test_custom_errors_name_the_key():
    with pytest.raises(FieldError) as ei:
        CUSTOM_BY_KEY["currency"].check("yen")
    assert ei.value.column == "custom_data.currency"


def test_custom_unknown_key_on_the_wire():
    ev = wire_event(custom={"value": 1, "revenue": 3})
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == ("custom.revenue", "unknown")


# --------------------------------------------------------------------------- cross rules


def ev_section(**kw: Any) -> dict[str, Any]:
    base = {"deduplication_key": "k1", "event_type": "conversion", "source_type": "web",
            "event_timestamp": NOW}
    base.update(kw)
    return base


def test_cross_no_identifier():
    with pytest.raises(FieldError) as ei:
        check_cross_rules(ev_section(), {}, NOW, True)
    assert (ei.value.column, ei.value.rule) == ("user", "identifier")


@pytest.mark.parametrize("key", [k for k in IDENTIFIER_KEYS if k != "line_uid"])
def test_cross_each_identifier_suffices(key):
    check_cross_rules(ev_section(), {key: VALID[key]}, NOW, False)


def test_cross_line_uid_needs_channel_id():
    with pytest.raises(FieldError) as ei:
        check_cross_rules(ev_section(), {"line_uid": LINE_UID}, NOW, False)
    assert (ei.value.column, ei.value.rule) == ("line_uid", "channel_id")
    check_cross_rules(ev_section(), {"line_uid": LINE_UID}, NOW, True)
    # still needed when another identifier is present too
    with pytest.raises(FieldError):
        check_cross_rules(ev_section(), {"line_uid": LINE_UID, "email": HEX64}, NOW, False)


def test_cross_checks_window():
    with pytest.raises(FieldError) as ei:
        check_cross_rules(ev_section(event_timestamp=NOW * 1000), {"email": HEX64}, NOW, False)
    assert ei.value.rule == "unit"


# --------------------------------------------------------------------------- check_wire_event


def wire_event(**sections: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event": ev_section(event_name="Purchase"),
        "user": {"email": HEX64},
    }
    ev.update(sections)
    return {k: v for k, v in ev.items() if v is not ...}


def full_wire_event() -> dict[str, Any]:
    ev: dict[str, Any] = {"event": {}, "user": {}, "web": {}}
    for f in FIELDS:
        ev[f.section][f.key] = VALID[f.column]
    ev["event"]["test_flag"] = False
    ev["custom"] = {"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1"],
                    "keywords": ["k"], "category": "shoes"}
    return ev


def test_wire_full_event_passes():
    check_wire_event(full_wire_event(), NOW, True)


def test_wire_minimal_event_passes():
    check_wire_event(wire_event(), NOW, False)


def test_wire_example_from_contract_passes():
    """An event shaped like LINE's documented example (every section, custom included)
    passes the wire check."""
    ev = {
        "event": {"deduplication_key": "abc", "event_type": "conversion", "event_name": "Purchase",
                  "source_type": "web", "event_timestamp": 1735689600, "test_flag": False},
        "user": {"email": HEX64, "browser_id": UUID_LOWER},
        "web": {"url": "https://example.com", "ip_address": "203.0.113.10"},
        "custom": {"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1"],
                   "keywords": ["k"], "category": "shoes"},
    }
    check_wire_event(ev, 1735689600, False)


@pytest.mark.parametrize("ev", [[], "x", None, 1, [{"event": {}}]])
def test_wire_not_an_object(ev):
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert ei.value.rule == "type"


@pytest.mark.parametrize("key", ["app", "custom_data", "events", "Event"])
def test_wire_unknown_top_level_key(key):
    ev = wire_event()
    ev[key] = {}
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == (key, "unknown")


@pytest.mark.parametrize("section", ["event", "user"])
def test_wire_missing_required_section(section):
    ev = wire_event()
    del ev[section]
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == (section, "required")


@pytest.mark.parametrize("section", ["event", "user", "web", "custom"])
@pytest.mark.parametrize("bad", [[], "x", None, 1])
def test_wire_section_not_object(section, bad):
    ev = wire_event()
    ev[section] = bad
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert ei.value.rule == "type"


@pytest.mark.parametrize("column", [c for c in F.REQUIRED_COLUMNS])
def test_wire_missing_required_field(column):
    ev = wire_event()
    del ev["event"][column]
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == (column, "required")


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.column)
def test_wire_null_rejected_everywhere(f):
    ev = full_wire_event()
    ev[f.section][f.key] = None
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, True)
    assert ei.value.rule == "null"


@pytest.mark.parametrize("key", [c.key for c in CUSTOM_KEYS] + ["test_flag"])
def test_wire_null_rejected_in_custom_and_test_flag(key):
    ev = full_wire_event()
    section = "event" if key == "test_flag" else "custom"
    ev[section][key] = None
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, True)
    assert ei.value.rule == "null"


@pytest.mark.parametrize("section, key", [("event", "event_id"), ("user", "mail"),
                                          ("web", "uri"), ("custom", "price"),
                                          ("user", "Email")])
def test_wire_unknown_key_in_section(section, key):
    ev = full_wire_event()
    ev[section][key] = "x"
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, True)
    assert (ei.value.column, ei.value.rule) == (f"{section}.{key}", "unknown")


@pytest.mark.parametrize("flag", [True, False])
def test_wire_test_flag_bool_ok(flag):
    ev = wire_event()
    ev["event"]["test_flag"] = flag
    check_wire_event(ev, NOW, False)


@pytest.mark.parametrize("flag", ["true", 1, 0, "false"])
def test_wire_test_flag_must_be_bool(flag):
    ev = wire_event()
    ev["event"]["test_flag"] = flag
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == ("test_flag", "type")


def test_wire_invalid_field_value():
    ev = wire_event()
    ev["event"]["event_type"] = "purchase"
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == ("event_type", "enum")


def test_wire_raw_email_rejected():
    ev = wire_event(user={"email": "taro@example.com"})
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert (ei.value.column, ei.value.rule) == ("email", "pattern")


def test_wire_cross_rules_applied():
    with pytest.raises(FieldError) as ei:
        check_wire_event(wire_event(user={}), NOW, False)
    assert ei.value.rule == "identifier"
    ev = wire_event(user={"line_uid": LINE_UID})
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert ei.value.rule == "channel_id"
    check_wire_event(ev, NOW, True)
    ev = wire_event()
    ev["event"]["event_timestamp"] = NOW - 91 * DAY
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert ei.value.rule == "window"


def test_wire_timestamp_in_ms():
    ev = wire_event()
    ev["event"]["event_timestamp"] = NOW * 1000
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, False)
    assert ei.value.rule == "unit"
    assert "milliseconds" in ei.value.reason


# --------------------------------------------------------------------------- PII safety

PII = "Taro.Yamada-PII-8012345678"


def _pii_cases():
    """(check, offending value) pairs for every field and custom key."""
    cases = []
    for f in FIELDS:
        if f.column == "event_timestamp":
            continue
        if f.column in LIMITS:
            cases.append((f.column, f.check, PII + "x" * LIMITS[f.column]))
        if f.column in ANCHORED:
            cases.append((f.column, f.check, PII + " !"))
    cases.append(("currency", CUSTOM["currency"], "PIIYEN"))
    cases.append(("category", CUSTOM["category"], PII * 30))
    cases.append(("value", CUSTOM["value"], 987654321987))
    cases.append(("quantity", CUSTOM["quantity"], -987654321))
    cases.append(("event_timestamp", F.timestamp_seconds, PII))
    cases.append(("window", lambda v: check_timestamp_window(v, NOW), 98765432109876))
    cases.append(("window-past", lambda v: check_timestamp_window(v, NOW), 987654))
    return cases


@pytest.mark.parametrize("name, check, value", _pii_cases(), ids=lambda x: x if isinstance(x, str) and len(x) < 40 else "")
def test_reason_never_contains_value(name, check, value):
    with pytest.raises(FieldError) as ei:
        check(value)
    text = str(value)
    assert text not in ei.value.reason
    assert text not in str(ei.value)
    assert PII not in ei.value.reason


def test_wire_reasons_never_contain_values():
    ev = full_wire_event()
    ev["user"]["email"] = "taro.yamada@example.com"
    ev["user"]["external_id"] = "taro yamada"
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, True)
    assert "taro" not in str(ei.value)
    ev = full_wire_event()
    ev["web"]["ip_address"] = "198.51.100.999"
    with pytest.raises(FieldError) as ei:
        check_wire_event(ev, NOW, True)
    assert "198.51" not in str(ei.value)
