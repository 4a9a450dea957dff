"""Generic HTTP batch delivery: each batch is POSTed as one body; the output only says what a
response means.

What every HTTP output needs lives here once:
- retries of the same body, with doubling waits capped by the policy, and the server's
  Retry-After (through `backoff`);
- a per-output classifier that turns a response into a Verdict: accepted, rejected (split the
  batch in halves and resend each until the culprits stand alone), retry, or fatal (stop the
  run: nothing later can succeed);
- timeouts, and network errors treated as retryable;
- cancellation: a tripped CancelToken cancels every request in flight and every retry wait at
  once, and each batch still reports what was settled.

Requests run as tasks on an asyncio loop in a thread of their own, so cancellation never waits
for a socket, and the design admits several requests in flight (`parallelism`). The pipeline
thread only waits for a free slot (`reserve`) and submits (`send`).
"""
from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Mapping, Sequence

import backoff
import httpx

from connector.cancel import CancelToken
from connector.records import Batch, BatchOutcome, Rejection

from .body import JsonArrayBody
from .retry import RetryPolicy, retry_waits
from .sink import OutcomeCallback, Sink

# How long abort() waits for cancelled requests to report, and close() for the loop to stop.
_SETTLE_SECONDS = 10.0


@dataclass(frozen=True)
class Verdict:
    """What a response means, decided by the output."""

    ACCEPTED = "accepted"  # every record of the body was taken
    REJECTED = "rejected"  # some record was refused: split the body to find it
    RETRY = "retry"  # send the same body again (after a wait)
    FATAL = "fatal"  # stop the run

    kind: str
    reason: str | None = None  # rejected: why, per record; fatal: the error
    retry_after: float | None = None  # retry: the server's wish, in seconds


class RetryableResponse(Exception):
    """A response worth resending; carries the server's Retry-After, if any."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, RetryableResponse):
        return f"HTTP {exc.status}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    # httpx messages name the host and port, never headers, so a token cannot be in them.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HttpBatchDelivery(Sink):
    def __init__(self, *, url: str, headers: Mapping[str, str],
                 classify: Callable[[httpx.Response], Verdict], retry: RetryPolicy,
                 timeout: float, parallelism: int = 1) -> None:
        self.url = url
        self._headers = dict(headers)
        self._classify = classify
        self._timeout = timeout
        self._limit = max(1, parallelism)
        self._in_flight = 0
        self._slots = threading.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._remove_waker: Callable[[], None] | None = None
        self._stopping = False  # set on cancel and abort: batches not yet started stay unsent

        def on_backoff(details: dict[str, Any]) -> None:
            details["args"][1].retries += 1

        self._post_with_retry = backoff.on_exception(
            lambda: retry_waits(retry.initial_wait, retry.max_wait),
            (httpx.TransportError, RetryableResponse),
            max_tries=retry.max_retry + 1,
            jitter=None,
            on_backoff=on_backoff,
            logger=None,
        )(self._post_once)

    # ------------------------------------------------------------------ lifecycle
    def open(self, cancel: CancelToken, on_outcome: OutcomeCallback) -> None:
        super().open(cancel, on_outcome)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="connector-delivery",
                                        daemon=True)
        self._thread.start()
        self._client = self._run(self._make_client())
        self._remove_waker = cancel.add_callback(self._cancel_soon)

    async def _make_client(self) -> httpx.AsyncClient:
        # TCP_NODELAY: a body's last segment must not wait for the previous one's ACK (Nagle),
        # which costs ~40 ms per request on a keep-alive connection.
        transport = httpx.AsyncHTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        return httpx.AsyncClient(headers=self._headers, timeout=httpx.Timeout(self._timeout),
                                 transport=transport)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def reserve(self) -> bool:
        with self._slots:
            while self._in_flight >= self._limit and self.failure is None:
                self.cancel.raise_if_cancelled()
                self._slots.wait(0.1)
        self.cancel.raise_if_cancelled()
        return self.failure is None

    def send(self, batch: Batch) -> None:
        assert self._loop is not None
        with self._slots:
            self._in_flight += 1
        asyncio.run_coroutine_threadsafe(self._deliver_batch(batch), self._loop)

    def commit(self) -> None:
        with self._slots:
            while self._in_flight:
                self.cancel.raise_if_cancelled()
                self._slots.wait(0.1)

    def abort(self) -> None:
        if self._loop is None:
            return
        self._stopping = True
        self._loop.call_soon_threadsafe(self._cancel_tasks)
        with self._slots:
            self._slots.wait_for(lambda: self._in_flight == 0, _SETTLE_SECONDS)

    def close(self) -> None:
        if self._remove_waker is not None:
            self._remove_waker()
            self._remove_waker = None
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._client is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result(_SETTLE_SECONDS)
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._client = None
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(_SETTLE_SECONDS)
        if not loop.is_running():
            loop.close()

    # ------------------------------------------------------------------ cancellation
    def _cancel_soon(self) -> None:
        """CancelToken callback: may run in a signal handler, so it only schedules."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_tasks)

    def _cancel_tasks(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()

    def _fail(self, error: str | None) -> None:
        """A fatal outcome: nothing later can succeed, so stop the requests in flight too."""
        with self._slots:
            if self.failure is None:
                self.failure = error or "delivery failed"
            self._slots.notify_all()
        self._cancel_tasks()

    # ------------------------------------------------------------------ one batch
    async def _deliver_batch(self, batch: Batch) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        outcome = BatchOutcome()
        try:
            if self._stopping:
                raise asyncio.CancelledError
            await self._deliver(batch, batch.records, batch.rows, range(len(batch)), outcome)
        except asyncio.CancelledError:
            outcome.error = outcome.error or "cancelled while in flight"
        except Exception as exc:  # noqa: BLE001 - never lose a batch's outcome to a bug
            outcome.error = f"delivery failed: {describe_failure(exc)}"
            outcome.fatal = True
        finally:
            self._tasks.discard(task)
        if outcome.fatal:
            self._fail(outcome.error)
        try:
            self.on_outcome(batch, outcome)
        finally:
            with self._slots:
                self._in_flight -= 1
                self._slots.notify_all()

    async def _deliver(self, batch: Batch, records: Sequence[bytes], rows: Sequence[int],
                       positions: Sequence[int], outcome: BatchOutcome) -> None:
        if outcome.fatal or self.failure is not None:
            return
        try:
            verdict = await self._post_with_retry(records, outcome)
        except (httpx.TransportError, RetryableResponse) as exc:
            outcome.error = (f"gave up after {outcome.retries} retries: last error "
                             f"{describe_failure(exc)}")
            outcome.fatal = True
            return
        if verdict.kind == Verdict.ACCEPTED:
            outcome.accepted.extend(rows)
        elif verdict.kind == Verdict.REJECTED and len(records) > 1:
            mid = len(records) // 2
            await self._deliver(batch, records[:mid], rows[:mid], positions[:mid], outcome)
            await self._deliver(batch, records[mid:], rows[mid:], positions[mid:], outcome)
        elif verdict.kind == Verdict.REJECTED:
            outcome.rejected.append(Rejection(row=rows[0], batch=batch.index,
                                              position=positions[0],
                                              reason=verdict.reason or "rejected by the API"))
        else:
            outcome.error = verdict.reason or f"unexpected response from {self.url}"
            outcome.fatal = True

    async def _post_once(self, records: Sequence[bytes], outcome: BatchOutcome) -> Verdict:
        assert self._client is not None
        outcome.requests += 1
        body = JsonArrayBody(records)
        # An explicit Content-Length keeps httpx from switching the streamed body to chunked
        # transfer encoding, which APIs such as LINE's reject.
        response = await self._client.post(self.url, content=body.aiter(),
                                           headers={"Content-Length": str(body.length)})
        verdict = self._classify(response)
        if verdict.kind == Verdict.RETRY:
            raise RetryableResponse(response.status_code, verdict.retry_after)
        return verdict
