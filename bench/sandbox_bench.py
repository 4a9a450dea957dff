"""Throughput of the LINE Conversion API sandbox.

Starts the sandbox in-process (loopback only), then posts N requests of valid 1,000-event bodies
over one keep-alive httpx connection and prints requests/s and events/s, and the events per CPU
second of the process (client and sandbox together), a figure a busy machine disturbs less.
Every event has a fresh deduplication key, so each one is validated and stored.

    python bench/sandbox_bench.py [--requests 100] [--events 1000] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import socket
import sys
import time
import uuid

import httpx
import orjson

from connector.outputs.line_conversion.sandbox import run_sandbox

MAX_REQUESTS = 10_000  # keep the run bounded
TAG = "00000000-0000-4000-8000-000000000000"
TOKEN = "bench-token"


def make_body(request_no: int, n_events: int, now: int) -> bytes:
    events = []
    for i in range(n_events):
        events.append({
            "event": {
                "deduplication_key": f"r{request_no}-e{i}",
                "event_type": "conversion",
                "event_name": "Purchase",
                "source_type": "web",
                "event_timestamp": now - 60,
            },
            "user": {
                "email": "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a",
                "browser_id": str(uuid.UUID(int=request_no * n_events + i)),
                "external_id": f"user-{i}",
            },
            "web": {"url": "https://shop.example.com/thanks", "ip_address": "203.0.113.10",
                    "user_agent": "Mozilla/5.0 (bench)"},
            "custom": {"value": 1200, "currency": "JPY", "quantity": 2, "item_ids": ["a1", "b2"]},
        })
    return orjson.dumps(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="requests to post (default 100)")
    parser.add_argument("--events", type=int, default=1000, help="events per request (default 1000)")
    parser.add_argument("--data-dir", help="use the SQLite file store in DIR instead of memory")
    args = parser.parse_args(argv)
    n_requests = max(1, min(args.requests, MAX_REQUESTS))
    now = int(time.time())
    bodies = [make_body(r, args.events, now) for r in range(n_requests)]
    size = sum(map(len, bodies)) / len(bodies)

    with run_sandbox(tags={TAG: TOKEN}, data_dir=args.data_dir) as sb:
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        headers = {"X-Line-TagAccessToken": TOKEN, "Content-Type": "application/json"}
        with httpx.Client(transport=transport, timeout=60.0, trust_env=False) as client:
            url = sb.events_url(TAG)
            client.post(url, content=b"[]", headers=headers).raise_for_status()  # warm-up
            start = time.perf_counter()
            cpu_start = time.process_time()
            for body in bodies:
                response = client.post(url, content=body, headers=headers)
                if response.status_code != 202:
                    print(f"unexpected {response.status_code}: {sb.requests()[-1]}",
                          file=sys.stderr)
                    return 1
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
        stats = sb.stats()
    expected = n_requests * args.events
    if stats["accepted"] != expected:
        print(f"stored {stats['accepted']} events, expected {expected}", file=sys.stderr)
        return 1
    print(f"{n_requests} requests x {args.events} events ({size / 1e6:.2f} MB each) "
          f"in {elapsed:.2f} s, store: {args.data_dir or 'memory'}")
    print(f"{n_requests / elapsed:.1f} requests/s, {expected / elapsed:,.0f} events/s, "
          f"{n_requests * size / elapsed / 1e6:.1f} MB/s")
    # Less sensitive to a busy machine than the wall clock: the CPU time of this process, the
    # client's share (building requests, httpx) included.
    print(f"CPU {cpu:.2f} s (client and sandbox): {expected / cpu:,.0f} events per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
