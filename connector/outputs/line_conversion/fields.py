"""The LINE Conversion API field table, declared once as data.

Everything else derives from this module: the exporter's validation and its three encoders
(reference, generated fast path, engine SQL), the sandbox's validation of received events, the
docs' column table and the unit tests. A rule is changed here and nowhere else.

A field has two faces:
- the *column* face: the flat query column (Treasure Data's names), what kind of value it holds
  (`value`) and whether raw values are normalised and hashed (`hashing`);
- the *wire* face: where the value sits in the event (`user.email`) and the rule the wire value
  must pass. The sandbox applies only the wire face, the exporter applies both.

The envelope, the shape every event has on the wire, is declared here too.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import math
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping

from .wire import CHANNEL_HEADER
from .rules import (
    BoolRule,
    Check,
    FieldError,
    NumberRule,
    Pattern,
    Rule,
    TextListRule,
    TextRule,
    IP_FORMAT,
    compile_check,
    describe,
    is_int,
)

# Window LINE accepts for event_timestamp, relative to arrival (unverified in LINE's reference).
TIMESTAMP_PAST_SECONDS = 90 * 24 * 3600
TIMESTAMP_FUTURE_SECONDS = 24 * 3600
INT32_MAX = 2147483647

UUID = Pattern("[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", name="UUID")
SHA256 = Pattern("[0-9a-f]{64}")

# --------------------------------------------------------------------------- the envelope
# Objects filled from columns, in wire order; then the custom object, from one JSON column.
SECTIONS: tuple[str, ...] = ("event", "user", "web")
REQUIRED_SECTIONS: tuple[str, ...] = ("event", "user")  # always sent; the others only when set
CUSTOM_SECTION = "custom"
CUSTOM_COLUMN = "custom_data"
# Set by the `test_flag` parameter (no column), after the event's own keys.
TEST_FLAG_SECTION, TEST_FLAG_KEY = "event", "test_flag"

# --------------------------------------------------------------------------- value kinds
TEXT = "text"  # strings pass; integers and UUIDs from typed columns become their text form
TIMESTAMP = "timestamp"  # UNIX seconds, from integers, digit strings or TIMESTAMP values
# Hashing kinds (hashing.py): raw values are normalised and SHA-256 hashed, digests pass.
HASH_EMAIL = "email"
HASH_PHONE = "phone"
HASHING_DOCS = {
    HASH_EMAIL: "raw address or {digest}",
    HASH_PHONE: "E.164 (`+818012345678`), national with `default_phone_region`, or {digest}",
}


def to_text(name: str) -> Callable[[Any], str]:
    def norm(value: Any) -> str:
        if isinstance(value, str):
            return value
        if is_int(value) or isinstance(value, uuid.UUID):
            return str(value)
        raise FieldError(name, "type", f"must be a string, got {type(value).__name__}")

    return norm


def timestamp_seconds(value: Any) -> int:
    """UNIX seconds from an integer, an integral number, a digit string or a TIMESTAMP value.

    A naive datetime is read as UTC, the convention of Trino's `timestamp` and DuckDB's
    `TIMESTAMP`: the engine stores no zone for it.
    """
    if is_int(value):
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


def check_timestamp_window(value: float, now: float) -> None:
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
    column: str  # flat query column, Treasure Data's name; also the key inside its section
    section: str  # event | user | web
    description: str
    rule: Rule  # what the wire value must be
    required: bool = False
    value: str = TEXT  # the kind of column value: TEXT or TIMESTAMP
    hashing: str | None = None  # HASH_EMAIL / HASH_PHONE: raw values are normalised and hashed
    identifier: bool = False  # counts as a user identifier (LINE needs at least one)
    needs_channel: bool = False  # only with line_channel_id (sent as a header)
    column_type: str = "string"
    sensitive: bool = True  # mask values in samples; only codes and times are shown plainly

    @property
    def key(self) -> str:
        return self.column

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def hashed(self) -> bool:
        return self.hashing is not None

    @cached_property
    def check(self) -> Check:
        return compile_check(self.column, self.rule)

    @property
    def validation(self) -> str:
        """The docs' text, derived from the rule."""
        if self.hashing is not None:
            return HASHING_DOCS[self.hashing].format(digest=describe(self.rule))
        if self.value == TIMESTAMP:
            return (f"positive; from {TIMESTAMP_PAST_SECONDS // 86400} days ago to "
                    f"{TIMESTAMP_FUTURE_SECONDS // 3600} hours ahead")
        return describe(self.rule)


FIELDS: tuple[Field, ...] = (
    Field("deduplication_key", "event", "A unique, deterministic key per event. LINE drops a "
          "second event with the same event_name and key within 30 days, across the LINE Tag and "
          "this API.",
          TextRule(Pattern("[0-9a-zA-Z_-]{1,256}"), reject_undefined=True), required=True),
    Field("event_type", "event", "The event type.",
          TextRule(enum=("page_view", "conversion")), required=True, sensitive=False),
    Field("event_name", "event", "The conversion name: `Conversion` measures the default "
          "conversion, any other name a custom conversion.",
          TextRule(Pattern("[A-Za-z0-9_-]{1,20}")), sensitive=False),
    Field("source_type", "event", "Where the event occurred.",
          TextRule(enum=("web",)), required=True, sensitive=False),
    # On the wire a number: LINE's own server-side tag sends milliseconds / 1000, a fraction,
    # and LINE accepts it. The exporter's normaliser (timestamp_seconds) gives whole seconds.
    Field("event_timestamp", "event", "When the event occurred, in UNIX seconds. A TIMESTAMP "
          "column is converted (a naive one is read as UTC).",
          NumberRule(1, 2**63 - 1, allow_float=True), required=True, value=TIMESTAMP,
          column_type="long or timestamp", sensitive=False),
    Field("email", "user", "The user's email address, raw or SHA-256 hashed. Raw addresses are "
          "trimmed, lower-cased and hashed.",
          TextRule(SHA256), hashing=HASH_EMAIL, identifier=True),
    Field("phone", "user", "The user's phone number, raw or SHA-256 hashed. Raw numbers are "
          "normalised to E.164 and hashed.",
          TextRule(SHA256), hashing=HASH_PHONE, identifier=True),
    Field("line_uid", "user", "The LINE user ID. Needs `line_channel_id`.",
          TextRule(Pattern("U[0-9a-f]{32}")), identifier=True, needs_channel=True),
    Field("click_id", "user", "The `ldtag_cl` URL parameter of a LINE Ads click. Sent as is.",
          TextRule(Pattern("[a-zA-Z0-9_-]+")), identifier=True),
    Field("browser_id", "user", "The LINE Tag first-party cookie `__lt__cid`. Sent as is.",
          TextRule(UUID), identifier=True),
    Field("ifa", "user", "The IDFA or AAID of the device. Sent as is.",
          TextRule(UUID), identifier=True),
    Field("external_id", "user", "Your own user ID, in the same format as your LINE Tag sends it.",
          TextRule(Pattern("[0-9a-zA-Z_-]{1,512}"), reject_undefined=True), identifier=True),
    Field("url", "web", "The page URL when the event occurred.",
          TextRule(Pattern("https?://.+", full=False), max_length=2048)),
    Field("referrer", "web", "The referrer URL.", TextRule(max_length=2048)),
    Field("title", "web", "The page title.", TextRule(max_length=1024)),
    Field("user_agent", "web", "The browser's user agent.", TextRule()),
    Field("ip_address", "web", "The end user's IP address.", TextRule(format=IP_FORMAT)),
)


@dataclass(frozen=True)
class CustomKey:
    """One key of the `custom` object, filled from the JSON column `custom_data`."""

    key: str
    rule: Rule
    sensitive: bool = True  # mask values in samples; amounts and codes are shown plainly

    @property
    def path(self) -> str:
        return f"{CUSTOM_COLUMN}.{self.key}"

    @cached_property
    def check(self) -> Check:
        return compile_check(self.path, self.rule)

    @property
    def validation(self) -> str:
        return describe(self.rule)


CUSTOM_KEYS: tuple[CustomKey, ...] = (
    CustomKey("value", NumberRule(0, INT32_MAX, allow_float=True), sensitive=False),
    CustomKey("currency", TextRule(Pattern("[A-Z]{3}")), sensitive=False),
    CustomKey("quantity", NumberRule(0, INT32_MAX), sensitive=False),
    CustomKey("item_ids", TextListRule(100)),
    CustomKey("keywords", TextListRule(10)),
    CustomKey("category", TextRule(max_length=300)),
)

BY_COLUMN: Mapping[str, Field] = {f.column: f for f in FIELDS}
CUSTOM_BY_KEY: Mapping[str, CustomKey] = {c.key: c for c in CUSTOM_KEYS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS if f.required)
# Columns, and paths into custom_data, whose values samples show unmasked.
VISIBLE_COLUMNS: frozenset[str] = frozenset(
    [f.column for f in FIELDS if not f.sensitive] + [c.path for c in CUSTOM_KEYS if not c.sensitive])
KNOWN_COLUMNS: tuple[str, ...] = tuple(f.column for f in FIELDS) + (CUSTOM_COLUMN,)
IDENTIFIER_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.identifier)
CHANNEL_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.needs_channel)
WIRE_FIELDS: Mapping[str, Mapping[str, Check]] = {
    **{s: {f.key: f.check for f in FIELDS if f.section == s} for s in SECTIONS},
    CUSTOM_SECTION: {c.key: c.check for c in CUSTOM_KEYS},
}
# event.test_flag exists on the wire but has no column: the `test_flag` parameter sets it.
WIRE_FIELDS[TEST_FLAG_SECTION][TEST_FLAG_KEY] = compile_check(TEST_FLAG_KEY, BoolRule())  # type: ignore[index]


IDENTIFIER_RULE = "identifier"


def has_identifier(user: Mapping[str, Any]) -> bool:
    return any(k in user for k in IDENTIFIER_KEYS)


def check_cross_rules(event: Mapping[str, Any], user: Mapping[str, Any], now: float,
                      channel_id_present: bool, require_identifier: bool = True) -> None:
    """Rules that span fields; shared by the exporter and the sandbox. LINE accepts an event
    without a user identifier (and then drops it): the exporter never sends one
    (`require_identifier`), the sandbox accepts it as LINE does."""
    check_timestamp_window(event["event_timestamp"], now)
    if require_identifier and not has_identifier(user):
        raise FieldError(
            "user", IDENTIFIER_RULE,
            "no user identifier (" + ", ".join(IDENTIFIER_KEYS) + "); LINE would drop the event",
        )
    if not channel_id_present:
        for f in CHANNEL_FIELDS:
            if f.key in user:
                raise FieldError(f.column, "channel_id",
                                 f"needs line_channel_id (the {CHANNEL_HEADER} header)")


def check_wire_event(ev: Any, now: float, channel_id_present: bool,
                     require_identifier: bool = True) -> None:
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
    check_cross_rules(event, ev["user"], now, channel_id_present, require_identifier)
