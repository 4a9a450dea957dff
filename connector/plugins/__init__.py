"""Registry of output plugins: the `connector.outputs` entry-point group.

A new output type ships as its own package that declares an entry point in that group; the runtime
never names a plugin.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from connector.errors import ConfigError

from .base import Batch, BatchOutcome, InvalidRecord, OutputPlugin, RecordEncoder, Rejection, Sink

ENTRY_POINT_GROUP = "connector.outputs"

__all__ = ["Batch", "BatchOutcome", "InvalidRecord", "OutputPlugin", "RecordEncoder", "Rejection", "Sink",
           "available_outputs", "load_output", "ENTRY_POINT_GROUP"]


def available_outputs() -> dict[str, type[OutputPlugin]]:
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_output(type_name: object) -> type[OutputPlugin]:
    if not isinstance(type_name, str) or not type_name:
        raise ConfigError("--result: the \"type\" parameter is required (for example \"line_conversion\")")
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == type_name]
    if not matches:
        known = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))) or "none"
        raise ConfigError(f"--result: unknown output type {type_name!r} (registered: {known})")
    return matches[0].load()
