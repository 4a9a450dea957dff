"""`connector secrets set|list|delete`: the values `${secret:KEY}` reads.

`set` takes the value from standard input (`printf %s "$TOKEN" | connector secrets set KEY`) or,
on a terminal, from a prompt that does not echo. Values are kept in secrets.toml (0600) beside
connections.toml; `CONNECTOR_SECRET_<KEY>` in the environment wins over the store. No command
shows a value.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Sequence

from connector.connections import SecretStore, env_names
from connector.connections.secrets import check_key
from connector.errors import ConfigError

from .export import error, warn
from .options import Parser


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="connector secrets",
               description="Secrets for ${secret:KEY} in result settings, --result and saved "
                           "connections. Stored in $CONNECTOR_CONFIG_HOME/secrets.toml (default "
                           "~/.config/connector), mode 0600; the environment variable "
                           "CONNECTOR_SECRET_<KEY> (dots and dashes as underscores) wins.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = sub.add_parser("set", help="store a secret: the value from stdin, or a prompt")
    put.add_argument("key", metavar="KEY")
    sub.add_parser("list", help="list the stored keys (never the values)")
    delete = sub.add_parser("delete", help="delete a stored secret")
    delete.add_argument("key", metavar="KEY")
    return p


def read_value(key: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"value of secret {key}: ")
    value = sys.stdin.read()
    # `echo "$TOKEN" | connector secrets set KEY` adds a newline that is not part of it.
    if value.endswith("\n"):
        value = value[:-1]
    return value[:-1] if value.endswith("\r") else value


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    store = SecretStore(warn=warn)
    try:
        if args.action == "set":
            check_key(args.key)
            store.set(args.key, read_value(args.key))
            print(f"saved secret {args.key} in {store.path}", file=sys.stderr)
            shadow = [n for n in env_names(args.key) if os.environ.get(n)]
            if shadow:
                warn(f"{shadow[0]} is set in this environment and wins over the stored value")
        elif args.action == "list":
            keys = store.keys()
            if not keys:
                print(f"no secrets saved in {store.path}", file=sys.stderr)
            for key in keys:
                print(key)
        else:
            store.delete(args.key)
            print(f"deleted secret {args.key} from {store.path}", file=sys.stderr)
    except ConfigError as exc:
        error(str(exc))
        return exc.exit_code
    return 0
