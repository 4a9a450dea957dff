"""`connector sandbox`: run the LINE Conversion API emulator in the foreground."""
from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
from typing import Any

import orjson

from connector.delivery import is_loopback_host

from .. import wire
from .faults import FaultSpecError, parse_fault
from .server import DEFAULT_HOST, DEFAULT_PORT, base_url, bind_socket, make_server
from .state import (DEFAULT_DEDUP_WINDOW, DEFAULT_MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST,
                    SandboxState)

ENV_PREFIX = "env:"

DESCRIPTION = f"""\
A local emulator of the LINE Conversion API. It serves {wire.METHOD} {wire.EVENTS_PATH} and
answers like LINE: 202 (empty body) when every event is valid; 400 for a body that is not a
JSON array, a chunked request, more than {MAX_EVENTS_PER_REQUEST:,} events or any invalid event
(the whole request is then discarded); 401 for a missing or wrong {wire.TOKEN_HEADER}; 405,
404, and 413 above --max-body-bytes. Events are validated with the exporter's own field table.

Accepted events are stored per tag and deduplicated on (event_name, deduplication_key) for
--dedup-window seconds, LINE's 30 days by default. An event without a user identifier is taken
(202) and dropped, as LINE does. Event timestamps may be fractional, as LINE's own server-side
tag sends them. Read them
with GET /sandbox/api/events?tag=..., the request log with GET /sandbox/api/requests, counters with
GET /sandbox/api/stats; DELETE /sandbox/api/events resets. Faults: POST/GET/DELETE
/sandbox/api/faults. Web console: /"""

EPILOG = """\
fault SPEC examples (one JSON object per --fault; applied in the given order):
  '{"status": 500, "times": 2}'        answer 500 to the next 2 requests, store nothing
  '{"status": 429, "retry_after": 1}'  answer 429 with Retry-After: 1
  '{"delay_s": 3}'                     wait 3 s, then process normally
  '{"drop_connection": true}'          read the request, close the TCP connection, no response
  '{"reject_where": {"deduplication_key": "k-13"}}'
                                       standing rule: 400 for every request holding such an
                                       event, until faults are cleared (DELETE /sandbox/api/faults)
  '{"latency_ms": 100}'                standing: every request answered 100 ms later
  '{"concurrency_limit": 4, "retry_after": 1}'
                                       standing: 429 with Retry-After for a request that arrives
                                       while 4 are in progress

Tokens are never printed or logged."""


def _tag(value: str) -> tuple[str, str]:
    tag, sep, token = value.partition("=")
    if not sep or not tag or not token:
        raise argparse.ArgumentTypeError("expected TAG_ID=TOKEN")
    if token.startswith(ENV_PREFIX):
        name = token[len(ENV_PREFIX):]
        token = os.environ.get(name, "")
        if not token:
            raise argparse.ArgumentTypeError(f"environment variable {name} is not set or empty")
    return tag, token


def _fault(value: str) -> Any:
    try:
        return parse_fault(orjson.loads(value))
    except orjson.JSONDecodeError:
        raise argparse.ArgumentTypeError("SPEC must be one JSON object") from None
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of bytes") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds") from None
    if not math.isfinite(n) or n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return n


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a port number") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_PORT})")
    parser.add_argument("--tag", dest="tags", metavar="TAG_ID=TOKEN", type=_tag, action="append",
                        help="accept this LINE Tag ID with exactly this access token; repeatable. "
                             "TOKEN may be env:NAME to read it from environment variable NAME. "
                             "Without --tag, any tag is accepted with any non-empty token")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="keep events in an SQLite file in DIR, kept across restarts "
                             "(default: in memory, lost on exit)")
    parser.add_argument("--fault", dest="faults", metavar="SPEC", type=_fault, action="append",
                        help="inject a fault (JSON of one fault object, see below); repeatable, "
                             "applied in order")
    parser.add_argument("--dedup-window", metavar="SECONDS", type=_seconds,
                        default=DEFAULT_DEDUP_WINDOW,
                        help="a second event with the same event_name and deduplication_key "
                             "within this many seconds of the first is a duplicate (default: "
                             f"{DEFAULT_DEDUP_WINDOW}, LINE's 30 days; 0: no dedup)")
    parser.add_argument("--max-body-bytes", metavar="N", type=_size, default=DEFAULT_MAX_BODY_BYTES,
                        help="answer 413 to bodies larger than N bytes "
                             f"(default: {DEFAULT_MAX_BODY_BYTES}, LINE's 300 MB)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tags = None
    if args.tags:
        tags = {}
        for tag, token in args.tags:
            tags[tag] = token
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"connector sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        state = SandboxState(tags=tags, data_dir=args.data_dir, faults=args.faults or [],
                             max_body_bytes=args.max_body_bytes, dedup_window=args.dedup_window)
    except (OSError, sqlite3.DatabaseError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"connector sandbox: cannot use --data-dir {args.data_dir}: {reason}",
              file=sys.stderr)
        return 2
    url = base_url(sock)
    lines = [
        f"LINE Conversion API sandbox listening on {url}",
        f"  endpoint: {wire.METHOD} {url}{wire.EVENTS_PATH}",
        f"  console:  {url}/",
    ]
    if tags is None:
        lines.append("  tags:     none configured: accepting ANY tag with ANY non-empty token")
    else:
        lines.append(f"  tags:     {', '.join(tags)} (tokens are checked, never shown)")
    lines.append(f"  store:    {state.store.path or 'in memory (lost on exit; use --data-dir to keep)'}")
    lines.append("  dedup:    " + (f"{args.dedup_window:g} s" if args.dedup_window else "off"))
    pending = state.faults.public()
    if pending["pending"] or pending["standing"]:
        lines.append(f"  faults:   {len(pending['pending'])} pending, "
                     f"{len(pending['standing'])} standing")
    if not is_loopback_host(args.host):
        lines.append(f"  WARNING:  {args.host} is not a loopback address; anyone who can reach "
                     "this port can read the stored events")
    lines.append("Press Ctrl+C to stop.")
    print("\n".join(lines), flush=True)
    server = make_server(state)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
