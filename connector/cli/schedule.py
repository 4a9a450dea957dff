"""`connector schedule ...`: scheduled exports with Treasure Data's cron dialect.

    connector schedule explain CRON [--timezone TZ] [--from ISO8601] [--count N] [--json]
    connector schedule create NAME --cron CRON [--timezone TZ] [--delay SECONDS] QUERY_FILE --result ...
    connector schedule create NAME --workflow FILE.dig [--cron CRON] [--timezone TZ] [--delay SECONDS]
    connector schedule update NAME [--cron ...] [--timezone ...] [--delay ...] [QUERY_FILE] [--result ...]
    connector schedule list | show NAME | delete NAME | enable NAME | disable NAME
    connector schedule run NAME TIME [-n N] [--again]
    connector schedule history NAME [--json]

Exit status: 0 success; 1 a run failed; 2 bad usage or configuration.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import result_url
from connector.connections import ConnectionStore
from connector.errors import ConfigError
from connector.masking import Redactor
from connector.outputs import load_output
from connector.schedule import cron as cronmod
from connector.schedule.runner import SlotOutcome, export_definition, run_slot
from connector.schedule.state import STATE_URL_ENV, default_state_url, state_url
from connector.schedule.store import RunRecord, Schedule, ScheduleStore, check_schedule
from connector.schedule.workflows import workflow_definition
from connector.schedule.zones import DEFAULT_TIMEZONE, check_timezone
from connector.scheduler.notify import describe_target
from connector.session import iso_error, parse_moment
from connector.workflow import load_workflow

from .export import ConsoleObserver, console_cancel, error, read_query, report_exit, warn
from .options import add_database_option, add_result_options, output_options, result_given
from .scheduler import add_policy_options, with_policy
from .workflow import ConsoleWorkflowObserver

MAX_SLOTS = 10_000


def _time(text: str, tz: dt.tzinfo, option: str) -> dt.datetime:
    """ISO 8601 (without an offset, a wall time in `tz`), or `now`."""
    raw = text.strip()
    if raw.lower() == "now":
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).astimezone(tz)
    return parse_moment(raw, tz, iso_error(option, text))


def _iso(unix: float | int | None, tz: dt.tzinfo) -> str | None:
    if unix is None:
        return None
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).astimezone(tz).isoformat(
        timespec="seconds")


def _state_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", metavar="URL",
                   help=f"SQLAlchemy URL of the state database where schedules and their history "
                        f"live (default: ${STATE_URL_ENV}, else {default_state_url()})")


# --------------------------------------------------------------------------- explain

def explain(args: argparse.Namespace) -> int:
    tz = check_timezone(args.timezone)
    parsed = cronmod.parse(args.cron)
    start = (_time(args.from_time, tz, "--from") if args.from_time
             else dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    moments = cronmod.next_runs(parsed, tz, start, args.count)
    runs = [m.isoformat(timespec="seconds") for m in moments]
    if args.json:
        print(json.dumps({"cron": args.cron, "timezone": args.timezone,
                          "effective": parsed.effective, "ignored": parsed.ignored, "runs": runs}))
        return 0
    print(f"cron:      {args.cron!r}")
    print(f"timezone:  {args.timezone}")
    print(f"effective: {parsed.effective!r}" + ("  (never runs)" if parsed.never else ""))
    if parsed.ignored:
        kept = "day-of-week" if parsed.ignored == "day_of_month" else "day-of-month"
        print(f"ignored:   {parsed.ignored} ({kept} fires more often)")
    else:
        print("ignored:   none")
    if not parsed.never:
        print("daylight:  " + ("hour field starts with *: runs follow elapsed time"
                               if parsed.elapsed else "fixed hours: a repeated time runs once, "
                                                      "skipped times run once after the gap"))
    print(f"next {len(runs)} runs (after {start.isoformat(timespec='seconds')}):")
    for run in runs:
        print(f"  {run}")
    return 0


# --------------------------------------------------------------------------- create / update

def _env_refs(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value))
    if isinstance(value, Mapping):
        return set().union(*(_env_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_env_refs(v) for v in value)) if value else set()
    return set()


def check_output(output: Mapping[str, Any], connection: str | None = None) -> None:
    """Validate the output configuration now, not at 3 a.m.; ${NAME} that the environment does
    not set now is read when each slot runs."""
    if connection is not None:
        # The connection and its output type must exist now; its secrets are references, read
        # when a slot runs, so what cannot be checked yet is checked then.
        load_output(ConnectionStore(warn=warn).get(connection).type)
        try:
            result_url.build_output(output, Redactor(), connection=connection)
        except ConfigError as exc:
            warn(f"the output is checked when a slot runs ({exc})")
        return
    missing = sorted(n for n in _env_refs(output) if n not in os.environ)
    if missing:
        load_output(output.get("type"))  # the type at least must exist
        warn(f"environment variable{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
              "not set now: the output is checked when a slot runs (each run reads the "
              "environment then)")
        return
    result_url.build_output(output, Redactor())
    schema = load_output(output.get("type")).schema()
    literal = sorted(k for k in result_url.secret_keys(schema)
                     if isinstance(output.get(k), str) and not _env_refs(output[k]))
    if literal:
        warn(f"{', '.join(literal)} will be stored in the state database as written; "
              "write ${NAME} to read it from the environment when each slot runs")


def masked(output: Mapping[str, Any]) -> dict[str, Any]:
    """The output configuration with literal secrets replaced (${NAME} references stay)."""
    try:
        secrets = result_url.secret_keys(load_output(output.get("type")).schema())
    except ConfigError:
        secrets = frozenset()
    return {k: ("***" if k in secrets and isinstance(v, str) and not _env_refs(v) else v)
            for k, v in output.items()}


def _schedule_options(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("query_file", metavar="QUERY_FILE", nargs="?",
                   help="SQL file to export (its text is stored with the schedule)")
    p.add_argument("--cron", metavar="CRON",
                   help='when to run, in Treasure Data\'s cron dialect (e.g. "0 0 * * *", '
                        '@daily, @hourly; "" saves an export with no scheduled runs)')
    p.add_argument("--timezone", metavar="TZ",
                   help="IANA time zone the cron is read in (e.g. Asia/Tokyo; default UTC, or "
                        "a workflow's timezone:)")
    p.add_argument("--delay", metavar="SECONDS", type=int,
                   help="start each run this many seconds after its scheduled time (may be "
                        "negative); TD_SCHEDULED_TIME() stays the scheduled time (default 0, "
                        "or what a workflow's schedule: block says)")
    p.add_argument("--workflow", metavar="FILE.dig",
                   help="run a Treasure Workflow file instead of a query: its td> tasks say "
                        "where to export; without --cron, the cron, delay and timezone come "
                        "from the file's schedule: block. The file is read when each slot runs")
    add_result_options(p)
    add_database_option(p)
    add_policy_options(p)
    _state_option(p)


def _saved(store: ScheduleStore, schedule: Schedule, verb: str) -> int:
    parsed = cronmod.parse(schedule.cron)
    if parsed.warning():
        warn(parsed.warning() or "")
    tz = check_timezone(schedule.timezone)
    upcoming = cronmod.next_runs(parsed, tz, dt.datetime.now(dt.timezone.utc), 1)
    nxt = (f"next run {upcoming[0].isoformat(timespec='seconds')}" if upcoming
           else "no scheduled runs")
    noun = "schedule" if schedule.kind == "export" else schedule.kind
    print(f"{noun} {schedule.name!r} {verb}: {parsed.effective!r} in {schedule.timezone}"
          f"{f', delay {schedule.delay}s' if schedule.delay else ''}; {nxt}"
          f"{'' if schedule.enabled else ' (disabled)'}")
    return 0


def _workflow_schedule(args: argparse.Namespace, name: str, current: Schedule | None) -> Schedule:
    """A workflow schedule: the file checked now; cron, delay and timezone from the options,
    else from the file's schedule: block (else from the schedule being updated)."""
    if args.query_file or result_given(args):
        raise ConfigError("--workflow takes no QUERY_FILE, --result or --result-connection: "
                          "the workflow's td> tasks say what to export and where")
    workflow = load_workflow(args.workflow)
    for message in workflow.warnings:
        warn(message)
    block = workflow.schedule
    if args.cron is not None:
        cron, delay = args.cron, 0
    elif block is not None:
        cron, delay = block.cron, block.delay
    elif current is not None:
        cron, delay = current.cron, current.delay
    else:
        raise ConfigError(f"--cron is required: {args.workflow} has no schedule: block")
    if block is not None and block.options and args.cron is None:
        warn(f"schedule: {', '.join(block.options)} of {args.workflow} are kept with the "
              "schedule but not applied by connector schedule run")
    database = args.database if args.database is not None else (
        current.definition.get("database_url") if current is not None else None)
    definition = workflow_definition(args.workflow, database)
    if block is not None:
        definition["schedule"] = {"block": block.describe(), **dict(block.options)}
    timezone = args.timezone or (workflow.timezone if block is not None or current is None
                                 else current.timezone)
    delay = args.delay if args.delay is not None else delay
    if current is not None:  # its policy, targets and state are kept
        return with_policy(replace(current, cron=cron, timezone=timezone, delay=delay,
                                   definition=definition), args)
    return with_policy(Schedule(name=name, cron=cron, timezone=timezone, delay=delay,
                                kind="workflow", definition=definition), args)


def create(args: argparse.Namespace) -> int:
    if args.workflow:
        schedule = _workflow_schedule(args, args.name, None)
        check_schedule(schedule)
        with _store(args) as store:
            store.create(schedule)
            return _saved(store, schedule, "created")
    if args.cron is None:
        raise ConfigError("--cron is required (\"\" saves an export with no scheduled runs)")
    if not args.query_file:
        raise ConfigError("QUERY_FILE is required")
    connection, output = output_options(args)
    schedule = with_policy(Schedule(
        name=args.name, cron=args.cron, timezone=args.timezone or DEFAULT_TIMEZONE,
        delay=args.delay or 0,
        definition=export_definition(read_query(args.query_file), output, args.database,
                                     os.path.abspath(args.query_file), connection)), args)
    check_schedule(schedule)
    check_output(output, connection)
    with _store(args) as store:
        store.create(schedule)
        return _saved(store, schedule, "created")


def update(args: argparse.Namespace) -> int:
    with _store(args) as store:
        current = store.get(args.name)
        if args.workflow:
            schedule = _workflow_schedule(args, current.name, current)
            store.update(schedule)
            return _saved(store, schedule, "updated")
        if current.kind == "workflow":
            if args.query_file or result_given(args):
                raise ConfigError(f"schedule {current.name!r} runs a workflow: give --workflow "
                                  "FILE.dig to change it")
            definition = dict(current.definition)
            if args.database is not None:
                definition["database_url"] = args.database
            schedule = with_policy(replace(
                current, cron=current.cron if args.cron is None else args.cron,
                timezone=args.timezone or current.timezone,
                delay=current.delay if args.delay is None else args.delay,
                definition=definition), args)
            store.update(schedule)
            return _saved(store, schedule, "updated")
        definition = dict(current.definition)
        if args.query_file:
            definition.update(query=read_query(args.query_file),
                              query_file=os.path.abspath(args.query_file))
        if result_given(args):
            definition["connection"], definition["output"] = output_options(args)
            check_output(definition["output"], definition["connection"])
        if args.database is not None:
            definition["database_url"] = args.database
        schedule = with_policy(replace(
            current,
            cron=current.cron if args.cron is None else args.cron,
            timezone=args.timezone or current.timezone,
            delay=current.delay if args.delay is None else args.delay,
            definition=definition), args)
        store.update(schedule)
        return _saved(store, schedule, "updated")


# --------------------------------------------------------------------------- list / show / ...

@contextmanager
def _store(args: argparse.Namespace) -> Iterator[ScheduleStore]:
    store = ScheduleStore(state_url(args.state))
    try:
        yield store
    finally:
        store.close()


def _describe(schedule: Schedule, count: int) -> dict[str, Any]:
    parsed = cronmod.parse(schedule.cron)
    tz = check_timezone(schedule.timezone)
    slots = cronmod.next_runs(parsed, tz, dt.datetime.now(dt.timezone.utc), count)
    definition = dict(schedule.definition)
    if "output" in definition and isinstance(definition["output"], Mapping):
        definition["output"] = masked(definition["output"])
    return {
        "name": schedule.name, "kind": schedule.kind, "enabled": schedule.enabled,
        "cron": schedule.cron, "timezone": schedule.timezone, "delay": schedule.delay,
        "effective": parsed.effective, "ignored": parsed.ignored,
        "next_runs": [{"scheduled_time": s.isoformat(timespec="seconds"),
                       "starts_at": (s + dt.timedelta(seconds=schedule.delay)).isoformat(
                           timespec="seconds")} for s in slots],
        "definition": definition,
        "created_at": _iso(schedule.created_at, tz), "updated_at": _iso(schedule.updated_at, tz),
        "catchup": schedule.catchup, "catchup_limit": schedule.catchup_limit,
        "overlap": schedule.overlap, "notify": [describe_target(t) for t in schedule.notify],
        "disabled_reason": schedule.disabled_reason,
    }


def list_(args: argparse.Namespace) -> int:
    with _store(args) as store:
        found = [_describe(s, 1) for s in store.list()]
    if args.json:
        print(json.dumps([{k: d[k] for k in ("name", "kind", "enabled", "cron", "timezone",
                                             "delay", "effective", "ignored", "next_runs")}
                          for d in found], indent=2))
        return 0
    if not found:
        print("no schedules (connector schedule create NAME --cron CRON QUERY_FILE --result ...)")
        return 0
    rows = [("NAME", "ENABLED", "CRON", "TIMEZONE", "DELAY", "NEXT RUN")]
    for d in found:
        nxt = d["next_runs"][0]["scheduled_time"] if d["next_runs"] else "-"
        rows.append((d["name"], "yes" if d["enabled"] else "no", d["cron"] or '""',
                     d["timezone"], str(d["delay"]), nxt if d["enabled"] else f"({nxt})"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        d = _describe(store.get(args.name), 5)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    definition = d.pop("definition")
    query = definition.pop("query", None)
    for key in ("name", "kind", "enabled", "disabled_reason", "cron", "timezone", "delay",
                "effective", "ignored", "catchup", "catchup_limit", "overlap", "created_at",
                "updated_at"):
        if key == "disabled_reason" and not d[key]:
            continue
        print(f"{key + ':':<12} {d[key]}")
    for target in d["notify"]:
        print(f"{'notify:':<12} {target}")
    for key, value in definition.items():
        text = json.dumps(value) if isinstance(value, dict) else "(default)" if value is None else value
        print(f"{key + ':':<12} {text}")
    print("next runs (scheduled -> starts):")
    for run in d["next_runs"]:
        print(f"  {run['scheduled_time']} -> {run['starts_at']}")
    if query is not None:
        print("query:")
        print("  " + query.replace("\n", "\n  "))
    return 0


def delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        store.delete(args.name)
    print(f"{args.name!r} deleted, with its history")
    return 0


def _enabler(value: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with _store(args) as store:
            schedule = store.get(args.name)
            store.update(replace(schedule, enabled=value))
        print(f"schedule {args.name!r} {'enabled' if value else 'disabled'}")
        return 0
    return run


# --------------------------------------------------------------------------- run / history

def _slot_line(outcome: SlotOutcome, count: int, index: int) -> str:
    when = outcome.scheduled_time.isoformat(timespec="seconds")
    prefix = f"connector: slot {when} ({index}/{count})"
    if outcome.status == "skipped":
        earlier = outcome.earlier
        if earlier is not None and earlier.status == "queued":
            return (f"{prefix}: skipped, the scheduler service has queued it "
                    f"(attempt {earlier.attempt})")
        if earlier is not None and earlier.status == "running":
            return (f"{prefix}: skipped, another run has it (attempt {earlier.attempt}, "
                    f"process {earlier.pid} on {earlier.host})")
        how = f"{earlier.status} (attempt {earlier.attempt})" if earlier else "claimed"
        return f"{prefix}: skipped, it ran before: {how}; --again runs it again"
    return f"{prefix}, attempt {outcome.attempt}"


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= MAX_SLOTS:
        raise ConfigError(f"-n: between 1 and {MAX_SLOTS}")
    with _store(args) as store:
        schedule = store.get(args.name)
        tz = check_timezone(schedule.timezone)
        start = _time(args.time, tz, "TIME")
        slots = schedule.slots_from(start, args.n)
        if len(slots) < args.n:
            raise ConfigError(f"schedule {schedule.name!r} has only {len(slots)} slots from "
                              f"{start.isoformat()} (cron {schedule.cron!r})")
        status = 0
        with console_cancel() as cancel:
            for index, slot in enumerate(slots, 1):
                observer = ConsoleObserver(args.quiet)
                tasks = ConsoleWorkflowObserver()
                ahead = " (a future slot: it runs now, for its scheduled time)" if (
                    slot > dt.datetime.now(dt.timezone.utc)) else ""
                print(f"connector: slot {slot.isoformat(timespec='seconds')} "
                      f"({index}/{len(slots)}){ahead}", file=sys.stderr, flush=True)
                try:
                    outcome = run_slot(store, schedule, slot, again=args.again, cancel=cancel,
                                       observer=observer, workflow_observer=tasks)
                except KeyboardInterrupt:
                    error("interrupted")
                    return 1
                finally:
                    observer.close()
                if outcome.status == "skipped":
                    print(_slot_line(outcome, len(slots), index), file=sys.stderr, flush=True)
                    continue
                if outcome.workflow is not None:
                    print(f"connector: {outcome.workflow.summary()}", file=sys.stderr, flush=True)
                    status = max(status, outcome.workflow.exit_code)
                    if cancel.cancelled:
                        return 1
                    continue
                if outcome.report is None:  # a configuration error before the run started
                    error(outcome.error or "configuration error")
                    return ConfigError.exit_code
                code = report_exit(outcome.report, args.quiet)
                if code == ConfigError.exit_code:
                    return code
                status = max(status, code)
                if cancel.cancelled:
                    return 1
        return status


def _record(r: RunRecord, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "scheduled_time": _iso(r.scheduled_time, tz), "attempt": r.attempt,
        "started": _iso(r.started_at, tz), "finished": _iso(r.finished_at, tz),
        "status": r.status, "reason": r.reason, "rows_read": r.rows_read,
        "events_sent": r.events_sent, "invalid_records": r.invalid_records,
        "rejected_events": r.rejected_events, "failed_events": r.failed_events,
        "report_path": r.report_path, "error": r.error, "note": r.note,
    }


def history(args: argparse.Namespace) -> int:
    with _store(args) as store:
        schedule = store.get(args.name)
        records = store.history(args.name, args.limit)
    tz = check_timezone(schedule.timezone)
    rows = [_record(r, tz) for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs of {args.name!r} yet (connector schedule run {args.name} TIME)")
        return 0
    header = ("SCHEDULED", "ATTEMPT", "STARTED", "FINISHED", "STATUS", "READ", "SENT", "INVALID",
              "FAILED", "REPORT")
    table = [header] + [(
        r["scheduled_time"], str(r["attempt"]), r["started"] or "-", r["finished"] or "-",
        r["status"] + (f" ({r['reason']})" if r["reason"] else ""),
        *(str(r[k]) if r[k] is not None else "-" for k in (
            "rows_read", "events_sent", "invalid_records", "failed_events")),
        r["report_path"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    # What the scheduler service did because of a run (a skipped slot's reason is in STATUS).
    for r in rows:
        if r["note"] and r["status"] != "skipped":
            print(f"note: {r['scheduled_time']} attempt {r['attempt']}: {r['note']}")
    return 0


# --------------------------------------------------------------------------- the parser

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments"):
            message = ("unrecognized arguments (not shown: they may hold a token); quote the "
                       "--result JSON as one argument, or use --result @file.json")
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="connector schedule",
                description="Scheduled exports: Treasure Data's cron dialect, time zones, "
                            "delay, backfill and history.",
                epilog="Exit status: 0 success; 1 a run failed; 2 bad usage or configuration.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    e = sub.add_parser("explain", help="how a cron expression runs: the effective expression, "
                                       "the ignored day field, the next runs")
    e.add_argument("cron", metavar="CRON")
    e.add_argument("--timezone", metavar="TZ", default=DEFAULT_TIMEZONE,
                   help="IANA time zone (default UTC)")
    e.add_argument("--from", dest="from_time", metavar="ISO8601",
                   help="list runs after this time (exclusive; default now; without an offset, "
                        "a wall time in --timezone)")
    e.add_argument("--count", metavar="N", type=int, default=5, help="how many runs (default 5)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=explain)

    c = sub.add_parser("create", help="save a scheduled export")
    _schedule_options(c, creating=True)
    c.set_defaults(func=create)
    u = sub.add_parser("update", help="change a schedule (only what is given)")
    _schedule_options(u, creating=False)
    u.set_defaults(func=update)

    for name, func, text in (("list", list_, "list the schedules"),):
        q = sub.add_parser(name, help=text)
        q.add_argument("--json", action="store_true", help="print JSON")
        _state_option(q)
        q.set_defaults(func=func)
    for name, func, text in (("show", show, "a schedule, its next runs and its query"),
                             ("delete", delete, "delete a schedule and its history"),
                             ("enable", _enabler(True), "enable a schedule"),
                             ("disable", _enabler(False), "disable a schedule (it can still be "
                                                          "run by hand)")):
        q = sub.add_parser(name, help=text)
        q.add_argument("name", metavar="NAME")
        if name == "show":
            q.add_argument("--json", action="store_true", help="print JSON")
        _state_option(q)
        q.set_defaults(func=func)

    r = sub.add_parser("run", help="run N consecutive slots from the first at or after TIME, one "
                                   "after another, each with its own scheduled time (backfill)")
    r.add_argument("name", metavar="NAME")
    r.add_argument("time", metavar="TIME",
                   help="ISO 8601 (without an offset, a wall time in the schedule's zone), or now")
    r.add_argument("-n", metavar="N", type=int, default=1, help="how many slots (default 1)")
    r.add_argument("--again", action="store_true",
                   help="run slots that ran before again (each run is a new attempt)")
    r.add_argument("--quiet", action="store_true", help="print only errors")
    _state_option(r)
    r.set_defaults(func=run)

    h = sub.add_parser("history", help="the runs of a schedule, newest first")
    h.add_argument("name", metavar="NAME")
    h.add_argument("--json", action="store_true", help="print JSON")
    h.add_argument("--limit", metavar="N", type=int, help="at most N runs")
    _state_option(h)
    h.set_defaults(func=history)
    p.commands = sub.choices  # type: ignore[attr-defined]
    return p


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    if argv and argv[0] in ("create", "update"):
        # QUERY_FILE may come after the options (as in the export command); argparse places an
        # optional positional only when the arguments are parsed intermixed.
        args = parser.commands[argv[0]].parse_intermixed_args(argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code
