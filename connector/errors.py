"""Exceptions that name conditions. Each carries the exit status and the report `reason` it
stands for, so callers never derive either from a class name."""
from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the runtime reports without a traceback."""

    exit_code = 1
    reason = "error"


class ConfigError(ConnectorError):
    """Bad usage or configuration, found before anything is sent (exit 2)."""

    exit_code = 2
    reason = "config_error"


class SourceError(ConnectorError):
    """The query could not be run or read (exit 1)."""

    reason = "source_error"


class InvalidRecordsError(ConnectorError):
    """Strict mode (`ignore_invalid_records` false) found invalid rows: nothing was sent."""

    reason = "invalid_records"


class Cancelled(ConnectorError):
    """The run was cancelled through its CancelToken (Ctrl-C, SIGTERM, a scheduler's stop)."""

    reason = "interrupted"
