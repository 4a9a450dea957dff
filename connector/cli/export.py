"""`connector QUERY_FILE (--result RESULT | --result-connection NAME) ...`: one export, run
through `run_export`.

Exit status: 0 success, 1 the job failed, 2 bad usage or configuration (before anything is sent).
"""
from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from connector.api import ExportObserver, ExportSpec, report_json, run_export
from connector.cancel import CancelToken
from connector.errors import ConfigError, ConnectorError
from connector.report import JobReport, Progress
from connector.session import SessionContext, parse_scheduled_time
from connector.source import parse_shard

from .options import (Parser, add_database_option, add_mapping_options, add_result_options,
                      output_mapping, output_options)


def build_parser(commands: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = Parser(
        prog="connector",
        description="Run a SQL query and export every result row to a conversion API. "
                    f"Other commands: {', '.join(commands)} (connector COMMAND --help).",
        epilog="Exit status: 0 success; 1 the job failed (query error, send failure, invalid rows "
               "in strict mode, events rejected or not accepted); 2 bad usage or configuration.",
    )
    p.add_argument("query_file", metavar="QUERY_FILE", help="SQL file to run, or - for stdin")
    add_result_options(p)
    add_database_option(p)
    add_mapping_options(p)
    p.add_argument("--report-file", metavar="PATH", help="write the job report as JSON to PATH")
    p.add_argument("--dry-run", metavar="PATH",
                   help="send nothing; write the exact request bodies to PATH, one JSON array per line")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument("--shard", metavar="K/N",
                   help="export only shard K of N (0 <= K < N): rows whose key (the output's "
                        "per-event key) hashes to K, computed by the engine. N processes with "
                        "K = 0..N-1 export every row exactly once")
    p.add_argument("--scheduled-time", metavar="ISO8601",
                   help="the time the run is for, as a scheduled run would have it: what "
                        "TD_SCHEDULED_TIME() and ${session_date} and the other session variables "
                        "read (e.g. 2026-12-07T00:00:00+09:00; default: the start of the run)")
    p.add_argument("--no-pushdown", action="store_true",
                   help="encode every row in Python instead of letting the engine build the "
                        "records (same output, slower; for comparison and debugging)")
    return p


def read_query(path: str) -> str:
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


def error(message: str) -> None:
    print(f"connector: error: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"connector: warning: {message}", file=sys.stderr, flush=True)


class ConsoleObserver(ExportObserver):
    """Progress on stderr while the run goes: a live line on a terminal, log lines elsewhere."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.progress: Progress | None = None

    def started(self, report: JobReport) -> None:
        self.progress = Progress(report, enabled=not self.quiet, redact=report.redact)
        self.progress.__enter__()

    def warning(self, message: str) -> None:
        if self.progress is not None:
            self.progress.message(f"connector: warning: {message}")
        elif not self.quiet:  # found while configuring, before the run started
            warn(message)

    def report_not_written(self, report: JobReport) -> None:
        self.close()
        error("the report file could not be written (see the warning); the report follows")
        print(report_json(report), file=sys.stderr, flush=True)

    def finished(self, report: JobReport) -> None:
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None


@contextmanager
def console_cancel() -> Iterator[CancelToken]:
    """A CancelToken that SIGINT and SIGTERM (how Kubernetes and most schedulers stop a job)
    trip; a second signal stops at once."""
    cancel = CancelToken()

    def interrupt(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def report_exit(report: JobReport, quiet: bool) -> int:
    """Print the run's outcome (the summary, or the configuration error) and return the export
    command's exit status for it."""
    if report.reason == ConfigError.reason:
        error(report.error or "configuration error")
        return ConfigError.exit_code
    success = report.status == "success"
    if not success:  # the cause first; the summary after it says what was done
        error(report.error or report.reason or "the export failed")
    if not (success and quiet):  # --quiet hides only a successful summary
        print(report.redact(report.summary(with_error=False)), file=sys.stderr)
    return 0 if success else 1


def run_in_console(spec: ExportSpec, quiet: bool = False) -> int:
    """Run `spec` with progress, the summary and the exit status of the export command.

    SIGINT and SIGTERM cancel the run: requests in flight are abandoned, the report is written
    and the exit status is 1. A second signal stops at once.
    """
    observer = ConsoleObserver(quiet)
    with console_cancel() as cancel:
        try:
            report = run_export(spec, cancel, observer)
        except ConnectorError as exc:
            error(str(exc))
            return exc.exit_code
        except KeyboardInterrupt:
            error("interrupted")
            return 1
        finally:
            observer.close()
    return report_exit(report, quiet)


def check_no_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An option given an empty value (`--shard=`, or a variable that expanded to nothing) is
    bad usage, not the option left out: `--shard=` would otherwise export every row."""
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.option_strings and isinstance(value, str) and not value.strip():
            raise ConfigError(f"{action.option_strings[-1]}: the value is empty")


def main(argv: Sequence[str], commands: Sequence[str] = ()) -> int:
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    try:
        check_no_empty_values(parser, args)
        query = read_query(args.query_file)
        connection, output = output_options(args)
        spec = ExportSpec(
            query=query,
            output=output,
            connection=connection,
            mapping=output_mapping(args),
            database_url=args.database,
            shard=parse_shard(args.shard) if args.shard is not None else None,
            dry_run_path=args.dry_run,
            report_path=args.report_file,
            pushdown=not args.no_pushdown,
            session=(parse_scheduled_time(args.scheduled_time) if args.scheduled_time
                     else SessionContext()),
        )
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code
    return run_in_console(spec, quiet=args.quiet)
