"""Checking a configuration against its output's JSON Schema, with one-line messages that name
the parameter (and, for a merged configuration, where it came from) and never show a secret."""
from __future__ import annotations

import re
from typing import Any, Mapping

import jsonschema

from connector.errors import ConfigError


def secret_keys(schema: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(k for k, p in schema.get("properties", {}).items() if p.get("x-secret"))


def _range_text(prop: Mapping[str, Any]) -> str:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    return f"at most {hi}"


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any],
              origins: Mapping[str, str]) -> str:
    """One line per error that names the parameter and never echoes a secret value."""
    props = schema.get("properties", {})
    key = str(error.path[0]) if error.path else None
    v = error.validator

    def named(k: str) -> str:
        return f"{k} (from {origins[k]})" if k in origins else k

    if v == "additionalProperties":
        known = set(props)
        unknown = sorted(k for k in error.instance if k not in known)
        return "unknown parameter" + ("s " if len(unknown) > 1 else " ") + ", ".join(
            repr(k) + (f" (from {origins[k]})" if k in origins else "") for k in unknown
        ) + f" (known: {', '.join(sorted(known))})"
    if v == "required":
        return f"missing required parameter {error.message.split(' ')[0]}"
    if key is None:
        return error.message
    prop = props.get(key, {})
    where = named(key)
    if v in ("minimum", "maximum"):
        return f"{where}: must be {_range_text(prop)} (got {error.instance})"
    if v == "type":
        return f"{where}: must be of type {prop.get('type')}"
    if v == "const":
        return f"{where}: must be {prop['const']!r}"
    if prop.get("x-secret"):
        return f"{where}: invalid value ({v})"
    if v == "pattern":
        return f"{where}: {error.instance!r} does not match {prop['pattern']}"
    return f"{where}: {error.message}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def problems(config: Mapping[str, Any], schema: Mapping[str, Any], *,
             origins: Mapping[str, str] | None = None, partial: bool = False) -> list[str]:
    """Every problem with `config`, one line each. `partial`: a saved connection, which the
    run's settings complete, so a missing required parameter is not a problem yet."""
    origins = origins or {}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.path), e.validator))
    messages = [_describe(e, schema, origins) for e in errors
                if not (partial and e.validator == "required")]
    # Schema patterns end in `$`, which Python's re lets match before a final newline; no
    # parameter may hold a control character (it would end up in a URL path or a header).
    messages += [f"{k}: must not contain control characters (such as a newline)"
                 for k, v in config.items() if isinstance(v, str) and _CONTROL.search(v)]
    return messages


def validate(config: Mapping[str, Any], schema: Mapping[str, Any], *,
             label: str = "invalid --result", origins: Mapping[str, str] | None = None) -> None:
    messages = problems(config, schema, origins=origins)
    if messages:
        raise ConfigError(f"{label}: " + "; ".join(messages))


def apply_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: p["default"] for k, p in schema.get("properties", {}).items() if "default" in p}
    out.update(config)
    return out
