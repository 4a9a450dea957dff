"""LINE Conversion API v1, as it is on the wire: the request path, headers, limits and what each
response status means. Declared once: the output's delivery, the sandbox that emulates the API,
and the generated docs all read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import httpx

from connector.delivery import Verdict, parse_retry_after

DEFAULT_ENDPOINT = "https://conversion-api.tr.line.me"
# Also Starlette's route syntax: the sandbox serves exactly this path.
EVENTS_PATH = "/v1/{line_tag_id}/events"
METHOD = "POST"
CONTENT_TYPE = "application/json"
TOKEN_HEADER = "X-Line-TagAccessToken"  # the raw token, no "Bearer"
CHANNEL_HEADER = "X-Line-ChannelID"  # only when events carry user.line_uid
USER_AGENT = "connector-line-conversion/0.1"
# Per request (LINE's reference, unverified there): events, and body size ("300 MB", read
# strictly as 300,000,000 bytes).
MAX_EVENTS_PER_REQUEST = 100_000
MAX_BODY_BYTES = 300_000_000
# LINE drops a second event with the same event_name and deduplication_key within this window.
DEDUP_WINDOW_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class StatusRule:
    statuses: tuple[int, ...]
    verdict: str  # a Verdict kind
    action: str  # what the exporter does (docs)
    pushback: bool = False  # retry, and the destination says it is overloaded: lower concurrency

    @property
    def label(self) -> str:
        return " / ".join(map(str, self.statuses)) if len(self.statuses) <= 2 else \
            ", ".join(map(str, self.statuses))


STATUS_RULES: tuple[StatusRule, ...] = (
    StatusRule((202,), Verdict.ACCEPTED, "all events of the request accepted"),
    StatusRule((400,), Verdict.REJECTED,
               "LINE discarded the whole request without saying which event was bad: the batch is "
               "split in halves and resent until the culprits stand alone (about 2·log2(batch) "
               "extra requests per bad event). They are reported as `rejected` with their row and "
               "batch position; the rest is accepted."),
    StatusRule((401, 403), Verdict.FATAL,
               "the token is invalid or not bound to the tag: stop at once, no retry"),
    StatusRule((413,), Verdict.REJECTED,
               "the body is larger than the server takes: the batch is split the same way; a "
               "single event that is still too large is reported as `rejected`"),
    StatusRule((429, 503), Verdict.RETRY,
               "the API is overloaded: halve the requests in flight (with "
               "`adaptive_parallelism`), then resend the same body like a 500; a `Retry-After` "
               "header holds back every request until it has passed", pushback=True),
    StatusRule((500, 502, 504), Verdict.RETRY,
               "resend the same body (safe: LINE deduplicates on `event_name` + "
               "`deduplication_key`; a 500 may have been partly accepted), waiting "
               "`initial_retry_wait`, doubling up to `max_retry_wait`, at most `max_retry` times; "
               "a `Retry-After` header wins"),
)
_BY_STATUS: Mapping[int, StatusRule] = {s: r for r in STATUS_RULES for s in r.statuses}
RETRYABLE_STATUSES = frozenset(s for r in STATUS_RULES if r.verdict == Verdict.RETRY
                               for s in r.statuses)


def events_url(endpoint: str, line_tag_id: str) -> str:
    return endpoint.rstrip("/") + EVENTS_PATH.format(line_tag_id=line_tag_id)


def request_headers(token: str, channel_id: str | None) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE, TOKEN_HEADER: token, "User-Agent": USER_AGENT}
    if channel_id:
        headers[CHANNEL_HEADER] = channel_id
    return headers


def classify(response: httpx.Response) -> Verdict:
    """What a response from the events endpoint means."""
    status = response.status_code
    if 200 <= status < 300:
        return Verdict(Verdict.ACCEPTED)
    rule = _BY_STATUS.get(status)
    if rule is None:
        return Verdict(Verdict.FATAL, f"unexpected HTTP {status} from {response.request.url}")
    if rule.verdict == Verdict.RETRY:
        return Verdict(Verdict.RETRY,
                       retry_after=parse_retry_after(response.headers.get("Retry-After")),
                       pushback=str(status) if rule.pushback else None)
    if rule.verdict == Verdict.FATAL:
        return Verdict(Verdict.FATAL, f"HTTP {status}: the access token is invalid or not bound "
                                      "to this LINE tag (check access_token and line_tag_id)")
    return Verdict(Verdict.REJECTED, _rejection_reason(response))


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


def statuses_markdown() -> str:
    """The README's table of responses and what the exporter does."""
    rows = ["| Response | What the exporter does |", "|---|---|"]
    for rule in STATUS_RULES:
        label = rule.label
        if rule.verdict == Verdict.RETRY:
            label += ", timeouts" if rule.pushback else ", connection errors"
        rows.append(f"| {label} | {rule.action} |")
    rows.append("| retries exhausted | stop; the report lists the accepted rows and the ones "
                "that were not |")
    return "\n".join(rows)
