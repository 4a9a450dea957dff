"""The text forms of an output configuration: JSON, `@path`, and a saved connection's name."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from connector.connections import NAME_RE
from connector.errors import ConfigError
from connector.masking import show_value

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


def parse_result(text: str, option: str = "--result") -> dict[str, Any]:
    """JSON text, or `@path` to a file holding it (`option` names the flag in messages).
    Strict JSON: NaN and Infinity, which Python's parser accepts, are refused, and so are
    numbers too large for a float; size and nesting are bounded."""
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        source = show_value(str(path), 256)
        try:
            if path.stat().st_size > MAX_RESULT_BYTES:
                raise ConfigError(f"{option}: {source} is larger than {MAX_RESULT_BYTES:,} bytes")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{option}: cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{option}: {source} is not UTF-8 text") from None
        except ValueError:  # a NUL character in the path
            raise ConfigError(f"{option}: cannot read {source}: not a valid path") from None
    if len(text) > MAX_RESULT_BYTES:
        raise ConfigError(f"{source}: longer than {MAX_RESULT_BYTES:,} characters")
    if _nesting_depth(text) > MAX_NESTING:
        raise ConfigError(f"{source}: nested more than {MAX_NESTING} levels deep")
    try:
        value = json.loads(text, parse_constant=_not_json_constant(source),
                           parse_float=_finite_float(source), parse_int=_bounded_int(source))
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a token.
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from None
    except RecursionError:  # nesting the depth count did not see (never expected)
        raise ConfigError(f"{source}: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    return value


def connection_name(text: str) -> str | None:
    """The saved connection `--result NAME` names, or None when the text is JSON or @path.

    As `td query --result` accepts a saved result's name in place of a URL, a bare name picks
    a saved connection."""
    return text if NAME_RE.match(text) else None
