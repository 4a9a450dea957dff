"""Reading .dig files (and the YAML files they include) as digdag reads them.

digdag's YAML rules differ from PyYAML's defaults, and a workflow written for Treasure Workflow
depends on them:
- only `true`/`false` (any first-letter case) are booleans: `yes`, `on`, `off` stay strings;
- `10:00:00` is a string, not a number of seconds, and `0.5` (a float starting with 0) a string;
- dates and times (`2016-01-01`) stay strings;
- a key written twice in one mapping is an error;
- `!include : 'file'` as a key deep-merges that file's mapping into the mapping it sits in, and a
  file name that leaves the including file's folder is refused.
"""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

from .errors import WorkflowError

INCLUDE_TAG = "!include"
_INCLUDE_MARK = "!include:"

# digdag's implicit types (its YamlTagResolver): booleans only true/false, integers without the
# sexagesimal form, floats that do not start with 0, no timestamps.
_BOOL = re.compile(r"^(?:[Tt]rue|[Ff]alse)$")
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                  r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^([-+]?(\.[0-9]+|[1-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?"
                    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
             "tag:yaml.org,2002:timestamp"}


class DigdagLoader(yaml.SafeLoader):
    """PyYAML's safe loader with digdag's implicit types, duplicate keys refused and `!include`
    kept as a marker for `load_file` to resolve."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != INCLUDE_TAG:
                seen[key_node.value] = seen.get(key_node.value, 0) + 1
        duplicated = [k for k, n in seen.items() if n > 1]
        if duplicated:
            mark = node.start_mark
            raise ConstructorError(None, None, f"Duplicated keys: {duplicated}", mark)
        return super().construct_mapping(node, deep=deep)


def _build_resolvers() -> dict[Any, list[tuple[str, Any]]]:
    table: dict[Any, list[tuple[str, Any]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in _REPLACED]
        if kept:
            table[first] = kept
    # Integers before floats, as digdag's resolver tries them (PyYAML's order is the reverse).
    for tag, rx, firsts in (("tag:yaml.org,2002:bool", _BOOL, "TtFf"),
                            ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
                            ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789.")):
        for ch in firsts:
            table.setdefault(ch, []).append((tag, rx))
    return table


DigdagLoader.yaml_implicit_resolvers = _build_resolvers()


def _include_marker(loader: DigdagLoader, node: Any) -> str:
    return _INCLUDE_MARK + uuid.uuid4().hex


DigdagLoader.add_constructor(INCLUDE_TAG, _include_marker)


def _where(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def parse_yaml(text: str, name: str) -> dict[str, Any]:
    """One document's mapping, with digdag's types (includes left as markers)."""
    try:
        data = yaml.load(text, Loader=DigdagLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise WorkflowError(f"{name}: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{name}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WorkflowError(f"{name}: expected a mapping of keys to values, got "
                            f"{type(data).__name__}")
    return _normalize(data, name)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return str(key)


def _normalize(value: Any, name: str) -> Any:
    """Keys as strings and values as JSON can hold them, as digdag's config tree has them."""
    if isinstance(value, dict):
        return {_key(k): _normalize(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v, name) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise WorkflowError(f"{name}: values of type {type(value).__name__} are not supported "
                        "(write them as strings)")


def merge_into(dest: dict[str, Any], src: dict[str, Any]) -> None:
    """digdag's deep merge: nested mappings merge, anything else is replaced."""
    for key, value in src.items():
        current = dest.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merge_into(current, value)
        else:
            dest[key] = value


class Includes:
    """Resolves `!include` markers relative to the file that holds them."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.stack: list[Path] = []

    def load(self, path: Path) -> dict[str, Any]:
        path = path.absolute()
        if path in self.stack:
            chain = " -> ".join(_where(p, self.root) for p in [*self.stack, path])
            raise WorkflowError(f"!include: a file includes itself: {chain}")
        name = _where(path, self.root)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise WorkflowError(f"{name}: is a directory, not a file") from None
        except UnicodeDecodeError:
            raise WorkflowError(f"{name}: not UTF-8 text") from None
        except OSError as exc:
            raise WorkflowError(f"{name}: cannot read: {exc.strerror}") from None
        self.stack.append(path)
        try:
            return self._object(parse_yaml(text, name), path.parent, name)
        finally:
            self.stack.pop()

    def _object(self, obj: dict[str, Any], folder: Path, name: str) -> dict[str, Any]:
        built: dict[str, Any] = {}
        for key, value in obj.items():
            if key.startswith(_INCLUDE_MARK):
                target = value if isinstance(value, str) else json.dumps(value)
                for k, v in self._include(target, folder, name).items():
                    current = built.get(k)
                    if isinstance(current, dict) and isinstance(v, dict):
                        merge_into(current, v)
                    else:
                        built[k] = v
            else:
                built[key] = self._value(value, folder, name)
        return built

    def _value(self, value: Any, folder: Path, name: str) -> Any:
        if isinstance(value, dict):
            return self._object(value, folder, name)
        if isinstance(value, list):
            return [self._value(v, folder, name) for v in value]
        if isinstance(value, str) and value.startswith(_INCLUDE_MARK):
            raise WorkflowError(f"{name}: write !include as a key, `!include : 'FILE'`, in the "
                                "mapping the file's keys merge into")
        return value

    def _include(self, target: str, folder: Path, name: str) -> dict[str, Any]:
        base = Path(folder).absolute()
        resolved = Path(_normpath(base / target))
        if not target or Path(target).is_absolute() or not _within(resolved, base):
            raise WorkflowError(f"{name}: !include: file name must not include ..: {target}")
        return self.load(resolved)


def _normpath(path: Path) -> str:
    import os.path
    return os.path.normpath(str(path))


def _within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def load_file(path: Path, root: Path | None = None) -> dict[str, Any]:
    """The mapping in `path` with every `!include` merged in; WorkflowError on any problem."""
    return Includes(root).load(path)
