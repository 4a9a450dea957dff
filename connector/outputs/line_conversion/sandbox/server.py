"""Running the sandbox: the uvicorn server, and `run_sandbox`, the in-process context manager."""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from typing import Any, Iterable, Iterator, Mapping

import httpx
import uvicorn

from .. import wire
from .app import ConnectionRegistry, SandboxApp, create_app, tracking_protocol
from .faults import parse_faults
from .state import DEFAULT_DEDUP_WINDOW, SandboxState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket (port 0: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and accepted sockets inherit it. Without it, keep-alive responses stall ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections made before the server loop runs wait in the backlog
    except BaseException:
        sock.close()
        raise
    return sock


class SandboxServer(uvicorn.Server):
    """uvicorn's server, which also cuts injected delays short when it shuts down."""

    def __init__(self, config: uvicorn.Config, app: SandboxApp) -> None:
        super().__init__(config)
        self.sandbox_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sandbox_app.begin_shutdown()
        await super().shutdown(sockets=sockets)


def make_server(state: SandboxState) -> SandboxServer:
    connections = ConnectionRegistry()
    app = create_app(state, connections)
    config = uvicorn.Config(
        app,
        # h11, with transport tracking for drop_connection.
        http=tracking_protocol(connections),
        log_level="warning",
        access_log=False,
        lifespan="off",
        # scope["client"] must stay the TCP peer: drop_connection finds the transport by it.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return SandboxServer(config, app)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Sandbox:
    """A running sandbox. Its helpers use the sandbox's own HTTP API, like any client would."""

    def __init__(self, url: str, state: SandboxState) -> None:
        self.url = url
        self.state = state  # the in-process state, for white-box checks
        self._client = httpx.Client(base_url=url, timeout=30.0, trust_env=False)

    def events_url(self, tag: str) -> str:
        """The emulated endpoint for one tag: `{url}/v1/{tag}/events`."""
        return wire.events_url(self.url, tag)

    def _get(self, path: str, **params: Any) -> Any:
        response = self._client.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def events(self, tag: str | None = None, *, limit: int | None = None,
               offset: int | None = None) -> list[dict[str, Any]]:
        """Accepted events in arrival order: [{"id", "tag", "received_at", "event"}]."""
        return self._get("/sandbox/api/events", tag=tag, limit=limit, offset=offset)["events"]

    def stats(self) -> dict[str, Any]:
        return self._get("/sandbox/api/stats")

    def requests(self, status: int | None = None) -> list[dict[str, Any]]:
        """The request log (oldest first), optionally only one status."""
        return self._get("/sandbox/api/requests", status=status)["requests"]

    def faults(self) -> dict[str, Any]:
        return self._get("/sandbox/api/faults")

    def set_faults(self, faults: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
        """Replace the pending faults and standing rules."""
        response = self._client.post("/sandbox/api/faults", json=faults)
        if response.status_code == 400:
            raise ValueError(response.json()["error"])
        response.raise_for_status()
        return response.json()

    def clear_faults(self) -> dict[str, Any]:
        response = self._client.delete("/sandbox/api/faults")
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Empty the store, the counters and the request log (faults stay)."""
        self._client.delete("/sandbox/api/events").raise_for_status()

    def close(self) -> None:
        self._client.close()


@contextlib.contextmanager
def run_sandbox(
    tags: Mapping[str, str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    faults: Iterable[dict[str, Any]] | None = None,
    max_body_bytes: int | None = None,
    *,
    dedup_window: float = DEFAULT_DEDUP_WINDOW,
    host: str = DEFAULT_HOST,
    port: int = 0,
    startup_timeout: float = 10.0,
) -> Iterator[Sandbox]:
    """Run the sandbox on a background thread; yields a `Sandbox` with `.url`.

    tags: {line_tag_id: token}; None accepts any tag with any non-empty token.
    faults: fault specs (dicts as in POST /sandbox/api/faults) active from the start.
    dedup_window: seconds during which an event with the same event_name and deduplication_key
    is a duplicate (LINE's 30 days by default; 0: no dedup).
    """
    parsed = parse_faults(list(faults)) if faults else []
    state = SandboxState(tags=tags, data_dir=data_dir, faults=parsed,
                         max_body_bytes=max_body_bytes, dedup_window=dedup_window)
    sock = None
    try:
        sock = bind_socket(host, port)
        server = make_server(state)
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)

        thread = threading.Thread(target=serve, name="connector-sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError("the sandbox server did not start") from (
                    failure[0] if failure else None)
            if time.monotonic() > deadline:
                server.should_exit = server.force_exit = True
                raise RuntimeError(f"the sandbox server did not start in {startup_timeout} s")
            time.sleep(0.005)
        sandbox = Sandbox(base_url(sock), state)
        try:
            yield sandbox
        finally:
            sandbox.close()
            server.should_exit = True
            thread.join(2.0)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5.0)
    finally:
        if sock is not None:
            sock.close()
        state.close()
