"""Parse and validate every form of the output configuration (`--result`).

A result is a JSON object (or `@path` to a JSON file). String values written `${NAME}` are read
from the environment, so tokens never need to be on a command line. The object is checked against
the output's JSON Schema (each output ships its own; the LINE output's is
`schemas/line_conversion.json`) before anything runs, and defaults are filled in from the same
schema.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema

from connector.errors import ConfigError
from connector.masking import Redactor
from connector.outputs import OutputPlugin, load_output

__all__ = ["parse_result", "expand_env", "validate", "secret_keys", "apply_defaults",
           "build_output"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_result(text: str) -> dict[str, Any]:
    """JSON text, or `@path` to a file holding it."""
    source = "--result"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--result: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--result: {path} is not UTF-8 text") from None
        source = str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a token.
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    return value


def expand_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Replace `${NAME}` in string values by the environment variable NAME."""
    env = os.environ if env is None else env

    def sub(key: str, value: str) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"{key}: environment variable {name} is not set")
            return env[name]

        return _ENV_REF.sub(repl, value)

    return {k: sub(k, v) if isinstance(v, str) else v for k, v in config.items()}


def secret_keys(schema: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(k for k, p in schema.get("properties", {}).items() if p.get("x-secret"))


def _range_text(prop: Mapping[str, Any]) -> str:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    return f"at most {hi}"


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    """One line per error that names the parameter and never echoes a secret value."""
    props = schema.get("properties", {})
    key = str(error.path[0]) if error.path else None
    v = error.validator
    if v == "additionalProperties":
        known = set(props)
        unknown = sorted(k for k in error.instance if k not in known)
        return "unknown parameter" + ("s " if len(unknown) > 1 else " ") + ", ".join(
            repr(k) for k in unknown) + f" (known: {', '.join(sorted(known))})"
    if v == "required":
        return f"missing required parameter {error.message.split(' ')[0]}"
    if key is None:
        return error.message
    prop = props.get(key, {})
    if v in ("minimum", "maximum"):
        return f"{key}: must be {_range_text(prop)} (got {error.instance})"
    if v == "type":
        return f"{key}: must be of type {prop.get('type')}"
    if v == "const":
        return f"{key}: must be {prop['const']!r}"
    if prop.get("x-secret"):
        return f"{key}: invalid value ({v})"
    if v == "pattern":
        return f"{key}: {error.instance!r} does not match {prop['pattern']}"
    return f"{key}: {error.message}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.path), e.validator))
    messages = [_describe(e, schema) for e in errors]
    # Schema patterns end in `$`, which Python's re lets match before a final newline; no
    # parameter may hold a control character (it would end up in a URL path or a header).
    messages += [f"{k}: must not contain control characters (such as a newline)"
                 for k, v in config.items() if isinstance(v, str) and _CONTROL.search(v)]
    if messages:
        raise ConfigError("invalid --result: " + "; ".join(messages))


def apply_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: p["default"] for k, p in schema.get("properties", {}).items() if "default" in p}
    out.update(config)
    return out


def build_output(raw: Mapping[str, Any], redactor: Redactor) -> OutputPlugin:
    """A parsed result object → the validated, defaulted output (ConfigError on any problem).
    Its secrets are added to `redactor`, literal ones before `${NAME}` expansion can fail."""
    plugin_cls = load_output(raw.get("type"))
    schema = plugin_cls.schema()
    secrets = secret_keys(schema)
    for key in secrets:
        if isinstance(raw.get(key), str):
            redactor.add(raw[key])
    config = expand_env(raw)
    for key in secrets:
        if isinstance(config.get(key), str):
            redactor.add(config[key])
    validate(config, schema)
    return plugin_cls(apply_defaults(config, schema))
