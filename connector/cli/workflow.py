"""`connector workflow run FILE.dig ...`: a Treasure Workflow file, run locally.

    connector workflow run FILE.dig [--session TIME|daily|hourly|last] [-p KEY=VALUE ...]
                                    [--dry-run] [--database URL] [--runs-dir DIR]
    connector workflow check FILE.dig [-p KEY=VALUE ...]

Exit status: 0 every task succeeded; 1 a task failed (or the run was interrupted); 2 the file
cannot run as written (found before any task runs), or bad usage.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from connector.errors import ConfigError
from connector.schedule.workflows import last_scheduled, session_for
from connector.session import parse_moment, zone
from connector.workflow import (DEFAULT_MAX_PARALLEL, TaskRecord, Workflow, WorkflowObserver,
                                WorkflowSpec, default_runs_dir, last_session, load_workflow,
                                run_workflow)

from .export import console_cancel, error, warn
from .options import Parser, add_database_option


class ConsoleWorkflowObserver(WorkflowObserver):
    """Task lines and echo> output on stdout, warnings on stderr, one line at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _print(self, text: str, stream: Any) -> None:
        with self._lock:
            print(text, file=stream, flush=True)

    def task_finished(self, record: TaskRecord) -> None:
        self._print(record.line(), sys.stdout)

    def warning(self, message: str) -> None:
        self._print(f"connector: warning: {message}", sys.stderr)

    def echo(self, message: str) -> None:
        self._print(message, sys.stdout)


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """-p KEY=VALUE pairs (values are text, as digdag's -p gives them)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("-p: expected KEY=VALUE (the value is not shown: it may be a secret)")
        out[key.strip()] = value
    return out


def _truncate(now: dt.datetime, unit: str) -> dt.datetime:
    if unit == "hourly":
        return now.replace(minute=0, second=0, microsecond=0)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def session_time(text: str, workflow: Workflow, runs_dir: str | None) -> dt.datetime:
    """--session as digdag reads it, in the workflow's time zone: daily (today 00:00), hourly
    (this hour), last (the last session run here; else, with a schedule, the latest scheduled
    time; else today), yyyy-MM-dd[ HH:mm:ss], ISO 8601 with an offset, or UNIX seconds."""
    tz = zone(workflow.timezone)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).astimezone(tz)
    raw = text.strip()
    if raw in ("daily", "hourly"):
        return _truncate(now, raw)
    if raw == "last":
        found = last_session(Path(runs_dir) if runs_dir else default_runs_dir(workflow))
        if found is not None:
            return found.astimezone(tz)
        scheduled = last_scheduled(workflow, now)
        return scheduled if scheduled is not None else _truncate(now, "daily")
    if re.fullmatch(r"-?\d{9,}", raw):
        return dt.datetime.fromtimestamp(int(raw), dt.timezone.utc).astimezone(tz)
    moment = parse_moment(raw, tz, "--session must be daily, hourly, last, \"yyyy-MM-dd\", "
                          f"\"yyyy-MM-dd HH:mm:ss\" or ISO 8601 with an offset: {text!r}")
    return moment.replace(microsecond=0)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="connector workflow",
               description="Run Treasure Workflow (.dig) files locally: td> queries on the "
                           "configured engine, exports through the installed outputs.",
               epilog="Exit status: 0 every task succeeded; 1 a task failed; 2 the file cannot "
                      "run as written, or bad usage.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    r = sub.add_parser("run", help="run every task of a workflow file")
    r.add_argument("file", metavar="FILE.dig")
    r.add_argument("--session", metavar="TIME", default="last",
                   help="the session time: daily (today 00:00 in the workflow's timezone), "
                        "hourly, last (default: the last session run here, else the latest "
                        "scheduled time, else today), \"yyyy-MM-dd[ HH:mm:ss]\" in the "
                        "workflow's timezone, or ISO 8601 with an offset")
    _params_option(r)
    r.add_argument("--dry-run", action="store_true",
                   help="send nothing: each export writes its request bodies into the run "
                        "folder (queries and table writes still run)")
    add_database_option(r)
    r.add_argument("--runs-dir", metavar="DIR",
                   help="where run folders go (default: .connector/runs/WORKFLOW beside the file)")
    r.add_argument("--max-parallel", metavar="N", type=int, default=DEFAULT_MAX_PARALLEL,
                   help=f"at most N tasks do work at once (default {DEFAULT_MAX_PARALLEL})")
    r.set_defaults(func=run)
    c = sub.add_parser("check", help="load and check a workflow file without running it")
    c.add_argument("file", metavar="FILE.dig")
    _params_option(c)
    c.set_defaults(func=check)
    return p


def _params_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", dest="params", metavar="KEY=VALUE", action="append",
                   default=[], help="a parameter for ${KEY} (text), like digdag's -p")


def run(args: argparse.Namespace) -> int:
    if args.max_parallel < 1:
        raise ConfigError("--max-parallel: at least 1")
    params = parse_params(args.params)
    observer = ConsoleWorkflowObserver()
    workflow = load_workflow(args.file, params)
    session = session_for(workflow, session_time(args.session, workflow, args.runs_dir))
    spec = WorkflowSpec(args.file, params, session, args.database, args.runs_dir,
                        args.dry_run, args.max_parallel)
    with console_cancel() as cancel:
        try:
            result = run_workflow(spec, cancel, observer, workflow)
        except KeyboardInterrupt:
            error("interrupted")
            return 1
    print(f"connector: {result.summary()}", file=sys.stderr, flush=True)
    if result.error and result.status != "success":
        error(result.error)
    return result.exit_code


def check(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.file, parse_params(args.params))
    for message in workflow.warnings:
        warn(message)
    tasks = [t for t in workflow.root.walk() if t.operator is not None]
    schedule = f"; schedule {workflow.schedule.describe()}" if workflow.schedule else ""
    print(f"{workflow.name}: ok, {len(tasks)} task{'s' if len(tasks) != 1 else ''} "
          f"(timezone {workflow.timezone}{schedule})")
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code
