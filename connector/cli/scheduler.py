"""`connector scheduler`: the service that starts scheduled exports on time, and the options
`connector schedule create/update` take for it (catch-up, overlap, notifications).

    connector scheduler [--state URL] [--once] [--max-runs N] [--ui [--ui-host H] [--ui-port P]]

SIGTERM (or Ctrl-C) stops taking slots and lets running exports finish for --grace-period
seconds, then interrupts them and queues their slots again; exit 0. A second signal interrupts
at once. Exit status: 0; 1 with --once when a run failed; 2 bad usage or configuration.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from connector.delivery import is_loopback_host
from connector.errors import ConfigError
from connector.schedule.policy import CATCHUP, DEFAULT_CATCHUP_LIMIT, MAX_CATCHUP_LIMIT, OVERLAP
from connector.schedule.state import STATE_URL_ENV, default_state_url, state_url
from connector.schedule.store import Schedule, ScheduleStore
from connector.scheduler import Scheduler, SchedulerOptions, check_targets, serve_dashboard
from connector.scheduler.dashboard import DEFAULT_HOST, DEFAULT_PORT
from connector.source import safe_url

from .export import error
from .options import Parser

# --------------------------------------------------------------------------- schedule options


def add_policy_options(p: argparse.ArgumentParser) -> None:
    """What `schedule create/update` take for the service (defaults applied by the store)."""
    p.add_argument("--catchup", choices=CATCHUP,
                   help="after the scheduler was down: latest (default) runs only the newest "
                        "missed slot, all runs every missed slot in order (up to "
                        "--catchup-limit), none runs none")
    p.add_argument("--catchup-limit", metavar="N", type=int,
                   help=f"most missed slots `all` runs, the newest (default "
                        f"{DEFAULT_CATCHUP_LIMIT}, at most {MAX_CATCHUP_LIMIT})")
    p.add_argument("--overlap", choices=OVERLAP,
                   help="a slot due while the previous run still goes: wait (default) runs it "
                        "when that run ends, skip records it as skipped")
    p.add_argument("--notify", metavar="JSON",
                   help="notification targets: a JSON object or list (or @file.json) of "
                        '{"type": "command"|"webhook"|"email", ..., "on": "failure"|"always"}; '
                        "'[]' removes them (see docs/scheduler.md)")


def _json_option(option: str, text: str) -> Any:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"{option}: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # the position, never the text (it may hold a token)
        raise ConfigError(f"{option}: not valid JSON (line {exc.lineno}, column {exc.colno})") \
            from None


def with_policy(schedule: Schedule, args: argparse.Namespace) -> Schedule:
    """The schedule with the policy options given on the command line (the rest kept)."""
    changes: dict[str, Any] = {}
    if args.catchup is not None:
        changes["catchup"] = args.catchup
    if args.catchup_limit is not None:
        changes["catchup_limit"] = args.catchup_limit
    if args.overlap is not None:
        changes["overlap"] = args.overlap
    if args.notify is not None:
        changes["notify"] = tuple(check_targets(_json_option("--notify", args.notify)))
    return replace(schedule, **changes) if changes else schedule


# --------------------------------------------------------------------------- the service

def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'number' if kind is float else 'count'}") \
                from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be more than 0")
        return value
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="connector scheduler",
               description="Start scheduled exports on time: each due slot at scheduled time + "
                           "delay, with catch-up, overlap rules, notifications, and high "
                           "availability when several schedulers share a PostgreSQL state "
                           "database.",
               epilog="Exit status: 0 (also after SIGTERM); 1 with --once when a run failed; "
                      "2 bad usage or configuration.")
    p.add_argument("--state", metavar="URL",
                   help=f"SQLAlchemy URL of the state database (default: ${STATE_URL_ENV}, else "
                        f"{default_state_url()}); postgresql://... for several schedulers")
    p.add_argument("--once", action="store_true",
                   help="run what is due now and exit (for cron or a Kubernetes CronJob)")
    p.add_argument("--max-runs", metavar="N", type=_positive(int),
                   help="exit after starting (and finishing) N runs")
    p.add_argument("--ui", action="store_true",
                   help="serve the read-only dashboard and /metrics")
    p.add_argument("--ui-host", metavar="HOST", default=DEFAULT_HOST,
                   help=f"address the dashboard listens on (default {DEFAULT_HOST}; it has no "
                        "login: keep it on loopback or behind a proxy that has one)")
    p.add_argument("--ui-port", metavar="PORT", type=_port, default=DEFAULT_PORT,
                   help=f"dashboard port (default {DEFAULT_PORT}; 0 picks a free one)")
    defaults = SchedulerOptions()
    p.add_argument("--lease", metavar="SECONDS", type=_positive(float), default=defaults.lease,
                   help=f"how long a running slot's claim lasts without renewal before another "
                        f"scheduler may take it over (default {defaults.lease:g}; renewed every "
                        "third of it)")
    p.add_argument("--grace-period", metavar="SECONDS", type=float,
                   default=defaults.grace_period,
                   help=f"after SIGTERM, how long running exports may go on before they are "
                        f"interrupted and queued again (default {defaults.grace_period:g})")
    p.add_argument("--misfire-grace", metavar="SECONDS", type=float,
                   default=defaults.misfire_grace,
                   help=f"the newest due slot found this late still counts as on time, not "
                        f"missed (default {defaults.misfire_grace:g}); with --once from cron, "
                        "at least cron's interval")
    p.add_argument("--max-concurrent", metavar="N", type=_positive(int),
                   default=defaults.max_concurrent,
                   help=f"runs at once in this process, one per schedule at most (default "
                        f"{defaults.max_concurrent})")
    p.add_argument("--poll", metavar="SECONDS", type=_positive(float), default=defaults.poll,
                   help=f"seconds between looks at the state database (default "
                        f"{defaults.poll:g})")
    return p


def options_markdown() -> str:
    """The service's options, from its parser (the docs' table)."""
    rows = ["| Option | Default | Meaning |", "|---|---|---|"]
    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        name = action.option_strings[0] + (f" {action.metavar}" if action.metavar else "")
        default = "" if action.default in (None, False) else f"`{action.default}`"
        # The default state file depends on the machine: the docs show where it is.
        text = (action.help or "").replace(
            default_state_url(), "sqlite:///${XDG_STATE_HOME:-~/.local/state}/connector/state.db"
        ).replace("|", "\\|")
        text = text.split(" (default", 1)[0] if default else text
        rows.append(f"| `{name}` | {default} | {text} |")
    return "\n".join(rows)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S%z"))
    logger = logging.getLogger("connector.scheduler")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def _signals(scheduler: Scheduler) -> Iterator[None]:
    def handle(signum: int, frame: Any) -> None:
        if scheduler._stopping:  # a second signal: interrupt the running exports now
            scheduler.cancel_now()
        else:
            scheduler.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.grace_period < 0 or args.misfire_grace < 0:
        error("--grace-period and --misfire-grace must be 0 or more")
        return ConfigError.exit_code
    options = SchedulerOptions(lease=args.lease, grace_period=args.grace_period,
                               misfire_grace=args.misfire_grace,
                               max_concurrent=args.max_concurrent, poll=args.poll,
                               once=args.once, max_runs=args.max_runs)
    configure_logging()
    log = logging.getLogger("connector.scheduler")
    try:
        store = ScheduleStore(state_url(args.state))
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code
    try:
        scheduler = Scheduler(store, options)
        log.info("state database %s", safe_url(store.url))
        with contextlib.ExitStack() as stack:
            if args.ui:
                url = stack.enter_context(serve_dashboard(store, args.ui_host, args.ui_port))
                log.info("dashboard on %s/ (metrics on %s/metrics)", url, url)
                if not is_loopback_host(args.ui_host):
                    log.warning("the dashboard listens on %s, not loopback: it has no login; "
                                "anyone who can reach it reads every schedule's history",
                                args.ui_host)
            with _signals(scheduler):
                return scheduler.run()
    except ConfigError as exc:
        error(str(exc))
        return ConfigError.exit_code
    finally:
        store.close()
