"""Row → LINE event, through a plan compiled once per job from the field table.

The plan is a list of (column index, normaliser, check, section, key) so that the per-row work is a
tight loop with no name look-ups, no dict-of-columns and no regex compilation.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import time
from typing import Any, Callable, Mapping, Sequence

import orjson

from connector.plugins.base import RecordEncoder

from .fields import (
    CUSTOM_BY_KEY,
    CUSTOM_COLUMN,
    CUSTOM_SECTION,
    FIELDS,
    FieldError,
    check_cross_rules,
    to_text,
)
from .hashing import hash_email, make_phone_hasher

_SECTION_SLOTS = {"event": 0, "user": 1, "web": 2}


def _plain(value: Any) -> Any:
    """JSON-ready form of an engine value inside custom_data (DECIMAL, MAP, STRUCT, ROW...)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        names = getattr(value, "_names", None)  # trino's NamedRowTuple: a ROW value
        if names:
            return {n: _plain(v) for n, v in zip(names, value)}
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value


def parse_custom(value: Any) -> dict[str, Any]:
    """custom_data as a dict: a JSON string, or the engine's JSON, MAP, STRUCT or ROW value."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise FieldError(CUSTOM_COLUMN, "json", "is not valid JSON") from None
    else:
        value = _plain(value)
    # DuckDB returns a MAP as {"key": [...], "value": [...]} in some versions.
    if isinstance(value, dict) and set(value) == {"key", "value"} and isinstance(value["key"], list):
        value = dict(zip(value["key"], value["value"]))
    if not isinstance(value, dict):
        raise FieldError(CUSTOM_COLUMN, "type", "must be a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = CUSTOM_BY_KEY.get(key)
        if spec is None:
            raise FieldError(
                f"{CUSTOM_COLUMN}.{key}", "unknown",
                f"unknown key (allowed: {', '.join(CUSTOM_BY_KEY)})",
            )
        if item is None:
            continue
        item = _plain(item)
        spec.check(item)
        out[key] = item
    return out


class LineEventEncoder(RecordEncoder):
    """Builds, validates and encodes one event per row; raises FieldError on the first broken rule."""

    def __init__(self, columns: Sequence[str], *, channel_id_present: bool, test_flag: bool,
                 default_phone_region: str | None, clock: Callable[[], float] = time.time) -> None:
        index = {c.lower(): i for i, c in enumerate(columns)}
        special: Mapping[str, Callable[[Any], Any]] = {
            "email": hash_email,
            "phone": make_phone_hasher(default_phone_region),
        }
        plan = []
        for f in FIELDS:
            i = index.get(f.column)
            if i is None:
                continue
            norm = special.get(f.column) or f.normalise or to_text(f.column)
            plan.append((i, f.column, norm, f.check, _SECTION_SLOTS[f.section], f.key, f.required))
        self._plan = tuple(plan)
        self._custom_index = index.get(CUSTOM_COLUMN)
        self._channel = channel_id_present
        self._test_flag = test_flag
        self._clock = clock
        # Refreshed per batch by the runtime via refresh_clock(); reading the clock per row
        # would cost more than the window check itself.
        self._now = clock()

    def refresh_clock(self) -> None:
        self._now = self._clock()

    def build(self, row: Sequence[Any]) -> dict[str, Any]:
        sections: list[dict[str, Any]] = [{}, {}, {}]
        for i, column, norm, check, slot, key, required in self._plan:
            value = row[i]
            if value is None or (value == "" and not required):
                if required:
                    raise FieldError(column, "required", "is required but NULL")
                continue
            value = norm(value)
            check(value)
            sections[slot][key] = value
        # Required columns are all in the plan (checked before the query ran), so a missing
        # required value has already raised above.
        event, user, web = sections
        check_cross_rules(event, user, self._now, self._channel)
        if self._test_flag:
            event["test_flag"] = True
        out: dict[str, Any] = {"event": event, "user": user}
        if web:
            out["web"] = web
        if self._custom_index is not None:
            raw = row[self._custom_index]
            if raw is not None and raw != "":
                custom = parse_custom(raw)
                if custom:
                    out[CUSTOM_SECTION] = custom
        return out

    def encode(self, row: Sequence[Any]) -> bytes:
        return orjson.dumps(self.build(row))
