"""An httpx transport whose requests in flight can be stopped from another thread.

Closing a socket does not wake a thread blocked reading from it; shutting it down does. This
transport remembers the connections it opens (through httpcore's network-backend interface) so
that `abort()` can shut every one down: each request in flight then fails at once with a
transport error, which the delivery reports as cancelled.
"""
from __future__ import annotations

import socket
import threading
import weakref
from typing import Any, Iterable

import httpcore
import httpx


class _TrackedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, registry: "_Registry") -> None:
        self._inner = inner
        self._registry = registry
        registry.add(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._registry.discard(self)
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        self._registry.discard(self)
        return _TrackedStream(self._inner.start_tls(ssl_context, server_hostname, timeout),
                              self._registry)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def shutdown(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed or never connected
                pass


class _Registry:
    def __init__(self) -> None:
        self._streams: "weakref.WeakSet[_TrackedStream]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self.aborted = False

    def add(self, stream: _TrackedStream) -> None:
        with self._lock:
            self._streams.add(stream)

    def discard(self, stream: _TrackedStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def snapshot(self) -> Iterable[_TrackedStream]:
        with self._lock:
            return list(self._streams)


class _TrackingBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, registry: _Registry) -> None:
        self._inner = inner
        self._registry = registry

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return self._track(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return self._track(self._inner.connect_unix_socket(path, timeout, socket_options))

    def _track(self, inner: httpcore.NetworkStream) -> httpcore.NetworkStream:
        stream = _TrackedStream(inner, self._registry)
        # abort() sets the flag before it looks at the streams: a connection opened meanwhile is
        # either among those it shuts down, or sees the flag here.
        if self._registry.aborted:
            stream.close()
            raise httpcore.ConnectError("the delivery was stopped")
        return stream

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AbortableTransport(httpx.HTTPTransport):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._registry = _Registry()
        # httpx builds its httpcore pool itself and takes no network backend, so the pool's
        # backend is wrapped after the fact (httpx < 0.29 pins this layout; the cancellation
        # tests fail loudly if it ever changes).
        pool = self._pool
        pool._network_backend = _TrackingBackend(pool._network_backend, self._registry)

    def abort(self) -> None:
        """Shut down every open connection, and every one opened from now on: requests in
        flight fail at once. Never blocks for long and never raises, so a CancelToken callback
        may call it."""
        self._registry.aborted = True
        for stream in self._registry.snapshot():
            stream.shutdown()
