"""Command-line options shared by the commands that configure an export (the export command
today; saved schedules, activations and workflows reuse them), and the argument parser every
command uses."""
from __future__ import annotations

import argparse
from typing import Any

import result_url
from connector.errors import ConfigError
from connector.mapping import OutputMapping, parse_mapping, parse_metadata_args, read_mapping
from connector.source import DATABASE_URL_ENV, DEFAULT_DATABASE_URL

# Treasure Workflow's own message for result_settings without result_connection.
SETTINGS_WITHOUT_CONNECTION = "result_settings is valid only if result_connection is set"


class Parser(argparse.ArgumentParser):
    """argparse echoes unrecognised arguments; one of them could be a token (an unquoted
    --result JSON, a mistyped --secret). Its other messages name options, not values."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments"):
            message = ("unrecognized arguments (not shown: they may hold a token); quote a "
                       "JSON value as one argument, or use @file.json")
        super().error(message)


def add_result_options(parser: argparse.ArgumentParser) -> None:
    """How the output is configured: `--result`, or `--result-connection` with
    `--result-settings`. Which combinations are allowed is checked by `output_options`."""
    parser.add_argument("--result", metavar="RESULT",
                        help='output settings as a JSON object, or @path to a JSON file, e.g. '
                             '\'{"type":"<output type>", ..., "access_token":"${TOKEN}"}\' '
                             "(connector outputs lists the types and their parameters), or the "
                             "name of a saved connection (connector connections). String values "
                             "written ${NAME} are read from the environment, ${secret:KEY} from "
                             "the secrets store (connector secrets).")
    parser.add_argument("--result-connection", metavar="NAME",
                        help="a saved connection (connector connections add) to export to")
    parser.add_argument("--result-settings", metavar="JSON",
                        help="settings layered over --result-connection, as a JSON object or "
                             "@path: schema defaults < connection < settings; the connection's "
                             "type cannot be changed")


def output_options(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """(saved connection or None, output configuration or the settings over the connection),
    as ExportSpec takes them. ConfigError when the options are missing, wrong or contradict
    each other."""
    if args.result_settings is not None and args.result_connection is None:
        raise ConfigError(SETTINGS_WITHOUT_CONNECTION)
    if args.result is not None and args.result_connection is not None:
        raise ConfigError("--result and --result-connection cannot be used together: give the "
                          "connection with --result-connection and the rest with "
                          "--result-settings")
    if args.result_connection is not None:
        settings = ({} if args.result_settings is None
                    else result_url.parse_result(args.result_settings, "--result-settings"))
        return args.result_connection, settings
    if args.result is None:
        raise ConfigError("one of --result or --result-connection is required")
    name = result_url.connection_name(args.result)
    return (name, {}) if name else (None, result_url.parse_result(args.result))


def result_given(args: argparse.Namespace) -> bool:
    """Whether the options configure an output at all (where they are optional, as in
    `schedule update`)."""
    return (args.result is not None or args.result_connection is not None
            or args.result_settings is not None)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help=f"SQLAlchemy database URL (default: ${DATABASE_URL_ENV}, else "
                             f"{DEFAULT_DATABASE_URL}: an embedded DuckDB that reads CSV, Parquet "
                             "and JSON files, e.g. SELECT ... FROM 'events.csv'). ${NAME} is read "
                             "from the environment and ${secret:KEY} from the secrets store, "
                             "e.g. trino://me:${TRINO_PASSWORD}@host:443/hive/web")


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
