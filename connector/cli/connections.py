"""`connector connections add|list|show|delete`: saved connections, Treasure Data's
Authentications kept locally in connections.toml (see docs/connections.md).

A secret parameter (the schema marks it `x-secret`, such as `access_token`) is saved by
reference (`--secret access_token=env:LINE_TOKEN`) unless `--plaintext` says to store the value
itself. No command ever shows a secret's value: `list` and `show` say where it comes from.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import tomlkit

import result_url
from connector.connections import KINDS, Connection, ConnectionStore, Reference, check_name
from connector.errors import ConfigError
from connector.masking import Redactor
from connector.outputs import OutputPlugin, load_output

from .export import error, warn
from .options import Parser

MASK = "***"
REFERENCE_FORMS = "env:NAME, file:PATH, secret:KEY or keyring:ENTRY"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="connector connections",
               description="Saved connections: an output type and its parameters, saved once "
                           "and picked by name (--result-connection NAME or --result NAME). "
                           "Stored in $CONNECTOR_CONFIG_HOME/connections.toml (default "
                           "~/.config/connector), mode 0600.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="save a connection",
                         description="Save a connection. Values are checked against the "
                                     "output's schema; parameters a run's settings give may be "
                                     "left out.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--type", required=True, metavar="TYPE",
                     help="the output type (connector outputs lists them)")
    add.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="a parameter, in the schema's type (max_records=1500 is an integer); "
                          "repeat for more")
    add.add_argument("--secret", action="append", default=[], metavar="KEY=REFERENCE",
                     help=f"a parameter read at run time from {REFERENCE_FORMS}; with "
                          "--plaintext, KEY=VALUE stores the value itself")
    add.add_argument("--plaintext", action="store_true",
                     help="allow secret values in clear text in connections.toml")
    add.add_argument("--force", action="store_true", help="replace a connection of that name")
    ls = sub.add_parser("list", help="list connections: name, type, where each secret comes from")
    ls.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", help="show a connection, secrets masked")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print JSON")
    delete = sub.add_parser("delete", help="delete a connection")
    delete.add_argument("name", metavar="NAME")
    return p


# --------------------------------------------------------------------------- add


def _split(flag: str, item: str) -> tuple[str, str]:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag}: expected KEY=VALUE")  # the item itself may be a token
    return key, text


def connection_values(type_name: str, schema: dict[str, Any], sets: Sequence[str],
                      secrets: Sequence[str], plaintext: bool) -> dict[str, Any]:
    """The values `--set` and `--secret` give, typed by the schema; a literal secret value
    without `plaintext` is refused (and never echoed)."""
    props = schema.get("properties", {})
    secret = result_url.secret_keys(schema)
    values: dict[str, Any] = {}
    for flag, items in (("--set", sets), ("--secret", secrets)):
        for item in items:
            key, text = _split(flag, item)
            if key == "type":
                raise ConfigError(f"{flag} type: give the output type with --type")
            if key not in props:
                raise ConfigError(f"{flag} {key}: the {type_name} output has no such parameter "
                                  f"(known: {', '.join(sorted(k for k in props if k != 'type'))})")
            if key in values:
                raise ConfigError(f"{key}: given twice")
            ref = Reference.from_text(text) if flag == "--secret" else Reference.from_value(text)
            if ref is not None:
                values[key] = ref
                continue
            if (key in secret or flag == "--secret") and not plaintext:
                raise ConfigError(
                    f"{key} is a secret: keep it by reference (--secret {key}={REFERENCE_FORMS}), "
                    "or add --plaintext to store the value itself in connections.toml")
            values[key] = result_url.typed_value(schema, key, text)
    return values


def add(args: argparse.Namespace, store: ConnectionStore, redactor: Redactor) -> int:
    for item in args.secret:  # a value, unless it is a reference (which is not secret)
        text = item.partition("=")[2]
        if text.partition(":")[0] not in KINDS:
            redactor.add(text)
    check_name(args.name)
    plugin_cls = result_url.check_type(args.type)
    schema = plugin_cls.schema()
    secret = result_url.secret_keys(schema)
    for key, _, text in (item.partition("=") for item in args.set):
        if key in secret:
            redactor.add(text)
    values = connection_values(args.type, schema, args.set, args.secret, args.plaintext)
    connection = Connection(args.name, args.type, values)
    problems = result_url.connection_problems(connection, schema)
    if problems:
        raise ConfigError(f"invalid connection {args.name!r}: " + "; ".join(problems))
    for key, ref in connection.references().items():
        if ref.kind == "file" and not Path(ref.target).expanduser().is_file():
            warn(f"{key}: {ref.target} does not exist yet; the export reads it when it runs")
    store.save(connection, replace=args.force)
    print(f"saved connection {args.name!r} ({args.type}) in {store.path}", file=sys.stderr)
    plain = sorted(k for k, v in values.items() if k in secret and not isinstance(v, Reference))
    if plain:
        warn(f"{', '.join(plain)} stored in clear text in {store.path} (mode 0600)")
    return 0


# --------------------------------------------------------------------------- list, show


def _schema_of(type_name: str) -> dict[str, Any] | None:
    try:
        plugin_cls: type[OutputPlugin] = load_output(type_name)
    except ConfigError:
        return None  # a connection of an output that is not installed (any more)
    return plugin_cls.schema()


def secret_sources(connection: Connection) -> dict[str, str]:
    """Where each secret (and each referenced value) comes from; never a value."""
    schema = _schema_of(connection.type)
    secret = result_url.secret_keys(schema) if schema else frozenset()
    sources: dict[str, str] = {}
    for key in sorted(secret | set(connection.values)):
        value = connection.values.get(key)
        if isinstance(value, Reference):
            sources[key] = value.describe()
        elif key in secret:
            sources[key] = "(run settings)" if value is None else "plaintext"
    return sources


def masked_values(connection: Connection) -> dict[str, Any]:
    schema = _schema_of(connection.type)
    secret = result_url.secret_keys(schema) if schema else frozenset()
    out: dict[str, Any] = {}
    for key, value in connection.values.items():
        if isinstance(value, Reference):
            out[key] = value.as_table()
        elif key in secret or schema is None and isinstance(value, str):
            out[key] = MASK  # an unknown output's parameters may all be secrets
        else:
            out[key] = value
    return out


def list_(args: argparse.Namespace, store: ConnectionStore, _: Redactor) -> int:
    connections = list(store)
    if args.json:
        print(json.dumps([{"name": c.name, "type": c.type, "secrets": secret_sources(c)}
                          for c in connections], indent=2))
        return 0
    if not connections:
        print(f"no connections saved in {store.path}", file=sys.stderr)
        return 0
    rows = [("NAME", "TYPE", "SECRETS")] + [
        (c.name, c.type + ("" if _schema_of(c.type) else " (not installed)"),
         " ".join(f"{k}={v}" for k, v in secret_sources(c).items()))
        for c in connections]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, type_name, sources in rows:
        print(f"{name:<{widths[0]}}  {type_name:<{widths[1]}}  {sources}".rstrip())
    return 0


def show(args: argparse.Namespace, store: ConnectionStore, _: Redactor) -> int:
    connection = store.get(args.name)
    values = masked_values(connection)
    schema = _schema_of(connection.type)
    missing = sorted(k for k in (schema or {}).get("required", [])
                     if k != "type" and k not in values)
    if args.json:
        print(json.dumps({"name": connection.name, "type": connection.type,
                          "path": str(store.path), "values": values,
                          "secrets": secret_sources(connection),
                          "settings_must_give": missing}, indent=2))
        return 0
    print(f"# connection {connection.name!r} in {store.path}")
    print(f"type = {tomlkit.item(connection.type).as_string()}")
    sources = secret_sources(connection)
    for key, value in values.items():
        note = "  # plaintext, masked" if sources.get(key) == "plaintext" else ""
        print(f"{key} = {_toml(value)}{note}")
    if missing:
        print(f"# the run's settings must give: {', '.join(missing)}")
    return 0


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string()
    return tomlkit.item(value).as_string()


def delete(args: argparse.Namespace, store: ConnectionStore, _: Redactor) -> int:
    store.delete(args.name)
    print(f"deleted connection {args.name!r} from {store.path}", file=sys.stderr)
    return 0


ACTIONS = {"add": add, "list": list_, "show": show, "delete": delete}


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    redactor = Redactor()  # the secret values given on this command line, once known
    try:
        return ACTIONS[args.action](args, ConnectionStore(warn=warn), redactor)
    except ConfigError as exc:
        error(redactor(str(exc)))
        return exc.exit_code
