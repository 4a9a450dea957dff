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
from .retry import RetryPolicy
from .sink import OutcomeCallback, Sink, TakeBatch
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


class RetryableResponse(Exception):
    """A response worth resending; carries the server's Retry-After, if any."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


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
                 timeout: float, parallelism: int = 1) -> None:
        self.url = url
        self._headers = dict(headers)
        self._classify = classify
        self._retry = retry
        self._timeout = timeout
        self._limit = max(1, parallelism)
        self._in_flight = 0
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
            limits=httpx.Limits(max_connections=self._limit,
                                max_keepalive_connections=self._limit))
        self._client = httpx.Client(headers=self._headers, timeout=httpx.Timeout(self._timeout),
                                    transport=self._transport)
        self._remove_waker = cancel.add_callback(self._stop_now)

    def deliver(self, take: TakeBatch) -> None:
        """Senders take batches and send them, as many at once as the limit allows: the calling
        thread, plus a thread for each further request in flight. A sender takes a batch only
        once it holds a slot, so batches in memory stay bounded."""
        if self._limit == 1:
            return super().deliver(take)
        failures: list[BaseException] = []
        done = threading.Event()  # no more batches: senders finish what they hold and stop

        def sender() -> None:
            try:
                while not done.is_set() and self._acquire():
                    try:
                        batch = take()
                    except BaseException:
                        self._release()
                        raise
                    if batch is None:
                        self._release()
                        done.set()
                        return
                    self._send_held(batch)
                    batch = None  # not held while the next one is taken
            except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
                failures.append(exc)
                done.set()

        helpers = [threading.Thread(target=sender, name=f"connector-sender-{i}", daemon=True)
                   for i in range(1, self._limit)]
        for thread in helpers:
            thread.start()
        sender()
        for thread in helpers:
            thread.join()
        if failures:
            raise failures[0]
        self.cancel.raise_if_cancelled()

    def send(self, batch: Batch) -> None:
        with self._slots:
            self._in_flight += 1
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

    # ------------------------------------------------------------------ slots and stopping
    def _acquire(self) -> bool:
        """Wait for a free slot; False once the sink failed. Raises Cancelled."""
        with self._slots:
            while self._in_flight >= self._limit and self.failure is None:
                self.cancel.raise_if_cancelled()
                self._slots.wait(0.1)
            self.cancel.raise_if_cancelled()
            if self.failure is not None:
                return False
            self._in_flight += 1
            return True

    def _release(self) -> None:
        with self._slots:
            self._in_flight -= 1
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
        """Deliver a batch whose slot is held; always reports an outcome and frees the slot."""
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
            self._release()

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
        if self._stopping.is_set():
            raise Cancelled
        outcome.requests += 1
        body = JsonArrayBody(records)
        # An explicit Content-Length keeps httpx from switching the streamed body to chunked
        # transfer encoding, which APIs such as LINE's reject.
        response = self._client.post(self.url, content=iter(body),
                                     headers={"Content-Length": str(body.length)})
        verdict = self._classify(response)
        if verdict.kind == Verdict.RETRY:
            raise RetryableResponse(response.status_code, verdict.retry_after)
        return verdict

