"""Database URLs: the default, where it comes from, checking one, and the credentials inside it."""
from __future__ import annotations

import os
import re

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from connector.errors import ConfigError
from connector.masking import show_value

DEFAULT_DATABASE_URL = "duckdb:///:memory:"
DATABASE_URL_ENV = "CONNECTOR_DATABASE_URL"
# URL query parameters that carry credentials (trino: JWT), hidden like the password.
SECRET_QUERY_KEYS = ("access_token", "password", "token")
MAX_PORT = 65535

# SQLAlchemy's own reading of a URL (sqlalchemy.engine.url), so that what is checked and masked
# here is what SQLAlchemy would take for the port and the password, even in a URL it refuses.
_SA_URL = re.compile(
    r"""(?P<name>[\w+]+)://
        (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
        (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
        (?:/(?P<database>[^?]*))?
        (?:\?(?P<query>.*))?""", re.X | re.S)
_SECRET_PARAM = re.compile(r"(?<=[?&])(?:" + "|".join(SECRET_QUERY_KEYS) + r")=([^&]*)")
USAGE = "dialect+driver://user:password@host:port/database, e.g. trino://me@host:443/hive/web"


def database_url(given: str | None) -> str:
    """The URL to use: the given one, else $CONNECTOR_DATABASE_URL (when not empty), else the
    embedded DuckDB."""
    if given is not None:
        if not given.strip():
            raise ConfigError("--database: the URL is empty")
        return given
    return os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def _spans_of_secrets(url: str) -> list[tuple[int, int]]:
    spans = []
    m = _SA_URL.match(url)
    if m is not None and m["password"]:
        spans.append(m.span("password"))
    spans += [p.span(1) for p in _SECRET_PARAM.finditer(url) if p.group(1)]
    return spans


def url_secrets(url: str) -> list[str]:
    """Credential values inside a database URL, for the redactor (also from a URL SQLAlchemy
    refuses)."""
    found = [url[a:b] for a, b in _spans_of_secrets(url)]
    try:
        parsed = sa.engine.make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        return found
    found += [parsed.password] if parsed.password else []
    for key in SECRET_QUERY_KEYS:
        value = parsed.query.get(key)
        found.extend([value] if isinstance(value, str) else list(value or ()))
    return sorted({str(v) for v in found if v})


def safe_url(url: str) -> str:
    """The URL with its password and token parameters hidden, bounded, for messages."""
    shown = url
    for a, b in sorted(_spans_of_secrets(url), reverse=True):
        shown = shown[:a] + "***" + shown[b:]
    return show_value(shown, 200)


def parse_database_url(url: str) -> sa.engine.URL:
    """The URL, or ConfigError naming what is wrong (never the password)."""
    m = _SA_URL.match(url)
    if m is None:
        raise ConfigError(f"--database: {safe_url(url)} is not a database URL ({USAGE})")
    port = m["port"]
    if port is not None and not (port.isascii() and port.isdigit()
                                 and 1 <= int(port) <= MAX_PORT):
        raise ConfigError(f"--database: the port must be a number from 1 to {MAX_PORT} "
                          f"in {safe_url(url)}")
    try:
        return sa.engine.make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(f"--database: {safe_url(url)} is not a database URL ({USAGE}): "
                          f"{type(exc).__name__}") from None
