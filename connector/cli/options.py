"""Command-line options shared by the commands that configure an export (the export command
today; saved schedules, activations and workflows reuse them)."""
from __future__ import annotations

import argparse
from typing import Any

import result_url
from connector.mapping import OutputMapping, parse_mapping, parse_metadata_args, read_mapping
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


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help=f"SQLAlchemy database URL (default: ${DATABASE_URL_ENV}, else "
                             f"{DEFAULT_DATABASE_URL}: an embedded DuckDB that reads CSV, Parquet "
                             "and JSON files, e.g. SELECT ... FROM 'events.csv'). ${NAME} is read "
                             "from the environment, e.g. trino://me:${TRINO_PASSWORD}@host:443/hive/web")


def add_mapping_options(parser: argparse.ArgumentParser) -> None:
    """Treasure Data's output mapping for activations: `--output-mapping`, `--metadata`."""
    parser.add_argument("--output-mapping", metavar="MAPPING",
                        help='which query columns reach the output, renamed or built: a JSON '
                             'object or @path, e.g. \'{"all_columns": true, "columns": '
                             '[{"source": "mail", "name": "email"}]}\' (see docs/activations.md)')
    parser.add_argument("--metadata", metavar="KEY=VALUE", action="append", default=[],
                        help="segment metadata the mapping's string builders use: segment_id, "
                             "segment_name, audience_id; repeatable")


def output_mapping(args: argparse.Namespace) -> OutputMapping:
    """The output mapping the options give (the identity when none; ConfigError when wrong)."""
    metadata = parse_metadata_args(args.metadata)
    raw = read_mapping(args.output_mapping) if args.output_mapping else None
    return parse_mapping(raw, metadata)
