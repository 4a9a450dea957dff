"""The LINE Conversion API field table, declared once as data.

Everything else derives from this module: the exporter's validation and payload building, the
sandbox's validation of received events, the README's column table and the unit tests. A rule is
changed here and nowhere else.

A field has two faces:
- the *column* face: the flat query column (Treasure Data's names) and how its raw value is
  normalised into the wire value (hashing email and phone, converting timestamps);
- the *wire* face: where the value sits in the event (`user.email`) and the check the wire value
  must pass. The sandbox applies only the wire face, the exporter applies both.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from connector.plugins.base import InvalidRecord

# Window LINE accepts for event_timestamp, relative to arrival (line-capi.md, unverified there).
TIMESTAMP_PAST_SECONDS = 90 * 24 * 3600
TIMESTAMP_FUTURE_SECONDS = 24 * 3600
INT32_MAX = 2147483647
# The literal LINE reads as "not sent" in these fields.
UNDEFINED_LITERAL = "undefined"

UUID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
SHA256_PATTERN = r"^[0-9a-f]{64}\Z"


class FieldError(InvalidRecord):
    """One broken LINE field rule. `reason` never contains the offending value: it may be PII."""


# --------------------------------------------------------------------------- wire checks
# A check takes a wire value and returns None or raises FieldError. They are built once per
# field, with compiled regexes, so the per-event cost is one call.

Check = Callable[[Any], None]


@dataclass(frozen=True)
class StringRule:
    """The parameters of a string check, for code that derives other forms of it (the fast path,
    the engine's SQL) instead of calling it."""
    pattern: str | None
    max_len: int | None
    enum: tuple[str, ...] | None
    reject_undefined: bool
    format_check: Callable[[str], bool] | None


@dataclass(frozen=True)
class IntRule:
    lo: int
    hi: int
    allow_float: bool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_check(
    name: str,
    pattern: str | None = None,
    max_len: int | None = None,
    enum: tuple[str, ...] | None = None,
    pattern_text: str | None = None,
    reject_undefined: bool = False,
    format_check: Callable[[str], bool] | None = None,
    format_name: str | None = None,
) -> Check:
    regex = re.compile(pattern) if pattern else None

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise FieldError(name, "type", f"must be a string, got {type(value).__name__}")
        if enum is not None and value not in enum:
            raise FieldError(name, "enum", f"must be one of {', '.join(repr(e) for e in enum)}")
        if max_len is not None and len(value) > max_len:
            raise FieldError(name, "max_length", f"longer than {max_len} characters ({len(value)})")
        if reject_undefined and value == UNDEFINED_LITERAL:
            raise FieldError(name, "undefined", "the literal 'undefined' means 'not sent' to LINE")
        if regex is not None and regex.match(value) is None:
            raise FieldError(name, "pattern", f"does not match {pattern_text or pattern}")
        if format_check is not None and not format_check(value):
            raise FieldError(name, "format", f"is not a valid {format_name}")

    check.rule = StringRule(pattern, max_len, enum, reject_undefined, format_check)  # type: ignore[attr-defined]
    return check


# Sufficient (not necessary) shapes of an address `_is_ip` accepts, for derived fast paths:
# a dotted quad without leading zeros, and the RFC 4291 text forms of IPv6 without an embedded
# IPv4 part or a zone. Anything else is decided by `_is_ip` itself.
IPV4_PLAIN_PATTERN = (r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                      r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_H = "[0-9a-fA-F]{1,4}"
IPV6_PLAIN_PATTERN = "|".join((
    f"(?:{_H}:){{7}}{_H}",
    f"(?:{_H}:){{1,7}}:",
    *(f"(?:{_H}:){{1,{7 - k}}}(?::{_H}){{1,{k}}}" for k in range(1, 7)),
    f":(?:(?::{_H}){{1,7}}|:)",
))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _int_range_check(name: str, lo: int, hi: int, allow_float: bool = False) -> Check:
    def check(value: Any) -> None:
        ok_type = _is_int(value) or (allow_float and isinstance(value, float))
        if not ok_type:
            kind = "a number" if allow_float else "an integer"
            raise FieldError(name, "type", f"must be {kind}, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise FieldError(name, "range", f"must be between {lo} and {hi}")

    check.rule = IntRule(lo, hi, allow_float)  # type: ignore[attr-defined]
    return check


def _bool_check(name: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise FieldError(name, "type", f"must be a boolean, got {type(value).__name__}")

    return check


def _string_list_check(name: str, max_items: int) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, list):
            raise FieldError(name, "type", f"must be a list of strings, got {type(value).__name__}")
        if len(value) > max_items:
            raise FieldError(name, "max_items", f"holds more than {max_items} items ({len(value)})")
        for item in value:
            if not isinstance(item, str):
                raise FieldError(name, "type", "must hold only strings")

    return check


# --------------------------------------------------------------------------- normalisers
# A normaliser turns one raw column value (any Python type a DB-API driver returns) into the
# wire value, or raises FieldError. Hashing lives in hashing.py; the plugin injects it.

Normaliser = Callable[[Any], Any]


def to_text(name: str) -> Normaliser:
    """Strings pass; integers and UUIDs from typed columns become their text form."""

    def norm(value: Any) -> str:
        if isinstance(value, str):
            return value
        if _is_int(value) or isinstance(value, uuid.UUID):
            return str(value)
        raise FieldError(name, "type", f"must be a string, got {type(value).__name__}")

    norm.is_to_text = True  # type: ignore[attr-defined]  # derived paths treat it as "text as is"
    return norm


def timestamp_seconds(value: Any) -> int:
    """UNIX seconds from an integer, an integral number, a digit string or a TIMESTAMP value.

    A naive datetime is read as UTC, the convention of Trino's `timestamp` and DuckDB's
    `TIMESTAMP`: the engine stores no zone for it.
    """
    if _is_int(value):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:  # int64 has 19 digits
            return int(text)
    raise FieldError(
        "event_timestamp", "type",
        f"must be UNIX seconds or a TIMESTAMP, got {type(value).__name__}",
    )


def check_timestamp_window(value: int, now: float) -> None:
    """LINE's acceptance window, with a hint for the commonest mistake (milliseconds)."""
    if value <= 0:
        raise FieldError("event_timestamp", "range", "must be a positive number of seconds")
    if value > now + TIMESTAMP_FUTURE_SECONDS:
        if value > 10**11:
            raise FieldError(
                "event_timestamp", "unit",
                "looks like milliseconds; LINE expects UNIX seconds",
            )
        raise FieldError("event_timestamp", "window", "is more than 24 hours in the future")
    if value < now - TIMESTAMP_PAST_SECONDS:
        raise FieldError("event_timestamp", "window", "is more than 90 days in the past")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Field:
    column: str  # flat query column, Treasure Data's name
    section: str  # event | user | web
    key: str  # key inside the section
    description: str
    validation: str  # human text for docs
    check: Check
    required: bool = False
    hashed: bool = False  # raw values are normalised and SHA-256 hashed by the exporter
    identifier: bool = False  # counts as a user identifier (LINE needs at least one)
    column_type: str = "string"
    normalise: Normaliser | None = None  # None: to_text(column)
    sensitive: bool = True  # mask values in samples; only codes and times are shown plainly

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


def _f(column: str, section: str, description: str, validation: str, check: Check, **kw: Any) -> Field:
    return Field(column=column, section=section, key=column, description=description,
                 validation=validation, check=check, **kw)


FIELDS: tuple[Field, ...] = (
    _f("deduplication_key", "event", "A unique, deterministic key per event. LINE drops a second "
       "event with the same event_name and key within 30 days, across the LINE Tag and this API.",
       "`^[0-9a-zA-Z_-]{1,256}$`, not `undefined`",
       _string_check("deduplication_key", r"^[0-9a-zA-Z_-]{1,256}\Z", reject_undefined=True,
                     pattern_text="^[0-9a-zA-Z_-]{1,256}$"),
       required=True),
    _f("event_type", "event", "The event type.", "`page_view` or `conversion`",
       _string_check("event_type", enum=("page_view", "conversion")), required=True,
       sensitive=False),
    _f("event_name", "event", "The conversion name: `Conversion` measures the default conversion, "
       "any other name a custom conversion.", "`^[A-Za-z0-9_-]{1,20}$`",
       _string_check("event_name", r"^[A-Za-z0-9_-]{1,20}\Z", pattern_text="^[A-Za-z0-9_-]{1,20}$"),
       sensitive=False),
    _f("source_type", "event", "Where the event occurred.", "only `web`",
       _string_check("source_type", enum=("web",)), required=True, sensitive=False),
    _f("event_timestamp", "event", "When the event occurred, in UNIX seconds. A TIMESTAMP column "
       "is converted (a naive one is read as UTC).",
       "positive; from 90 days ago to 24 hours ahead",
       _int_range_check("event_timestamp", 1, 2**63 - 1), required=True,
       column_type="long or timestamp", normalise=timestamp_seconds, sensitive=False),
    _f("email", "user", "The user's email address, raw or SHA-256 hashed. Raw addresses are "
       "trimmed, lower-cased and hashed.", "raw address or `^[0-9a-f]{64}$`",
       _string_check("email", SHA256_PATTERN, pattern_text="^[0-9a-f]{64}$"), hashed=True, identifier=True),
    _f("phone", "user", "The user's phone number, raw or SHA-256 hashed. Raw numbers are "
       "normalised to E.164 and hashed.", "E.164 (`+818012345678`), national with "
       "`default_phone_region`, or `^[0-9a-f]{64}$`",
       _string_check("phone", SHA256_PATTERN, pattern_text="^[0-9a-f]{64}$"), hashed=True, identifier=True),
    _f("line_uid", "user", "The LINE user ID. Needs `line_channel_id`.", "`^U[0-9a-f]{32}$`",
       _string_check("line_uid", r"^U[0-9a-f]{32}\Z", pattern_text="^U[0-9a-f]{32}$"),
       identifier=True),
    _f("click_id", "user", "The `ldtag_cl` URL parameter of a LINE Ads click. Sent as is.",
       "`^[a-zA-Z0-9_-]+$`",
       _string_check("click_id", r"^[a-zA-Z0-9_-]+\Z", pattern_text="^[a-zA-Z0-9_-]+$"),
       identifier=True),
    _f("browser_id", "user", "The LINE Tag first-party cookie `__lt__cid`. Sent as is.", "UUID",
       _string_check("browser_id", UUID_PATTERN.replace("$", r"\Z"), pattern_text="a UUID"),
       identifier=True),
    _f("ifa", "user", "The IDFA or AAID of the device. Sent as is.", "UUID",
       _string_check("ifa", UUID_PATTERN.replace("$", r"\Z"), pattern_text="a UUID"),
       identifier=True),
    _f("external_id", "user", "Your own user ID, in the same format as your LINE Tag sends it.",
       "`^[0-9a-zA-Z_-]{1,512}$`, not `undefined`",
       _string_check("external_id", r"^[0-9a-zA-Z_-]{1,512}\Z", reject_undefined=True,
                     pattern_text="^[0-9a-zA-Z_-]{1,512}$"),
       identifier=True),
    _f("url", "web", "The page URL when the event occurred.", "`^https?://.+`, at most 2048 characters",
       _string_check("url", r"^https?://.+", max_len=2048, pattern_text="^https?://.+")),
    _f("referrer", "web", "The referrer URL.", "at most 2048 characters",
       _string_check("referrer", max_len=2048)),
    _f("title", "web", "The page title.", "at most 1024 characters",
       _string_check("title", max_len=1024)),
    _f("user_agent", "web", "The browser's user agent.", "a string",
       _string_check("user_agent")),
    _f("ip_address", "web", "The end user's IP address.", "IPv4 or IPv6",
       _string_check("ip_address", format_check=_is_ip, format_name="IPv4 or IPv6 address")),
)

# The `custom` object, filled from the JSON column `custom_data`, checked key by key.
CUSTOM_COLUMN = "custom_data"
CUSTOM_SECTION = "custom"


@dataclass(frozen=True)
class CustomKey:
    key: str
    validation: str
    check: Check


CUSTOM_KEYS: tuple[CustomKey, ...] = (
    CustomKey("value", f"number, 0..{INT32_MAX}",
              _int_range_check("custom_data.value", 0, INT32_MAX, allow_float=True)),
    CustomKey("currency", "`^[A-Z]{3}$`",
              _string_check("custom_data.currency", r"^[A-Z]{3}\Z", pattern_text="^[A-Z]{3}$")),
    CustomKey("quantity", f"integer, 0..{INT32_MAX}",
              _int_range_check("custom_data.quantity", 0, INT32_MAX)),
    CustomKey("item_ids", "at most 100 strings", _string_list_check("custom_data.item_ids", 100)),
    CustomKey("keywords", "at most 10 strings", _string_list_check("custom_data.keywords", 10)),
    CustomKey("category", "at most 300 characters",
              _string_check("custom_data.category", max_len=300)),
)

BY_COLUMN: Mapping[str, Field] = {f.column: f for f in FIELDS}
CUSTOM_BY_KEY: Mapping[str, CustomKey] = {c.key: c for c in CUSTOM_KEYS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS if f.required)
VISIBLE_COLUMNS: frozenset[str] = frozenset(f.column for f in FIELDS if not f.sensitive)
KNOWN_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS) + (CUSTOM_COLUMN,)
IDENTIFIER_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.identifier)
SECTIONS: tuple[str, ...] = ("event", "user", "web", CUSTOM_SECTION)
REQUIRED_SECTIONS: tuple[str, ...] = ("event", "user")
WIRE_FIELDS: Mapping[str, Mapping[str, Check]] = {
    **{s: {f.key: f.check for f in FIELDS if f.section == s} for s in ("event", "user", "web")},
    CUSTOM_SECTION: {c.key: c.check for c in CUSTOM_KEYS},
}
# event.test_flag exists on the wire but has no column: the `test_flag` parameter sets it.
WIRE_FIELDS["event"]["test_flag"] = _bool_check("test_flag")  # type: ignore[index]


def check_cross_rules(event: Mapping[str, Any], user: Mapping[str, Any], now: float,
                      channel_id_present: bool) -> None:
    """Rules that span fields; shared by the exporter and the sandbox."""
    check_timestamp_window(event["event_timestamp"], now)
    if not any(k in user for k in IDENTIFIER_KEYS):
        raise FieldError(
            "user", "identifier",
            "no user identifier (" + ", ".join(IDENTIFIER_KEYS) + "); LINE would drop the event",
        )
    if "line_uid" in user and not channel_id_present:
        raise FieldError("line_uid", "channel_id",
                         "needs line_channel_id (the X-Line-ChannelID header)")


def check_wire_event(ev: Any, now: float, channel_id_present: bool) -> None:
    """Validate one event exactly as it is on the wire. Used by the sandbox (and by tests)."""
    if not isinstance(ev, dict):
        raise FieldError("event", "type", "each event must be a JSON object")
    for section in ev:
        if section not in WIRE_FIELDS:
            raise FieldError(section, "unknown", f"unknown top-level key {section!r}")
    for section in REQUIRED_SECTIONS:
        if section not in ev:
            raise FieldError(section, "required", f"the {section!r} object is required")
    for section, obj in ev.items():
        if not isinstance(obj, dict):
            raise FieldError(section, "type", f"{section!r} must be a JSON object")
        checks = WIRE_FIELDS[section]
        for key, value in obj.items():
            check = checks.get(key)
            if check is None:
                raise FieldError(f"{section}.{key}", "unknown", f"unknown key in {section!r}")
            if value is None:
                raise FieldError(key, "null", "null is not allowed; leave the field out")
            check(value)
    event = ev["event"]
    for f in FIELDS:
        if f.required and f.key not in event:
            raise FieldError(f.column, "required", "is required")
    check_cross_rules(event, ev["user"], now, channel_id_present)


def columns_markdown() -> str:
    """The column table of the README, from FIELDS and CUSTOM_KEYS."""
    rows = ["| Column | Type | Required | Hashed | Sent as | Validation | Description |",
            "|---|---|---|---|---|---|---|"]
    for f in FIELDS:
        rows.append(f"| `{f.column}` | {f.column_type} | {'yes' if f.required else 'no'} | "
                    f"{'yes, if raw' if f.hashed else 'no'} | `{f.path}` | {f.validation} | "
                    f"{f.description} |")
    keys = "; ".join(f"`{c.key}`: {c.validation}" for c in CUSTOM_KEYS)
    rows.append(f"| `{CUSTOM_COLUMN}` | JSON object (string, JSON, MAP, STRUCT or ROW) | no | no | "
                f"`{CUSTOM_SECTION}` | only these keys: {keys} | Custom data for standard events "
                "such as Purchase. |")
    return "\n".join(rows)
