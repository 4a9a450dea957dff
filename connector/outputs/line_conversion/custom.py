"""The `custom_data` column: one JSON object (a JSON string, or the engine's JSON, MAP, STRUCT or
ROW value) checked key by key into the event's `custom` object."""
from __future__ import annotations

import datetime as _dt
import decimal
from typing import Any

import orjson

from connector.masking import is_code_like

from .fields import CUSTOM_BY_KEY, CUSTOM_COLUMN
from .rules import FieldError


def plain(value: Any) -> Any:
    """JSON-ready form of an engine value inside custom_data (DECIMAL, MAP, STRUCT, ROW...)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        names = getattr(value, "_names", None)  # trino's NamedRowTuple: a ROW value
        if names:
            return {n: plain(v) for n, v in zip(names, value)}
        return [plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value


def parse_custom(value: Any) -> dict[str, Any]:
    """custom_data as a checked dict (raises FieldError naming the key and rule)."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise FieldError(CUSTOM_COLUMN, "json", "is not valid JSON") from None
    else:
        value = plain(value)
        # DuckDB returns a MAP as {"key": [...], "value": [...]} in some versions.
        if isinstance(value, dict) and set(value) == {"key", "value"} \
                and isinstance(value["key"], list) and isinstance(value["value"], list):
            if not all(isinstance(k, str) for k in value["key"]):
                raise FieldError(CUSTOM_COLUMN, "type", "a MAP must have text keys")
            value = dict(zip(value["key"], value["value"]))
    if not isinstance(value, dict):
        raise FieldError(CUSTOM_COLUMN, "type", "must be a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = CUSTOM_BY_KEY.get(key)
        if spec is None:
            # Named only when it looks like a key: an email used as a key is personal data.
            shown = repr(key) if is_code_like(key) else "a key"
            raise FieldError(CUSTOM_COLUMN, "unknown_key",
                             f"has {shown} that is not one of: {', '.join(CUSTOM_BY_KEY)}")
        if item is None:
            continue
        item = plain(item)
        try:
            spec.check(item)
        except FieldError as err:  # with the value at the key: the report shows it, or masks it
            raise FieldError(err.column, err.rule, err.reason, value=item) from None
        out[key] = item
    return out
