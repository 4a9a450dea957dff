"""Parameters as digdag passes them between tasks: deep merges, and what tasks store."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping


def deep_merge(dest: dict[str, Any], src: Mapping[str, Any]) -> dict[str, Any]:
    """`src` merged into `dest` (nested mappings merge, anything else replaces); returns dest."""
    for key, value in src.items():
        current = dest.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_merge(current, value)
        else:
            dest[key] = copy.deepcopy(value)
    return dest


def merge_default(dest: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` filled in where `dest` has no value (nested mappings too); returns dest."""
    for key, value in defaults.items():
        current = dest.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merge_default(current, value)
        elif key not in dest:
            dest[key] = copy.deepcopy(value)
    return dest


@dataclass
class Stored:
    """What tasks stored (digdag's store parameters), visible to the tasks after them: values
    to merge, and keys to reset first (a new td.last_results replaces the old one)."""

    updates: list[tuple[tuple[tuple[str, ...], ...], dict[str, Any]]] = field(default_factory=list)

    def add(self, values: Mapping[str, Any], resets: tuple[tuple[str, ...], ...] = ()) -> None:
        self.updates.append((resets, copy.deepcopy(dict(values))))

    def extend(self, other: "Stored") -> None:
        self.updates.extend(other.updates)

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        for resets, values in self.updates:
            for path in resets:
                node: Any = params
                for part in path[:-1]:
                    node = node.get(part) if isinstance(node, dict) else None
                if isinstance(node, dict):
                    node.pop(path[-1], None)
            deep_merge(params, values)
        return params
