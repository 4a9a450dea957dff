"""Command line: `connector QUERY_FILE --result RESULT ...`, plus `sandbox` and `outputs`.

Exit status: 0 success, 1 the job failed, 2 bad usage or configuration (before any query runs).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

import result_url
from connector import docs
from connector.errors import ConfigError, ConnectorError
from connector.job import ExportJob
from connector.masking import Redactor
from connector.plugins import OutputPlugin, available_outputs, load_output
from connector.progress import Progress
from connector.report import JobReport
from connector.sharding import parse_shard, shard_sql
from connector.source import (DATABASE_URL_ENV, DEFAULT_DATABASE_URL, Source, database_url,
                              url_secrets)

SUBCOMMANDS = ("sandbox", "outputs", "docs", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse echoes unrecognised arguments; an unquoted --result would print its token."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments"):
            message = ("unrecognized arguments (not shown: they may hold a token); quote the "
                       "--result JSON as one argument, or use --result @file.json")
        super().error(message)


def _export_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="connector",
        description="Run a SQL query and export every result row to a conversion API. "
                    f"Other commands: {', '.join(SUBCOMMANDS)} (connector COMMAND --help).",
        epilog="Exit status: 0 success; 1 the job failed (query error, send failure, invalid rows "
               "in strict mode, events rejected or not accepted); 2 bad usage or configuration.",
    )
    p.add_argument("query_file", metavar="QUERY_FILE", help="SQL file to run, or - for stdin")
    p.add_argument("--result", required=True, metavar="RESULT",
                   help='output settings as a JSON object, or @path to a JSON file, e.g. '
                        '\'{"type":"line_conversion","line_tag_id":"...","access_token":"${LINE_TOKEN}"}\'. '
                        "String values written ${NAME} are read from the environment.")
    p.add_argument("--database", metavar="URL",
                   help=f"SQLAlchemy database URL (default: ${DATABASE_URL_ENV}, else "
                        f"{DEFAULT_DATABASE_URL}: an embedded DuckDB that reads CSV, Parquet and "
                        "JSON files, e.g. SELECT ... FROM 'events.csv'). ${NAME} is read from "
                        "the environment, e.g. trino://me:${TRINO_PASSWORD}@host:443/hive/web")
    p.add_argument("--report-file", metavar="PATH", help="write the job report as JSON to PATH")
    p.add_argument("--dry-run", metavar="PATH",
                   help="send nothing; write the exact request bodies to PATH, one JSON array per line")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument("--shard", metavar="K/N",
                   help="export only shard K of N (0 <= K < N): rows whose key "
                        "(deduplication_key for LINE) hashes to K, computed by the engine. N "
                        "processes with K = 0..N-1 export every row exactly once")
    p.add_argument("--no-pushdown", action="store_true",
                   help="encode every row in Python instead of letting DuckDB build the events "
                        "(same output, slower; for comparison and debugging)")
    return p


def _read_query(path: str) -> str:
    try:
        sql = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read query file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"query file {path} is not UTF-8 text") from None
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise ConfigError(f"query file {path} is empty")
    return sql


def build_plugin(result_text: str, redactor: Redactor) -> OutputPlugin:
    """--result text → validated, defaulted plugin instance (ConfigError on any problem)."""
    raw = result_url.parse_result(result_text)
    plugin_cls = load_output(raw.get("type"))
    schema = plugin_cls.schema()
    secrets = result_url.secret_keys(schema)
    for key in secrets:  # literal secrets too, before expansion can fail
        if isinstance(raw.get(key), str):
            redactor.add(raw[key])
    config = result_url.expand_env(raw)
    for key in secrets:
        if isinstance(config.get(key), str):
            redactor.add(config[key])
    result_url.validate(config, schema)
    return plugin_cls(result_url.apply_defaults(config, schema))


def _check_writable(option: str, path: str | None) -> None:
    """Fail before the query runs, not after every event was sent."""
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK) or Path(path).is_dir():
        raise ConfigError(f"{option}: cannot write {path} (does its folder exist?)")


def _write_report(path: str | None, report: JobReport, redactor: Redactor) -> None:
    if path:
        text = redactor(json.dumps(report.to_dict(), indent=2))
        Path(path).write_text(text + "\n", encoding="utf-8")


def export(argv: Sequence[str]) -> int:
    args = _export_parser().parse_args(argv)
    redactor = Redactor()

    def err(message: str) -> None:
        print(f"connector: error: {redactor(message)}", file=sys.stderr, flush=True)

    report: JobReport | None = None
    try:
        _check_writable("--report-file", args.report_file)
        _check_writable("--dry-run", args.dry_run)
        sql = _read_query(args.query_file)
        plugin = build_plugin(args.result, redactor)
        shard = parse_shard(args.shard) if args.shard else None
        url = result_url.expand_env({"--database": database_url(args.database)})["--database"]
        for secret in url_secrets(url):
            redactor.add(secret)
        source = Source(url)
        if shard is not None:
            if plugin.shard_column is None:
                raise ConfigError(f"--shard: the {plugin.type} output has no shard key")
            sql = shard_sql(sql, source.dialect, shard, plugin.shard_column)
        report = JobReport(output_type=plugin.type, destination=plugin.describe_destination(),
                           dry_run=bool(args.dry_run))
        with Progress(report, enabled=not args.quiet, redact=redactor) as progress:
            job = ExportJob(plugin, source, report, dry_run_path=args.dry_run,
                            on_warning=lambda w: progress.message(f"connector: warning: {w}"),
                            pushdown=not args.no_pushdown)

            def interrupt(signum: int, frame: Any) -> None:
                job.interrupted = True
                raise KeyboardInterrupt

            # Kubernetes and most schedulers stop a job with SIGTERM: treat it like Ctrl-C.
            previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                job.run(sql)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                source.dispose()
    except ConfigError as exc:
        err(str(exc))
        if report is not None:
            report.fail("config_error", redactor(str(exc)))
            report.finish()
            _write_report(args.report_file, report, redactor)
        return 2
    except ConnectorError as exc:
        err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return 1
    _write_report(args.report_file, report, redactor)
    success = report.status == "success"
    if not (success and args.quiet):  # --quiet hides only a successful summary
        print(redactor(report.summary()), file=sys.stderr)
    return 0 if success else 1


def outputs(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="connector outputs",
                            description="List the registered output types and their parameters."
                            ).parse_args(argv)
    for name, cls in sorted(available_outputs().items()):
        schema = cls.schema()
        print(f"{name}: {schema.get('title', '')}")
        print(f"  {schema.get('description', '')}")
        print(docs.parameters_text(schema))
        print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sandbox":
        from connector.sandbox.cli import main as sandbox_main

        return sandbox_main(argv[1:])
    if argv and argv[0] == "outputs":
        return outputs(argv[1:])
    if argv and argv[0] == "docs":
        return docs.main(argv[1:])
    if argv and argv[0] == "demo":
        from connector.demo import main as demo_main

        return demo_main(argv[1:])
    return export(argv)
