"""Exceptions that name conditions; the CLI maps them to exit statuses."""
from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the runtime reports without a traceback."""

    exit_code = 1


class ConfigError(ConnectorError):
    """Bad usage or configuration, found before any query runs (exit 2)."""

    exit_code = 2


class SourceError(ConnectorError):
    """The query could not be run or read (exit 1)."""


class SendError(ConnectorError):
    """Sending failed beyond retries, or the API refused the credentials (exit 1)."""
