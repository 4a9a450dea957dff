"""The text forms of an output configuration: JSON, `@path`, and a saved connection's name."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.connections import NAME_RE
from connector.errors import ConfigError


def parse_result(text: str, option: str = "--result") -> dict[str, Any]:
    """JSON text, or `@path` to a file holding it (`option` names the flag in messages)."""
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{option}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{option}: {path} is not UTF-8 text") from None
        source = str(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a token.
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    return value


def connection_name(text: str) -> str | None:
    """The saved connection `--result NAME` names, or None when the text is JSON or @path.

    As `td query --result` accepts a saved result's name in place of a URL, a bare name picks
    a saved connection."""
    return text if NAME_RE.match(text) else None
