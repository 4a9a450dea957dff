"""A minimal, fast HTTP/1.1 sink for benchmarks: reads each request body and answers 202.

Loopback only. Raw asyncio protocol with keep-alive, no framework, no JSON parsing, so that it
costs far less CPU than the exporter it measures. Events are counted by scanning the body for
`{"event":` (one per event as the exporter encodes them).

    python bench/receiver.py [--port 0] [--port-file PATH]

GET /stats answers {"requests": n, "bytes": n, "events": n}; POST /reset zeroes the counters.
It prints `PORT <n>` on stdout once listening.
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
EVENT_MARK = b'{"event":'


class Counters:
    requests = 0
    bytes = 0
    events = 0


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
                               "events": Counters.events}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
            return
        if method == b"POST" and path == b"/reset":
            Counters.requests = Counters.bytes = Counters.events = 0
            self.transport.write(ACCEPTED)
            return
        Counters.requests += 1
        Counters.bytes += len(body)
        Counters.events += body.count(EVENT_MARK)
        self.transport.write(ACCEPTED)


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
    args = p.parse_args(argv)
    asyncio.run(serve(args.port, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
