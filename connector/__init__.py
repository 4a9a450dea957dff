"""connector: export query results to ad platforms' server-side conversion APIs.

The public API is one function and its value types:

    from connector import CancelToken, ExportSpec, run_export
    report = run_export(ExportSpec(query=..., output={...}), cancel=CancelToken())

See docs/ARCHITECTURE.md for the stages behind it. Names are imported on first use, so that
`import connector.<module>` stays light.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ExportObserver": "connector.api", "ExportSpec": "connector.api",
    "SessionContext": "connector.session", "run_export": "connector.api",
    "CancelToken": "connector.cancel",
    "Cancelled": "connector.errors", "ConfigError": "connector.errors",
    "ConnectorError": "connector.errors", "SourceError": "connector.errors",
    "JobReport": "connector.report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connector' has no attribute {name!r}")
    return getattr(import_module(module), name)
