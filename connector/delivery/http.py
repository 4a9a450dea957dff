"""Generic HTTP batch delivery: each batch is POSTed as one body; the output only says what a
response means.

What every HTTP output needs lives here once:
- retries of the same body, with doubling waits capped by the policy and the server's
  Retry-After, in waits a cancellation cuts short;
- a per-output classifier that turns a response into a Verdict: accepted, rejected (split the
  batch in halves and resend each until the culprits stand alone), retry, or fatal (stop the
  run: nothing later can succeed);
- timeouts, and network errors treated as retryable;
- cancellation: a tripped CancelToken wakes every retry wait and shuts down every connection,
  so requests in flight end at once; each batch still reports what was settled.

Each request in flight has a sender thread of its own (the calling thread is the first), over a
keep-alive connection of its own, so that at one request in flight nothing changes hands twice.
Outcomes come back through the callback, in whatever order requests end.
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import httpx

from connector.cancel import CancelToken
from connector.errors import Cancelled
from connector.records import Batch, BatchOutcome, Rejection
from connector.wording import plural

from .body import JsonArrayBody
from .limiter import PROBE_SECONDS, ConcurrencyLimiter
from .retry import RetryPolicy
from .sink import DeliveryStats, OutcomeCallback, Sink, TakeBatch
from .transport import AbortableTransport

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
    pushback: str | None = None  # retry because the destination is overloaded (e.g. "429")


class RetryableResponse(Exception):
    """A response worth resending; carries the server's Retry-After, if any."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


# Bodies held by the senders (in flight or waiting to be retried) may total at most this many
# bytes; one batch is always allowed, however large. At max_records 100,000 a body is ~65 MB.
MAX_BYTES_ENV = "CONNECTOR_MAX_BYTES_IN_FLIGHT"
DEFAULT_MAX_BYTES = 96 * 2**20


# Seconds before the limit may again reach a level the destination pushed back at.
PROBE_SECONDS_ENV = "CONNECTOR_PROBE_SECONDS"


def _env_number(name: str, default: float, lo: float) -> float:
    try:
        return max(lo, float(os.environ.get(name, default)))
    except ValueError:
        return default


def max_bytes_in_flight() -> int:
    return int(_env_number(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, 1))


RETRYABLE = (httpx.TransportError, RetryableResponse)


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
                 timeout: float, parallelism: int = 1, adaptive: bool = False,
                 max_bytes: int | None = None) -> None:
        self.url = url
        self._headers = dict(headers)
        self._classify = classify
        self._retry = retry
        self._timeout = timeout
        self.limiter = ConcurrencyLimiter(
            parallelism, adaptive, probe_seconds=_env_number(PROBE_SECONDS_ENV, PROBE_SECONDS, 0))
        self._senders = max(1, parallelism)
        self._max_bytes = max_bytes_in_flight() if max_bytes is None else max_bytes
        # Batches held by senders (in flight or waiting to be retried), and their bytes.
        self._held = 0
        self._held_bytes = 0
        self._last_bytes = 0
        self._slots = threading.Condition()
        self._transport: AbortableTransport | None = None
        self._client: httpx.Client | None = None
        self._remove_waker: Callable[[], None] | None = None
        # Set to stop: retry waits end, connections are shut down, nothing more is sent.
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def open(self, cancel: CancelToken, on_outcome: OutcomeCallback) -> None:
        super().open(cancel, on_outcome)
        # TCP_NODELAY: a body's last segment must not wait for the previous one's ACK (Nagle),
        # which costs ~40 ms per request on a keep-alive connection.
        self._transport = AbortableTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            limits=httpx.Limits(max_connections=self._senders,
                                max_keepalive_connections=self._senders))
        self._client = httpx.Client(headers=self._headers, timeout=httpx.Timeout(self._timeout),
                                    transport=self._transport)
        self._remove_waker = cancel.add_callback(self._stop_now)

    def deliver(self, take: TakeBatch) -> None:
        """Senders take batches and send them: the calling thread, plus one thread for each
        further request the limiter allows (never more than `parallelism`), started as the
        limit grows and ended as it falls, so idle threads do not fight over the interpreter.
        A sender takes a batch only when the bytes already held leave room for it."""
        if self._senders == 1:
            return super().deliver(take)
        failures: list[BaseException] = []
        done = threading.Event()  # no more batches: senders finish what they hold and stop
        threads: list[threading.Thread] = []
        live = [1]  # senders running, the calling thread included
        lock = threading.Lock()

        def grow() -> None:
            with lock:
                while not done.is_set() and live[0] < min(self.limiter.limit, self._senders):
                    live[0] += 1
                    thread = threading.Thread(target=sender, args=(False,), daemon=True,
                                              name=f"connector-sender-{len(threads) + 1}")
                    threads.append(thread)
                    thread.start()

        def shrink() -> bool:
            with lock:
                if live[0] > max(1, self.limiter.limit):
                    live[0] -= 1
                    return True
                return False

        def sender(first: bool) -> None:
            try:
                while not done.is_set() and self._hold():
                    try:
                        batch = take()
                    except BaseException:
                        self._unhold(0)
                        raise
                    if batch is None:
                        self._unhold(0)
                        done.set()
                        return
                    self._send_held(batch)
                    batch = None  # not held while the next one is taken
                    if not first and shrink():
                        return
                    grow()
            except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
                failures.append(exc)
                done.set()

        grow()
        sender(True)
        while True:  # senders may still be starting others while the first one ends
            with lock:
                pending = list(threads)
            for thread in pending:
                thread.join()
            with lock:
                if len(threads) == len(pending):
                    break
        if failures:
            raise failures[0]
        self.cancel.raise_if_cancelled()

    def send(self, batch: Batch) -> None:
        with self._slots:
            self._held += 1
        self._send_held(batch)

    def abort(self) -> None:
        self._stop_now()

    def close(self) -> None:
        if self._remove_waker is not None:
            self._remove_waker()
            self._remove_waker = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def stats(self) -> DeliveryStats:
        limiter = self.limiter
        return DeliveryStats(limiter.peak_in_flight, limiter.limit, dict(limiter.lowered))

    # ------------------------------------------------------------------ senders and stopping
    def _hold(self) -> bool:
        """Wait until a sender may take one more batch; False once the sink failed."""
        with self._slots:
            # Until one batch has been sized, one sender at a time: the budget needs a size.
            while self.failure is None and self._held and (
                    not self._last_bytes or self._held_bytes + self._last_bytes > self._max_bytes):
                self.cancel.raise_if_cancelled()
                self._slots.wait(0.1)
            self.cancel.raise_if_cancelled()
            if self.failure is not None:
                return False
            self._held += 1
            return True

    def _unhold(self, size: int) -> None:
        with self._slots:
            self._held -= 1
            self._held_bytes -= size
            self._slots.notify_all()

    def _stop_now(self) -> None:
        """Stop every request: also a CancelToken callback, so it may run in a signal handler;
        it only sets a flag and shuts sockets down."""
        self._stopping.set()
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, error: str | None) -> None:
        """A fatal outcome: nothing later can succeed, so stop the requests in flight too."""
        with self._slots:
            if self.failure is None:
                self.failure = error or "delivery failed"
            self._slots.notify_all()
        self._stop_now()

    # ------------------------------------------------------------------ one batch
    def _send_held(self, batch: Batch) -> None:
        """Deliver a batch a sender holds; always reports an outcome and lets go of it."""
        size = sum(map(len, batch.records))
        with self._slots:
            self._held_bytes += size
            self._last_bytes = size
            self._slots.notify_all()
        outcome = BatchOutcome()
        try:
            if self._stopping.is_set():
                raise Cancelled
            self._deliver(batch, batch.records, batch.rows, range(len(batch)), outcome)
        except Cancelled:
            outcome.error = outcome.error or "cancelled while in flight"
        except Exception as exc:  # noqa: BLE001 - never lose a batch's outcome to a bug
            outcome.error = f"delivery failed: {describe_failure(exc)}"
            outcome.fatal = True
        if outcome.fatal:
            self._fail(outcome.error)
        try:
            self.on_outcome(batch, outcome)
        finally:
            self._unhold(size)

    def _deliver(self, batch: Batch, records: Sequence[bytes], rows: Sequence[int],
                 positions: Sequence[int], outcome: BatchOutcome) -> None:
        if outcome.fatal or self.failure is not None:
            return
        try:
            verdict = self._post_with_retry(records, outcome)
        except RETRYABLE as exc:
            if self._stopping.is_set():
                raise Cancelled from None
            outcome.error = (f"gave up after {plural(outcome.retries, 'retry')}: last error "
                             f"{describe_failure(exc)}")
            outcome.fatal = True
            return
        if verdict.kind == Verdict.ACCEPTED:
            outcome.accepted.extend(rows)
        elif verdict.kind == Verdict.REJECTED and len(records) > 1:
            mid = len(records) // 2
            self._deliver(batch, records[:mid], rows[:mid], positions[:mid], outcome)
            self._deliver(batch, records[mid:], rows[mid:], positions[mid:], outcome)
        elif verdict.kind == Verdict.REJECTED:
            outcome.rejected.append(Rejection(row=rows[0], batch=batch.index,
                                              position=positions[0],
                                              reason=verdict.reason or "rejected by the API"))
        else:
            outcome.error = verdict.reason or f"unexpected response from {self.url}"
            outcome.fatal = True

    # ------------------------------------------------------------------ one request, retried
    def _post_with_retry(self, records: Sequence[bytes], outcome: BatchOutcome) -> Verdict:
        """Send the same body until a verdict other than retry, at most max_retry + 1 times.

        The loop is ours rather than a retry library's: the wait must end the moment the run is
        cancelled (backoff sleeps with time.sleep), and nothing may keep the body alive once the
        request is settled (a per-call tenacity state held each batch until a collection).
        """
        attempt = 1
        while True:
            try:
                return self._post_once(records, outcome)
            except RETRYABLE as exc:
                if attempt > self._retry.max_retry or self._stopping.is_set():
                    raise
                wait = self._retry.wait(attempt, getattr(exc, "retry_after", None))
            attempt += 1
            outcome.retries += 1
            if self._stopping.wait(wait):
                raise Cancelled

    def _post_once(self, records: Sequence[bytes], outcome: BatchOutcome) -> Verdict:
        assert self._client is not None
        epoch = self.limiter.acquire(self.cancel)
        success, pushback = False, None
        try:
            if self._stopping.is_set():
                raise Cancelled
            outcome.requests += 1
            body = JsonArrayBody(records)
            # An explicit Content-Length keeps httpx from switching the streamed body to
            # chunked transfer encoding, which APIs such as LINE's reject.
            try:
                response = self._client.post(self.url, content=iter(body),
                                             headers={"Content-Length": str(body.length)})
            except httpx.TimeoutException:
                pushback = "timeout"
                raise
            verdict = self._classify(response)
            if verdict.retry_after is not None:
                self.limiter.hold(min(verdict.retry_after, self._retry.max_wait))
            if verdict.kind == Verdict.RETRY:
                pushback = verdict.pushback
                raise RetryableResponse(response.status_code, verdict.retry_after)
            success = verdict.kind == Verdict.ACCEPTED
            return verdict
        finally:
            self.limiter.release(epoch, success=success, pushback=pushback)
