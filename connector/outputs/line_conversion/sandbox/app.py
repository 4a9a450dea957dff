"""The sandbox's web layer: the emulated `POST /v1/{line_tag_id}/events`, the read/fault API under
`/sandbox/api/`, and the console at `/`.

Request handling order for `POST /v1/{tag}/events`:

1. the next one-off fault (if any) is taken from the queue;
2. header-level verdicts: a status fault, 401 (token), 400 (chunked), 413 (Content-Length);
3. the body is read (bounded by max_body_bytes) unless a verdict already stands; a
   `drop_connection` fault always reads it first, like a server that dies after receiving;
4. a `delay_s` fault sleeps;
5. drop / fault status / verdict, or else the body is validated and stored (in a worker thread).

Every request outside `/`, `/favicon.ico` and `/sandbox/...` is counted and logged. Tokens are
never logged, and neither are bodies, query strings or header values.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any, Awaitable, Callable, MutableMapping

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import wire
from .faults import FaultSpecError, parse_faults
from .state import STALE, SandboxState

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STATIC_DIR = Path(__file__).with_name("static")
# The emulated path, with the tag as a group (for logging requests the router did not match).
EVENTS_PATH = re.compile("^" + wire.EVENTS_PATH.replace("{line_tag_id}", "([^/]+)") + "$")
TOKEN_HEADER = wire.TOKEN_HEADER.lower().encode()
CHANNEL_HEADER = wire.CHANNEL_HEADER.lower().encode()
CLIENT_CLOSED = 499  # nginx's code for "client closed the request"; used in the log only
log = logging.getLogger("connector.sandbox")


# --------------------------------------------------------------------------- connection tracking
class ConnectionRegistry:
    """Maps a client address (host, port), as in the ASGI scope, to its asyncio transport.

    This is how `drop_connection` closes a TCP connection without a response: ASGI has no
    message for "abort", so the sandbox's server uses a uvicorn protocol subclass that records
    each connection's transport here, and the handler calls `transport.abort()`.
    """

    def __init__(self) -> None:
        self._by_client: dict[tuple[str, int], Any] = {}

    def add(self, client: Any, transport: Any) -> None:
        if client:
            self._by_client[tuple(client)] = transport

    def discard(self, client: Any, transport: Any) -> None:
        if client and self._by_client.get(tuple(client)) is transport:
            del self._by_client[tuple(client)]

    def get(self, client: Any) -> Any:
        return self._by_client.get(tuple(client)) if client else None

    def __len__(self) -> int:
        return len(self._by_client)


def tracking_protocol(registry: ConnectionRegistry) -> type:
    """uvicorn's h11 protocol, recording transports in `registry`. Pass as `Config(http=...)`."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class SandboxH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            registry.add(self.client, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.discard(self.client, self.transport)
            super().connection_lost(exc)

    return SandboxH11Protocol


# --------------------------------------------------------------------------- helpers
def _headers(scope: Scope) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.lower(), value)
    return out


def _base_entry(scope: Scope, t0: float, tag: str | None) -> dict[str, Any]:
    headers = _headers(scope)
    length = headers.get(b"content-length", b"")
    return {
        "id": None,
        "time": t0,
        "method": scope["method"],
        "path": scope["path"],
        "tag": tag,
        "status": None,
        "events": None,
        "bytes": int(length) if length.isdigit() else None,
        "channel_id": bool(headers.get(CHANNEL_HEADER, b"").strip()),
        "error": None,
        "fault": None,
        "duration_ms": None,
    }


async def _respond(send: Send, status: int, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
    if status in (202, 204, 304):
        body = b""
        headers = []
    else:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = orjson.dumps({"message": phrase})
        headers = [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status,
                "headers": headers + list(extra_headers)})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool, int]:
    """(body or None if the client left, too_big, bytes seen). Stops reading above `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False, size
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, True, size
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False, size


# --------------------------------------------------------------------------- waking delays
class Interrupts:
    """Wakes requests sleeping in an injected delay: on reset (so that a request from before the
    reset cannot leak into the fresh store) and on shutdown (so that it is quick).

    Used on the server's event loop only.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self.closed = False

    def current(self) -> asyncio.Event:
        """The event a request arriving now waits on."""
        if self._event is None:
            self._event = asyncio.Event()
        if self.closed:
            self._event.set()
        return self._event

    def fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    def close(self) -> None:
        self.closed = True
        self.fire()


# --------------------------------------------------------------------------- POST /v1/{tag}/events
class EventsEndpoint:
    """The emulated LINE endpoint (a raw ASGI app, so that it can drop a connection)."""

    def __init__(self, state: SandboxState, connections: ConnectionRegistry,
                 interrupts: Interrupts) -> None:
        self.state = state
        self.connections = connections
        self.interrupts = interrupts
        self.in_progress = 0  # requests being handled now (for the concurrency_limit fault)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only touched on the server's event loop: no lock needed.
        self.in_progress += 1
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_progress -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.time()
        ctx = scope.get("sandbox.ctx")
        if ctx is not None:
            ctx["logged"] = True
        state = self.state
        generation = state.generation
        wake = self.interrupts.current()
        tag = scope["path_params"]["line_tag_id"]
        headers = _headers(scope)
        entry = _base_entry(scope, t0, tag)

        # A request beyond the standing concurrency limit is turned away before it can consume
        # a one-off fault meant for the requests that are served.
        limit = state.faults.concurrency
        busy = limit is not None and self.in_progress > limit.limit
        fault = None if busy else state.faults.pop_next()
        if fault is not None:
            entry["fault"] = fault.public()

        # Header-level verdicts; the body is not needed to give them.
        verdict: int | None = None
        retry_after: int | str | None = None
        if busy:
            assert limit is not None
            verdict, retry_after = 429, limit.retry_after
            entry["fault"] = limit.public()
            entry["error"] = {"index": None, "field": None, "rule": "concurrency_limit",
                              "reason": f"more than {limit.limit} requests in progress"}
        elif fault is not None and fault.status is not None:
            verdict = fault.status
            if fault.retry_after is not None:
                retry_after = fault.retry_after
        elif not state.token_ok(tag, headers.get(TOKEN_HEADER)):
            verdict = 401
            entry["error"] = {"index": None, "field": wire.TOKEN_HEADER, "rule": "token",
                              "reason": "the token is missing or not bound to this tag"}
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            verdict = 400
            entry["error"] = {"index": None, "field": "Transfer-Encoding", "rule": "chunked",
                              "reason": "chunked requests are rejected; send a Content-Length"}
        elif entry["bytes"] is not None and entry["bytes"] > state.max_body_bytes:
            verdict = 413

        body = None
        dropping = fault is not None and fault.drop_connection
        if verdict is None or dropping:
            body, too_big, seen = await _read_body(receive, state.max_body_bytes)
            if entry["bytes"] is None:
                entry["bytes"] = seen
            if too_big and verdict is None:
                verdict = 413
            elif body is None and not too_big:
                entry["status"] = CLIENT_CLOSED
                entry["error"] = {"index": None, "field": "body", "rule": "client_closed",
                                  "reason": "the client closed the connection before the body ended"}
                await run_in_threadpool(state.record, entry, None, generation)
                return
        if verdict == 413:
            entry["error"] = {"index": None, "field": "body", "rule": "max_body_bytes",
                              "reason": f"the body is larger than {state.max_body_bytes} bytes"}

        latency = state.faults.latency
        delay = (latency.ms / 1000 if latency is not None else 0.0) + \
            (fault.delay_s if fault is not None else 0.0)
        if delay:
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            else:
                if state.generation != generation:  # reset: this request belongs to the past
                    await _respond(send, STALE)
                    return
                # The server is shutting down: do not hold it up.
                dropping = False
                verdict = 503
                entry["error"] = {"index": None, "field": None, "rule": "shutdown",
                                  "reason": "the sandbox shut down during the delay"}

        # Each outcome is recorded before the client can see it, so that a client reading the
        # API right after its response finds its request there.
        if dropping:
            transport = self.connections.get(scope.get("client"))
            if transport is not None:
                entry["status"] = None
                await run_in_threadpool(state.record, entry, None, generation)
                await self._drop(transport, receive)
                return
            log.warning("drop_connection needs the sandbox's own server; answering 500 instead")
            verdict = 500

        if verdict is not None:
            extra = []
            if retry_after is not None and (busy or (fault is not None and verdict == fault.status)):
                extra.append((b"retry-after", str(retry_after).encode()))
            entry["status"] = verdict
            await run_in_threadpool(state.record, entry, None, generation)
            await _respond(send, verdict, extra)
            return

        channel = entry["channel_id"]
        status = await run_in_threadpool(state.process, entry, tag, body, channel, t0, generation)
        await _respond(send, status)

    @staticmethod
    async def _drop(transport: Any, receive: Receive) -> None:
        """Close the TCP connection at once (RST/FIN, no response bytes)."""
        transport.abort()
        # Wait until the server has seen the connection go, so it does not answer 500 itself.
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(disconnected(), 2)
        except asyncio.TimeoutError:
            pass


# --------------------------------------------------------------------------- the read/fault API
class BadQuery(ValueError):
    pass


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise BadQuery(f"{name} must be a non-negative integer")
    return int(raw)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _bytes(data: bytes) -> Response:
    return Response(data, media_type="application/json", headers={"cache-control": "no-store"})


def build_api(state: SandboxState, interrupts: Interrupts,
              in_progress: Callable[[], int] = lambda: 0) -> list[Route]:
    async def events(request: Request) -> Response:
        if request.method == "DELETE":
            await run_in_threadpool(state.reset)
            interrupts.fire()
            return _json({"reset": True})
        try:
            limit = _int_param(request, "limit", None)
            offset = _int_param(request, "offset", 0)
            tail = _int_param(request, "tail", None)
        except BadQuery as exc:
            return _json({"error": str(exc)}, 400)
        tag = request.query_params.get("tag") or None
        return _bytes(await run_in_threadpool(state.events_json, tag, limit, offset, tail))

    async def requests(request: Request) -> Response:
        try:
            status = _int_param(request, "status", None)
            limit = _int_param(request, "limit", None)
            offset = _int_param(request, "offset", 0)
            tail = _int_param(request, "tail", None)
        except BadQuery as exc:
            return _json({"error": str(exc)}, 400)
        return _bytes(await run_in_threadpool(state.requests_json, status, limit, offset, tail))

    async def stats(request: Request) -> Response:
        data = await run_in_threadpool(state.stats)
        data["in_progress"] = in_progress()  # requests being handled right now
        return _json(data)

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                parsed = parse_faults(orjson.loads(await request.body()))
            except orjson.JSONDecodeError:
                return _json({"error": "the body must be a JSON list of fault objects"}, 400)
            except FaultSpecError as exc:
                return _json({"error": str(exc)}, 400)
            if request.query_params.get("append") in ("1", "true", "yes"):
                state.faults.add(parsed)
            else:
                state.faults.replace(parsed)
        elif request.method == "DELETE":
            state.faults.clear()
        return _json(state.faults.public())

    async def console(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-store"})

    return [
        Route("/", console, methods=["GET"]),
        Route("/sandbox/api/events", events, methods=["GET", "DELETE"]),
        Route("/sandbox/api/requests", requests, methods=["GET"]),
        Route("/sandbox/api/stats", stats, methods=["GET"]),
        Route("/sandbox/api/faults", faults, methods=["GET", "POST", "DELETE"]),
        Mount("/sandbox/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


# --------------------------------------------------------------------------- the whole app
def _is_own_path(path: str) -> bool:
    return path == "/" or path == "/favicon.ico" or path.startswith("/sandbox/")


class SandboxApp:
    """ASGI app: Starlette routing, plus counting and logging of every emulated-API request."""

    def __init__(self, state: SandboxState, connections: ConnectionRegistry | None = None) -> None:
        self.state = state
        self.connections = connections if connections is not None else ConnectionRegistry()
        self.interrupts = Interrupts()
        endpoint = EventsEndpoint(state, self.connections, self.interrupts)
        routes = [Route(wire.EVENTS_PATH, endpoint, methods=[wire.METHOD])]
        routes += build_api(state, self.interrupts, lambda: endpoint.in_progress)
        self.starlette = Starlette(routes=routes)
        self.starlette.router.redirect_slashes = False  # LINE would not redirect either

    def begin_shutdown(self) -> None:
        """Cut injected delays short (call on the server's event loop)."""
        self.interrupts.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_own_path(scope["path"]):
            await self.starlette(scope, receive, send)
            return
        t0 = time.time()
        ctx = {"logged": False, "status": None}
        scope["sandbox.ctx"] = ctx

        async def record() -> None:
            if not ctx["logged"]:
                ctx["logged"] = True
                match = EVENTS_PATH.match(scope["path"])
                entry = _base_entry(scope, t0, match.group(1) if match else None)
                entry["status"] = ctx["status"]
                await run_in_threadpool(self.state.record, entry)

        async def send_and_record(message: MutableMapping[str, Any]) -> None:
            # Record before the response's last byte goes out (see EventsEndpoint).
            if message["type"] == "http.response.start":
                ctx["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await record()
            await send(message)

        await self.starlette(scope, receive, send_and_record)
        await record()


def create_app(state: SandboxState, connections: ConnectionRegistry | None = None) -> SandboxApp:
    return SandboxApp(state, connections)
