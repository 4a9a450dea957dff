"""Saved connections: `connections.toml` in the config home.

    [connections.line_prod]
    type = "line_conversion"
    line_tag_id = "abc123"
    access_token = { env = "LINE_TOKEN" }

A connection is an output type and some of its parameters, saved once and picked by name. A
value is a literal (text, number, boolean) or a reference (see references.py). The file may be
edited by hand: comments and layout survive `connections add` and `delete`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import tomlkit
from tomlkit.items import Table

from connector.errors import ConfigError

from .files import HomeStore
from .references import Reference

FILE_NAME = "connections.toml"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
Literal = str | int | float | bool


def check_name(name: str) -> str:
    """The name, if it is one. An invalid one is not repeated: a secret pasted in the wrong
    place would otherwise be printed."""
    if not NAME_RE.match(name):
        raise ConfigError("not a valid connection name (letters, digits, '_', '.' and '-', up "
                          "to 64, starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class Connection:
    name: str
    type: str
    values: dict[str, Literal | Reference] = field(default_factory=dict)  # without "type"

    def references(self) -> dict[str, Reference]:
        return {k: v for k, v in self.values.items() if isinstance(v, Reference)}

    def as_config(self) -> dict[str, Any]:
        """The connection as an output configuration: references as their one-key tables."""
        return {"type": self.type, **{k: v.as_table() if isinstance(v, Reference) else v
                                      for k, v in self.values.items()}}


def _literal(where: str, value: Any) -> Literal | Reference:
    if isinstance(value, dict):
        try:
            ref = Reference.from_value(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        assert ref is not None
        return ref
    if isinstance(value, (str, int, float, bool)):  # bool is an int: kept as it is
        ref = Reference.from_value(value) if isinstance(value, str) else None
        return value if ref is None else ref
    raise ConfigError(f"{where}: a value must be text, a number, true/false or a reference "
                      "table such as {env = \"NAME\"}")


class ConnectionStore(HomeStore):
    """Reads and writes connections.toml; every change is atomic and locked."""

    file_name = FILE_NAME

    def _document(self) -> tomlkit.TOMLDocument:
        doc = self.file.read_toml()
        table = doc.get("connections")
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"{self.path}: 'connections' must be a table")
        return doc

    def _parse(self, name: str, table: Any) -> Connection:
        where = f"{self.path}: connection {name!r}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        if not NAME_RE.match(name):
            raise ConfigError(f"{where}: not a valid connection name")
        values = dict(table.unwrap() if isinstance(table, Table) else table)
        type_name = values.pop("type", None)
        if not isinstance(type_name, str) or not type_name:
            raise ConfigError(f"{where}: the \"type\" parameter is required")
        return Connection(name, type_name,
                          {k: _literal(f"{where}: {k}", v) for k, v in values.items()})

    def __iter__(self) -> Iterator[Connection]:
        table = self._document().get("connections") or {}
        for name in sorted(table):
            yield self._parse(name, table[name])

    def names(self) -> list[str]:
        return sorted(self._document().get("connections") or {})

    def get(self, name: str) -> Connection:
        check_name(name)
        table = self._document().get("connections") or {}
        if name not in table:
            known = ", ".join(sorted(table))
            raise ConfigError(f"no connection named {name!r} "
                              + (f"(saved: {known})" if known else f"(none saved in {self.path})"))
        return self._parse(name, table[name])

    def save(self, connection: Connection, replace: bool = False) -> None:
        check_name(connection.name)
        with self.file.locked():
            doc = self._document()
            if "connections" not in doc:
                doc["connections"] = tomlkit.table(is_super_table=True)
            table = doc["connections"]
            if connection.name in table and not replace:
                raise ConfigError(f"connection {connection.name!r} exists; add --force to "
                                  "replace it")
            entry = tomlkit.table()
            for key, value in connection.as_config().items():
                if isinstance(value, dict):
                    inline = tomlkit.inline_table()
                    inline.update(value)
                    value = inline
                entry[key] = value
            if connection.name in table:
                del table[connection.name]
            table[connection.name] = entry
            self.file.write_text(tomlkit.dumps(doc))

    def delete(self, name: str) -> None:
        if not self.path.exists():  # nothing to lock: create nothing
            raise ConfigError(f"no connection named {name!r} in {self.path}")
        with self.file.locked():
            doc = self._document()
            table = doc.get("connections") or {}
            if name not in table:
                raise ConfigError(f"no connection named {name!r} in {self.path}")
            del table[name]
            self.file.write_text(tomlkit.dumps(doc))
