"""Database URLs: the default, where it comes from, and the credentials inside it."""
from __future__ import annotations

import os

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

DEFAULT_DATABASE_URL = "duckdb:///:memory:"
DATABASE_URL_ENV = "CONNECTOR_DATABASE_URL"
# URL query parameters that carry credentials (trino: JWT), hidden like the password.
SECRET_QUERY_KEYS = ("access_token", "password", "token")


def database_url(given: str | None) -> str:
    return given or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def url_secrets(url: str) -> list[str]:
    """Credential values inside a database URL, for the redactor."""
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError:
        return []
    found = [parsed.password] if parsed.password else []
    for key in SECRET_QUERY_KEYS:
        value = parsed.query.get(key)
        found.extend([value] if isinstance(value, str) else list(value or ()))
    return [str(v) for v in found if v]


def safe_url(url: str) -> str:
    """The URL with its password and token parameters hidden, for messages."""
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError:
        return "<unparseable database URL>"
    hidden = {k: "***" for k in SECRET_QUERY_KEYS if k in parsed.query}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)
