"""Deliver batches to the LINE Conversion API: retries, bisection of rejected batches, outcomes.

Status handling follows line-capi.md:
- 202: every event accepted.
- 400: LINE discarded the whole request and says not which event was bad; split the batch in two
  and resend each half until the culprits stand alone. Never resend the same payload unchanged.
- 401/403: the token is wrong or not bound to the tag; stop at once, nothing later can succeed.
- 413: the body is too large for the server; split it (not a rejection of any event).
- 429, 5xx and network errors: resend the same body with exponential backoff, honouring
  Retry-After. A resend is safe because LINE deduplicates on (event_name, deduplication_key).
"""
from __future__ import annotations

import email.utils
import socket
import time
from typing import Any, Generator, Iterator, Sequence

import backoff
import httpx

from connector.plugins.base import Batch, BatchOutcome, Rejection, Sink

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
AUTH_STATUS = frozenset({401, 403})


class RetryableStatus(Exception):
    """A response worth resending; carries the server's Retry-After, if any."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_waits(initial: float, maximum: float) -> Generator[float, Any, None]:
    """backoff wait generator: doubling from `initial` up to `maximum`, or the server's Retry-After.

    backoff sends the exception that caused the retry into the generator, which is how the
    Retry-After header reaches the wait.
    """
    exc = yield  # type: ignore[misc]
    step = 0
    while True:
        wait = min(initial * (2 ** step), maximum)
        step += 1
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = min(retry_after, maximum)
        exc = yield wait


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, RetryableStatus):
        return f"HTTP {exc.status}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    # httpx messages name the host and port, never headers, so the token cannot be in them.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class LineSink(Sink):
    def __init__(self, *, endpoint: str, tag_id: str, token: str, channel_id: str | None,
                 timeout: float, max_retry: int, initial_retry_wait: float,
                 max_retry_wait: float) -> None:
        headers = {"Content-Type": "application/json", "X-Line-TagAccessToken": token,
                   "User-Agent": "connector-line-conversion/0.1"}
        if channel_id:
            headers["X-Line-ChannelID"] = channel_id
        self._url = f"{endpoint.rstrip('/')}/v1/{tag_id}/events"
        # TCP_NODELAY: a body's last segment must not wait for the previous one's ACK (Nagle),
        # which costs ~40 ms per request on a keep-alive connection.
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout),
                                    transport=transport)

        def on_backoff(details: dict[str, Any]) -> None:
            details["args"][1].retries += 1

        self._post_with_retry = backoff.on_exception(
            lambda: retry_waits(initial_retry_wait, max_retry_wait),
            (httpx.TransportError, RetryableStatus),
            max_tries=max_retry + 1,
            jitter=None,
            on_backoff=on_backoff,
            logger=None,
        )(self._post_once)

    def _post_once(self, body: "JsonArrayBody", outcome: BatchOutcome) -> httpx.Response:
        outcome.requests += 1
        # An explicit Content-Length keeps httpx from switching the streamed body to chunked
        # transfer encoding, which LINE rejects.
        response = self._client.post(self._url, content=iter(body),
                                     headers={"Content-Length": str(body.length)})
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableStatus(response.status_code,
                                  parse_retry_after(response.headers.get("Retry-After")))
        return response

    def send(self, batch: Batch, outcome: BatchOutcome) -> None:
        self._deliver(batch, batch.records, batch.rows, range(len(batch)), outcome)

    def _deliver(self, batch: Batch, records: Sequence[bytes], rows: Sequence[int],
                 positions: Sequence[int], outcome: BatchOutcome) -> None:
        if outcome.fatal:
            outcome.failed.extend(rows)
            return
        body = JsonArrayBody(records)
        try:
            response = self._post_with_retry(body, outcome)
        except (httpx.TransportError, RetryableStatus) as exc:
            outcome.failed.extend(rows)
            outcome.error = (f"gave up after {outcome.retries} retries: last error "
                             f"{_describe_failure(exc)}")
            outcome.fatal = True
            return
        status = response.status_code
        if 200 <= status < 300:
            outcome.accepted.extend(rows)
        elif status in AUTH_STATUS:
            outcome.failed.extend(rows)
            outcome.error = (f"HTTP {status}: the access token is invalid or not bound to this "
                             "LINE tag (check access_token and line_tag_id)")
            outcome.fatal = True
        elif status in (400, 413) and len(records) > 1:
            mid = len(records) // 2
            self._deliver(batch, records[:mid], rows[:mid], positions[:mid], outcome)
            self._deliver(batch, records[mid:], rows[mid:], positions[mid:], outcome)
        elif status in (400, 413):
            outcome.rejected.append(Rejection(row=rows[0], batch=batch.index,
                                              position=positions[0],
                                              reason=_rejection_reason(response)))
        else:
            outcome.failed.extend(rows)
            outcome.error = f"unexpected HTTP {status} from {self._url}"
            outcome.fatal = True

    def close(self) -> None:
        self._client.close()


class JsonArrayBody:
    """The records as one JSON array, produced in slices as it is sent.

    A joined body would be a second copy of the whole batch (65 MB at 100,000 events). Iterating
    again starts over, so a retry resends the same bytes.
    """

    SLICE_BYTES = 256 * 1024

    def __init__(self, records: Sequence[bytes]) -> None:
        self.records = records
        self.length = sum(map(len, records)) + max(len(records) - 1, 0) + 2

    def __iter__(self) -> Iterator[bytes]:
        records = self.records
        n = len(records)
        # Slices of about SLICE_BYTES by the average record size, each joined in one C call.
        step = max(1, self.SLICE_BYTES * n // max(self.length, 1))
        opener = b"["
        for start in range(0, n, step):
            yield opener + b",".join(records[start:start + step])
            opener = b","
        yield b"]" if n else b"[]"

    def __bytes__(self) -> bytes:
        return b"".join(self)


def _rejection_reason(response: httpx.Response) -> str:
    """LINE gives no detail; the local sandbox names the field and rule (never the value)."""
    if response.status_code == 413:
        return "rejected by the API with HTTP 413: the event alone is larger than the body limit"
    reason = "rejected by the API with HTTP 400"
    try:
        detail = response.json()
    except ValueError:
        return reason
    if isinstance(detail, dict) and isinstance(detail.get("field"), str):
        rule = detail.get("reason") or detail.get("rule") or ""
        return f"{reason}: {detail['field'][:64]} {str(rule)[:200]}".rstrip()
    return reason


class DryRunSink(Sink):
    """Writes the exact request bodies, one JSON array per line, and sends nothing."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()

    def send(self, batch: Batch, outcome: BatchOutcome) -> None:
        self._file.writelines(JsonArrayBody(batch.records))
        self._file.write(b"\n")
        outcome.accepted.extend(batch.rows)

    def close(self) -> None:
        self._file.close()
