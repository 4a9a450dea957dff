"""Checking a configuration against its output's JSON Schema, with one-line messages that name
the parameter (and, for a merged configuration, where it came from) and never show a secret."""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

import jsonschema

from connector.errors import ConfigError
from connector.masking import hide_userinfo, show_value

MAX_UNKNOWN_LISTED = 5


def secret_keys(schema: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(k for k, p in schema.get("properties", {}).items() if p.get("x-secret"))


def _range_text(prop: Mapping[str, Any]) -> str:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    return f"at most {hi}"


def _echo(value: Any) -> str:
    """A value as a message may show it: bounded, and without credentials in a URL."""
    return show_value(hide_userinfo(value if isinstance(value, str) else repr(value)))


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any],
              origins: Mapping[str, str]) -> str:
    """One line per error that names the parameter (and the layer it came from), never echoes
    a secret value and never echoes any value whole."""
    props = schema.get("properties", {})
    key = _echo(error.path[0]) if error.path else None
    v = error.validator

    def named(k: str) -> str:
        return f"{_echo(k)} (from {origins[k]})" if k in origins else _echo(k)

    if v == "additionalProperties":
        known = set(props)
        unknown = sorted(k for k in error.instance if k not in known)
        listed = ", ".join(repr(_echo(k)) + (f" (from {origins[k]})" if k in origins else "")
                           for k in unknown[:MAX_UNKNOWN_LISTED])
        if len(unknown) > MAX_UNKNOWN_LISTED:
            listed += f" and {len(unknown) - MAX_UNKNOWN_LISTED} more"
        return ("unknown parameter" + ("s " if len(unknown) > 1 else " ") + listed
                + f" (known: {', '.join(sorted(known))})")
    if v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"missing required parameter {', '.join(repr(k) for k in missing)}"
    if key is None:
        return f"must be {error.validator_value!r} ({v})" if v == "type" else f"invalid ({v})"
    prop = props.get(error.path[0], {})
    where = named(str(error.path[0]))
    if v in ("minimum", "maximum"):
        return f"{where}: must be {_range_text(prop)} (got {_echo(error.instance)})"
    if v == "type":
        return f"{where}: must be of type {prop.get('type')}"
    if v == "const":
        return f"{where}: must be {prop['const']!r}"
    if v == "minLength" and error.instance == "":
        return f"{where}: must not be empty"
    if prop.get("x-secret"):
        return f"{where}: invalid value ({v})"
    if v == "pattern":
        return f"{where}: {_echo(error.instance)!r} does not match {prop['pattern']}"
    if v in ("minLength", "maxLength"):
        return (f"{where}: must be {'at least' if v == 'minLength' else 'at most'} "
                f"{error.validator_value} characters long (got {len(error.instance):,})")
    return f"{where}: invalid value {_echo(error.instance)!r} ({v})"


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    return False


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def problems(config: Mapping[str, Any], schema: Mapping[str, Any], *,
             origins: Mapping[str, str] | None = None, partial: bool = False) -> list[str]:
    """Every problem with `config`, one line each. `partial`: a saved connection, which the
    run's settings complete, so a missing required parameter is not a problem yet."""
    origins = origins or {}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.path), e.validator))
    # NaN passes every range check (each comparison is false) and infinity passes one side:
    # neither is a number an output can use (they come from Python callers; parse_result
    # already refuses them in JSON).
    messages = [f"{_echo(k)}: must be a finite number" for k, v in config.items()
                if _not_finite(v)]
    messages += [_describe(e, schema, origins) for e in errors
                 if not (partial and e.validator == "required") and not _not_finite(e.instance)]
    # Schema patterns end in `$`, which Python's re lets match before a final newline; no
    # parameter may hold a control character (it would end up in a URL path or a header).
    messages += [f"{_echo(k)}: must not contain control characters (such as a newline)"
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
