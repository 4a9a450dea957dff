"""The outputs: the plugin contract and the registry of installed outputs.

An output type ships as a package that declares an entry point in the `connector.outputs` group
(and, for commands of its own such as an emulator, in `connector.commands`). The runtime never
names an output.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Sequence

from connector.errors import ConfigError
from connector.masking import show_value

from .base import Emulator, InvalidRecord, OutputPlugin, Pushdown, RecordEncoder

ENTRY_POINT_GROUP = "connector.outputs"
COMMANDS_GROUP = "connector.commands"

__all__ = ["COMMANDS_GROUP", "ENTRY_POINT_GROUP", "Emulator", "InvalidRecord", "OutputPlugin",
           "Pushdown", "RecordEncoder", "available_outputs", "load_command", "command_names",
           "load_output"]


def available_outputs() -> dict[str, type[OutputPlugin]]:
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_output(type_name: object, where: str = "--result") -> type[OutputPlugin]:
    """The output class registered as `type_name`; `where` names the type's origin in errors."""
    registered = entry_points(group=ENTRY_POINT_GROUP)
    known = ", ".join(sorted(ep.name for ep in registered)) or "none"
    if not isinstance(type_name, str) or not type_name:
        raise ConfigError(f"{where}: the \"type\" parameter is required (registered: {known})")
    matches = [ep for ep in registered if ep.name == type_name]
    if not matches:
        raise ConfigError(f"{where}: unknown output type {show_value(type_name)!r} "
                          f"(registered: {known})")
    return matches[0].load()


def command_names() -> list[str]:
    """Commands that installed outputs add to the command line (`connector NAME ...`)."""
    return sorted(ep.name for ep in entry_points(group=COMMANDS_GROUP))


def load_command(name: str) -> Callable[[Sequence[str]], int] | None:
    matches = [ep for ep in entry_points(group=COMMANDS_GROUP) if ep.name == name]
    return matches[0].load() if matches else None
