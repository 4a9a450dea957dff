"""Parse and validate every form of the output configuration (`--result`).

A result is a JSON object (or `@path` to a JSON file). String values written `${NAME}` are read
from the environment, so tokens never need to be on a command line. The object is checked against
the output's JSON Schema (each output ships its own; the LINE output's is
`schemas/line_conversion.json`) before anything runs, and defaults are filled in from the same
schema.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema

from connector.errors import ConfigError
from connector.masking import Redactor, hide_userinfo, show_value
from connector.outputs import OutputPlugin, load_output

__all__ = ["parse_result", "expand_env", "validate", "secret_keys", "apply_defaults",
           "build_output"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# An output configuration is a flat object of settings: bounds far above any real one, so that
# hostile input ends in a clear message rather than in the parser's recursion limit, Python's
# digit limit for integers, or megabytes of echo.
MAX_RESULT_BYTES = 1 << 20
MAX_NESTING = 32
MAX_NUMBER_DIGITS = 64
# Strings (skipped whole) and the brackets that nest, for measuring the depth before parsing.
_NESTING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for m in _NESTING_TOKEN.finditer(text):
        token = m.group(0)
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _not_json_constant(source: str) -> Any:
    def reject(name: str) -> Any:
        raise ConfigError(f"{source}: {name} is not a JSON number (JSON has no NaN or Infinity)")

    return reject


def _finite_float(source: str) -> Any:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ConfigError(f"{source}: the number {show_value(text, 32)} is too large")
        return value

    return parse


def _bounded_int(source: str) -> Any:
    def parse(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > MAX_NUMBER_DIGITS:
            raise ConfigError(f"{source}: a number with {digits} digits is too large "
                              f"(at most {MAX_NUMBER_DIGITS} digits)")
        return int(text)

    return parse


def parse_result(text: str) -> dict[str, Any]:
    """JSON text, or `@path` to a file holding it. Strict JSON: NaN and Infinity, which Python's
    parser accepts, are refused, and so are numbers too large for a float."""
    source = "--result"
    if text.startswith("@"):
        path = Path(text[1:])
        source = show_value(str(path), 256)
        try:
            if path.stat().st_size > MAX_RESULT_BYTES:
                raise ConfigError(f"--result: {source} is larger than {MAX_RESULT_BYTES:,} bytes")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--result: cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--result: {source} is not UTF-8 text") from None
        except ValueError:  # a NUL character in the path
            raise ConfigError(f"--result: cannot read {source}: not a valid path") from None
    if len(text) > MAX_RESULT_BYTES:
        raise ConfigError(f"{source}: longer than {MAX_RESULT_BYTES:,} characters")
    if _nesting_depth(text) > MAX_NESTING:
        raise ConfigError(f"{source}: nested more than {MAX_NESTING} levels deep")
    try:
        value = json.loads(text, parse_constant=_not_json_constant(source),
                           parse_float=_finite_float(source), parse_int=_bounded_int(source))
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a token.
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:  # nesting the depth count did not see (never expected)
        raise ConfigError(f"{source}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    return value


def check_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    """Every `${NAME}` in string values names a variable that is set and not empty; else one
    ConfigError that lists every variable that is not, with the settings that read it."""
    env = os.environ if env is None else env
    unset: dict[str, list[str]] = {}
    empty: dict[str, list[str]] = {}
    for key, value in config.items():
        if not isinstance(value, str):
            continue
        for name in _ENV_REF.findall(value):
            if name not in env:
                unset.setdefault(name, []).append(str(key))
            elif env[name] == "":
                empty.setdefault(name, []).append(str(key))
    problems = []
    for found, what in ((unset, "not set"), (empty, "set but empty")):
        if found:
            names = ", ".join(f"{name} (for {', '.join(keys)})" for name, keys in found.items())
            problems.append(f"environment variable{'s' if len(found) > 1 else ''} {names} "
                            f"{'are' if len(found) > 1 else 'is'} {what}")
    if problems:
        raise ConfigError("; ".join(problems))


def expand_env(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Replace `${NAME}` in string values by the environment variable NAME (see check_env)."""
    env = os.environ if env is None else env
    check_env(config, env)
    return {k: _ENV_REF.sub(lambda m: env[m.group(1)], v) if isinstance(v, str) else v
            for k, v in config.items()}


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


MAX_UNKNOWN_LISTED = 5


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    """One line per error that names the parameter, never echoes a secret value and never
    echoes any value whole."""
    props = schema.get("properties", {})
    key = _echo(error.path[0]) if error.path else None
    v = error.validator
    if v == "additionalProperties":
        known = set(props)
        unknown = sorted(k for k in error.instance if k not in known)
        listed = ", ".join(repr(_echo(k)) for k in unknown[:MAX_UNKNOWN_LISTED])
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
    if v in ("minimum", "maximum"):
        return f"{key}: must be {_range_text(prop)} (got {_echo(error.instance)})"
    if v == "type":
        return f"{key}: must be of type {prop.get('type')}"
    if v == "const":
        return f"{key}: must be {prop['const']!r}"
    if prop.get("x-secret"):
        if v == "minLength" and error.instance == "":
            return f"{key}: must not be empty"
        return f"{key}: invalid value ({v})"
    if v == "pattern":
        return f"{key}: {_echo(error.instance)!r} does not match {prop['pattern']}"
    if v == "minLength" and error.instance == "":
        return f"{key}: must not be empty"
    if v in ("minLength", "maxLength"):
        return f"{key}: must be {'at least' if v == 'minLength' else 'at most'} " \
               f"{error.validator_value} characters long (got {len(error.instance):,})"
    return f"{key}: invalid value {_echo(error.instance)!r} ({v})"


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    return False


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.path), e.validator))
    # NaN passes every range check (each comparison is false) and infinity passes one side:
    # neither is a number an output can use (they come from Python callers; parse_result
    # already refuses them in JSON).
    messages = [f"{_echo(k)}: must be a finite number" for k, v in config.items() if _not_finite(v)]
    messages += [_describe(e, schema) for e in errors if not _not_finite(e.instance)]
    # Schema patterns end in `$`, which Python's re lets match before a final newline; no
    # parameter may hold a control character (it would end up in a URL path or a header).
    messages += [f"{_echo(k)}: must not contain control characters (such as a newline)"
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
