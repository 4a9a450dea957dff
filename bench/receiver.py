"""A minimal, fast HTTP/1.1 sink for benchmarks: reads each request body and answers 202.

Loopback only. Raw asyncio protocol with keep-alive, no framework, no JSON parsing, so that it
costs far less CPU than the exporter it measures. Events are counted by scanning the body for
`{"event":` (one per event as the exporter encodes them).

    python bench/receiver.py [--port 0] [--port-file PATH]
                             [--latency-ms MS] [--max-in-flight N [--retry-after S]]

--latency-ms answers every request that much later (a round trip to a distant API);
--max-in-flight answers 429 (with Retry-After when given) to a request that arrives while N
are in progress, as an API with a concurrency limit would.

GET /stats answers {"requests": n, "bytes": n, "events": n, "rejected_429": n, "peak": n};
POST /reset zeroes the counters. It prints `PORT <n>` on stdout once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

HOST = "127.0.0.1"
ACCEPTED = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}")
TOO_MANY = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n"
TOO_MANY_AFTER = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\nContent-Length: 0\r\n\r\n"
EVENT_MARK = b'{"event":'


class Counters:
    requests = 0
    bytes = 0
    events = 0
    rejected_429 = 0
    in_progress = 0
    peak = 0


class Config:
    latency = 0.0  # seconds
    max_in_flight: int | None = None
    retry_after: int | None = None


class Handler(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.need: int | None = None  # body bytes still expected for the current request
        self.head = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                length = 0
                for line in self.head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                self.need = length
            if len(self.buf) < self.need:
                return
            body = bytes(self.buf[:self.need])
            del self.buf[:self.need]
            self.need = None
            self.respond(body)

    def respond(self, body: bytes) -> None:
        assert self.transport is not None
        method, _, rest = self.head.partition(b" ")
        path = rest.partition(b" ")[0]
        if method == b"GET" and path == b"/stats":
            data = json.dumps({"requests": Counters.requests, "bytes": Counters.bytes,
                               "events": Counters.events, "rejected_429": Counters.rejected_429,
                               "peak": Counters.peak}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            return
        if method == b"POST" and path == b"/reset":
            Counters.requests = Counters.bytes = Counters.events = Counters.rejected_429 = 0
            Counters.peak = 0
            self.transport.write(ACCEPTED)
            return
        Counters.requests += 1
        busy = Config.max_in_flight is not None and Counters.in_progress >= Config.max_in_flight
        if busy:
            Counters.rejected_429 += 1
            answer = TOO_MANY if Config.retry_after is None else \
                TOO_MANY_AFTER % Config.retry_after
        else:
            Counters.bytes += len(body)
            Counters.events += body.count(EVENT_MARK)
            answer = ACCEPTED
        if not Config.latency:
            self.transport.write(answer)
            return
        # A turned-away request takes a round trip too, but no capacity.
        if not busy:
            Counters.in_progress += 1
            Counters.peak = max(Counters.peak, Counters.in_progress)
        asyncio.get_running_loop().call_later(Config.latency, self.answer_late, answer, not busy)

    def answer_late(self, answer: bytes, served: bool) -> None:
        if served:
            Counters.in_progress -= 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


async def serve(port: int, port_file: str | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, HOST, port, backlog=64)
    actual = server.sockets[0].getsockname()[1]
    if port_file:
        with open(port_file, "w") as f:
            f.write(str(actual))
    print(f"PORT {actual}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--max-in-flight", type=int)
    p.add_argument("--retry-after", type=int)
    args = p.parse_args(argv)
    Config.latency = args.latency_ms / 1000
    Config.max_in_flight = args.max_in_flight
    Config.retry_after = args.retry_after
    asyncio.run(serve(args.port, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
