"""What can go wrong with a workflow file, as opposed to a task of it."""
from __future__ import annotations

from connector.errors import ConfigError


class WorkflowError(ConfigError):
    """The workflow file (or a file it includes or calls) cannot run as written: found before
    any task runs (exit 2)."""


class TaskFailed(Exception):
    """A task failed; the message is what its output line and the run folder show."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason
