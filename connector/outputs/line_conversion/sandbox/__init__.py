"""A local emulator of the LINE Conversion API, for tests, demos and retry drills.

    from connector.outputs.line_conversion.sandbox import run_sandbox
    with run_sandbox(tags={"my-tag": "my-token"}) as sb:
        ...  # POST to sb.events_url("my-tag"); read sb.events(), sb.stats(), sb.requests()

Command line: `python -m connector sandbox --help`.
"""
from __future__ import annotations

from .app import create_app
from .faults import FaultSpecError, parse_fault, parse_faults
from .server import Sandbox, run_sandbox
from .state import DEFAULT_MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, SandboxState

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_EVENTS_PER_REQUEST",
    "FaultSpecError",
    "Sandbox",
    "SandboxState",
    "create_app",
    "parse_fault",
    "parse_faults",
    "run_sandbox",
]
