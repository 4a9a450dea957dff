"""`connector activation ...`: saved activations, as Treasure Data's Create Activation makes them.

    connector activation create NAME --query SEGMENT.sql (--result-connection NAME
        [--result-settings ...] | --result ...) [--output-mapping ...] [--metadata KEY=VALUE ...]
        [--cron CRON [--timezone TZ] [--delay SECONDS]] [--database URL]
    connector activation run NAME
    connector activation list | show NAME | delete NAME | history NAME

An activation is a segment query, its output and its output mapping with the segment's
metadata. It is stored beside the schedules (kind "activation") and runs on its cron like them;
`run` runs it now. Each run's report carries the activation's name and metadata.

Exit status: 0 success; 1 the run failed; 2 bad usage or configuration.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any, Sequence

from connector.errors import ConfigError
from connector.schedule.runner import activation_definition, export_definition, run_slot
from connector.schedule.store import Schedule, ScheduleStore, check_schedule
from connector.schedule.zones import DEFAULT_TIMEZONE

from . import schedule as schedules
from .export import ConsoleObserver, console_cancel, error, read_query, report_exit
from .options import (Parser, add_database_option, add_mapping_options, add_result_options,
                      output_mapping, output_options)

KIND = "activation"


def _get(store: ScheduleStore, name: str) -> Schedule:
    found = store.get(name)
    if found.kind != KIND:
        raise ConfigError(f"{name!r} is a {found.kind} schedule, not an activation "
                          "(connector schedule show it)")
    return found


def create(args: argparse.Namespace) -> int:
    connection, output = output_options(args)
    mapping = output_mapping(args)
    export = export_definition(read_query(args.query), output, args.database,
                               os.path.abspath(args.query), connection)
    activation = Schedule(name=args.name, cron=args.cron, timezone=args.timezone,
                          delay=args.delay, kind=KIND,
                          definition=activation_definition(export, mapping))
    check_schedule(activation)
    schedules.check_output(output, connection)
    with schedules._store(args) as store:
        store.create(activation)
        return schedules._saved(store, activation, "created")


def run(args: argparse.Namespace) -> int:
    """Run the activation now, recorded in its history as a slot at this second."""
    with schedules._store(args) as store:
        activation = _get(store, args.name)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        with console_cancel() as cancel:
            observer = ConsoleObserver(args.quiet)
            try:
                outcome = run_slot(store, activation, now, cancel=cancel, observer=observer)
            except KeyboardInterrupt:
                error("interrupted")
                return 1
            finally:
                observer.close()
    if outcome.report is None:
        error(outcome.error or "configuration error")
        return ConfigError.exit_code
    return report_exit(outcome.report, args.quiet)


def list_(args: argparse.Namespace) -> int:
    with schedules._store(args) as store:
        found = [a for a in store.list() if a.kind == KIND]
    if not found:
        print("no activations (connector activation create NAME --query SEGMENT.sql ...)")
        return 0
    rows = [("NAME", "SEGMENT", "CRON", "TIMEZONE", "OUTPUT")]
    for a in found:
        metadata = a.definition.get("mapping", {}).get("metadata", {})
        segment = metadata.get("segment_name") or metadata.get("segment_id") or "-"
        output = a.definition.get("connection") or a.definition.get("output", {}).get("type", "-")
        rows.append((a.name, str(segment), a.cron or '""', a.timezone, str(output)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _checked(action: Any) -> Any:
    """A schedule command, for activations only."""
    def run_action(args: argparse.Namespace) -> int:
        with schedules._store(args) as store:
            _get(store, args.name)
        return action(args)
    return run_action


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="connector activation",
               description="Saved activations: a segment query sent to an output through an "
                           "output mapping, with the segment's metadata; run now or on a cron.",
               epilog="Exit status: 0 success; 1 the run failed; 2 bad usage or configuration.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = sub.add_parser("create", help="save an activation")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--query", metavar="SEGMENT.sql", required=True,
                   help="the segment's SQL (its text is stored with the activation)")
    add_result_options(c)
    add_mapping_options(c)
    add_database_option(c)
    c.add_argument("--cron", metavar="CRON", default="",
                   help='run on this cron, in Treasure Data\'s dialect (default "": only when '
                        "run with `activation run`)")
    c.add_argument("--timezone", metavar="TZ", default=DEFAULT_TIMEZONE,
                   help="IANA time zone the cron is read in (default UTC)")
    c.add_argument("--delay", metavar="SECONDS", type=int, default=0,
                   help="start each scheduled run this many seconds after its scheduled time")
    r = sub.add_parser("run", help="run the activation now")
    r.add_argument("name", metavar="NAME")
    r.add_argument("--quiet", action="store_true", help="print only errors")
    sub.add_parser("list", help="the saved activations")
    for name, text in (("show", "an activation, its mapping and next runs"),
                       ("delete", "delete an activation and its history"),
                       ("history", "the runs of an activation, newest first")):
        q = sub.add_parser(name, help=text)
        q.add_argument("name", metavar="NAME")
        if name in ("show", "history"):
            q.add_argument("--json", action="store_true")
        if name == "history":
            q.add_argument("--limit", type=int, default=None)
    for q in sub.choices.values():
        schedules._state_option(q)
    return p


ACTIONS = {"create": create, "run": run, "list": list_, "show": _checked(schedules.show),
           "delete": _checked(schedules.delete), "history": _checked(schedules.history)}


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return ACTIONS[args.command](args)
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
