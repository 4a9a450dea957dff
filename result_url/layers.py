"""A saved connection and the run's settings, layered: schema defaults < connection < settings.

The connection gives the output type; settings may repeat it but never change it. Values are
resolved (`${NAME}`, `${secret:KEY}`, references) only after the merge, so a setting can
replace a connection's reference without that reference ever being read.

This module also reads `--set KEY=VALUE` text by the schema's types and checks a connection
when it is saved, as far as it can be checked without the settings of a run.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

from connector.connections import Connection, Reference
from connector.errors import ConfigError

from .validate import problems

SETTINGS = "result settings"
_HAS_REF = re.compile(r"\$\{(?:secret:[^}]*|[A-Za-z_][A-Za-z0-9_]*)\}")


def origin(connection: Connection) -> str:
    return f"connection {connection.name!r}"


def merge(connection: Connection, settings: Mapping[str, Any]
          ) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged configuration (references unresolved) and, per key, the layer it came from."""
    given = settings.get("type", connection.type)
    if given != connection.type:
        raise ConfigError(f"{SETTINGS}: \"type\" cannot change the output type of connection "
                          f"{connection.name!r} ({connection.type})")
    config = connection.as_config()
    origins = {k: origin(connection) for k in config if k != "type"}
    for key, value in settings.items():
        if key != "type":
            config[key] = value
            origins[key] = SETTINGS
    return config, origins


def typed_value(schema: Mapping[str, Any], key: str, text: str) -> Any:
    """`--set KEY=TEXT`: the value in the parameter's schema type (`max_records=1500` is an
    integer, `test_flag=true` a boolean)."""
    prop = schema.get("properties", {}).get(key, {})
    kind = prop.get("type")
    shown = "" if prop.get("x-secret") else f" (got {text!r})"
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}: must be an integer{shown}") from None
    if kind == "number":
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)  # type: ignore[assignment]
            except ValueError:
                raise ConfigError(f"{key}: must be a number{shown}") from None
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number{shown}")
        return value
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"{key}: must be true or false{shown}")
        return text.lower() == "true"
    if kind in ("array", "object"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: must be JSON ({kind}){shown}") from None
    return text


def is_unresolved(value: Any) -> bool:
    """A reference, or text with `${...}` in it: its value is known only at run time."""
    return isinstance(value, Reference) or (isinstance(value, str) and bool(_HAS_REF.search(value)))


def connection_problems(connection: Connection, schema: Mapping[str, Any]) -> list[str]:
    """What is wrong with a connection before any run: unknown parameters, literal values out
    of range or of the wrong type, references on parameters that are not text. Required
    parameters may still come from a run's settings."""
    props = schema.get("properties", {})
    unknown = sorted(k for k in connection.values if k not in props)
    messages = []
    if unknown:
        messages.append("unknown parameter" + ("s " if len(unknown) > 1 else " ")
                        + ", ".join(map(repr, unknown)) + f" (known: {', '.join(sorted(props))})")
    literal: dict[str, Any] = {"type": connection.type}
    for key, value in connection.values.items():
        if key not in props:
            continue
        if is_unresolved(value):
            kind = props[key].get("type")
            if kind not in (None, "string"):
                messages.append(f"{key}: a reference or ${{...}} gives text, but {key} must be "
                                f"of type {kind}")
        else:
            literal[key] = value
    messages += problems(literal, schema, partial=True)
    return messages
