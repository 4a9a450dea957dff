"""Command-line options shared by the commands that configure an export (the export command
today; saved schedules, activations and workflows reuse them)."""
from __future__ import annotations

import argparse
from typing import Any

import result_url
from connector.source import DATABASE_URL_ENV, DEFAULT_DATABASE_URL


def add_result_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """How the output is configured: `--result`."""
    parser.add_argument("--result", required=required, metavar="RESULT",
                        help='output settings as a JSON object, or @path to a JSON file, e.g. '
                             '\'{"type":"<output type>", ..., "access_token":"${TOKEN}"}\' '
                             "(connector outputs lists the types and their parameters). "
                             "String values written ${NAME} are read from the environment.")


def output_config(args: argparse.Namespace) -> dict[str, Any]:
    """The output configuration the options give (ConfigError when they are wrong)."""
    return result_url.parse_result(args.result)


def result_given(args: argparse.Namespace) -> bool:
    """Whether the options configure an output at all (where they are optional, as in
    `schedule update`)."""
    return args.result is not None


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help=f"SQLAlchemy database URL (default: ${DATABASE_URL_ENV}, else "
                             f"{DEFAULT_DATABASE_URL}: an embedded DuckDB that reads CSV, Parquet "
                             "and JSON files, e.g. SELECT ... FROM 'events.csv'). ${NAME} is read "
                             "from the environment, e.g. trino://me:${TRINO_PASSWORD}@host:443/hive/web")
