"""Fault injection for the sandbox: one-off faults in a queue and standing `reject_where` rules.

A fault spec is a JSON object. One-off kinds (consumed in order by the next `/v1/...` requests,
each `times` times, default 1):

    {"status": 500, "times": 2}          answer that status, store nothing
    {"status": 429, "retry_after": 1}    ... with a Retry-After header
    {"delay_s": 3}                       sleep, then process normally
    {"drop_connection": true}            read the request, then close the TCP connection
                                         without any response

`delay_s` may be combined with `status` or `drop_connection` (the delay comes first).

The standing kinds are not consumed; they hold until the faults are cleared:

    {"reject_where": {"deduplication_key": "k-13"}}
                                         400 for every request holding an event that matches
    {"latency_ms": 100}                  every request waits this long before it is answered
                                         (a round trip to a distant API)
    {"concurrency_limit": 4, "retry_after": 1}
                                         a request that arrives while 4 are in progress is
                                         answered 429 with Retry-After (default 1 second)

For reject_where each key is looked up in `event` and `user` (or give a dotted path such as
`"user.external_id"` or `"custom.currency"`); all keys of one rule must match the same event.
A later latency_ms or concurrency_limit replaces an earlier one.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

ONE_OFF_KEYS = frozenset({"status", "retry_after", "times", "delay_s", "drop_connection"})
STANDING_KEYS = frozenset({"reject_where", "latency_ms", "concurrency_limit"})
SECTIONS = ("event", "user", "web", "custom")
# Where a bare key of a reject_where rule is looked up.
BARE_KEY_SECTIONS = ("event", "user")


class FaultSpecError(ValueError):
    """A fault spec that cannot be used; the message says why."""


@dataclass(frozen=True)
class Fault:
    """One one-off fault (before `times` is applied)."""

    status: int | None = None
    retry_after: int | str | None = None
    delay_s: float = 0.0
    drop_connection: bool = False
    times: int = 1

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.status is not None:
            out["status"] = self.status
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.delay_s:
            out["delay_s"] = self.delay_s
        if self.drop_connection:
            out["drop_connection"] = True
        return out


@dataclass(frozen=True)
class Latency:
    """Standing: every request is answered this many milliseconds late."""

    ms: float

    def public(self) -> dict[str, Any]:
        return {"latency_ms": self.ms}


@dataclass(frozen=True)
class ConcurrencyLimit:
    """Standing: 429 with Retry-After for a request beyond `limit` in progress at once."""

    limit: int
    retry_after: int

    def public(self) -> dict[str, Any]:
        return {"concurrency_limit": self.limit, "retry_after": self.retry_after}


Standing = Union["RejectRule", Latency, ConcurrencyLimit]


@dataclass(frozen=True)
class RejectRule:
    """A standing rule: 400 for any request holding an event that matches every condition."""

    where: tuple[tuple[tuple[str, ...], str, Any], ...]  # (sections to look in, key, value)
    spec: Mapping[str, Any]

    def matches(self, ev: Any) -> str | None:
        """The first condition's key when `ev` matches the whole rule, else None."""
        if not isinstance(ev, dict):
            return None
        for sections, key, value in self.where:
            for section in sections:
                obj = ev.get(section)
                if isinstance(obj, dict) and key in obj and _same(obj[key], value):
                    break
            else:
                return None
        return self.where[0][1]

    def public(self) -> dict[str, Any]:
        return {"reject_where": dict(self.spec)}


def _same(a: Any, b: Any) -> bool:
    # JSON equality without True == 1 surprises.
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b
    )


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultSpecError(f"{name} must be a number")
    if value < 0:
        raise FaultSpecError(f"{name} must not be negative")
    return float(value)


def _whole(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise FaultSpecError(f"{name} must be a whole number >= {lo}")
    return value


def parse_fault(spec: Any) -> Fault | Standing:
    """Validate one fault spec (the JSON object) and return its typed form."""
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault must be a JSON object")
    if "latency_ms" in spec:
        if len(spec) != 1:
            raise FaultSpecError("latency_ms cannot be combined with other keys")
        return Latency(_number("latency_ms", spec["latency_ms"]))
    if "concurrency_limit" in spec:
        extra = set(spec) - {"concurrency_limit", "retry_after"}
        if extra:
            raise FaultSpecError("concurrency_limit takes only retry_after beside it")
        return ConcurrencyLimit(_whole("concurrency_limit", spec["concurrency_limit"], 1),
                                _whole("retry_after", spec.get("retry_after", 1), 0))
    if "reject_where" in spec:
        if len(spec) != 1:
            raise FaultSpecError("reject_where cannot be combined with other keys")
        where = spec["reject_where"]
        if not isinstance(where, dict) or not where:
            raise FaultSpecError("reject_where must be a non-empty object of field: value")
        conditions = []
        for key, value in where.items():
            if isinstance(value, (dict, list)) or value is None:
                raise FaultSpecError("reject_where values must be strings, numbers or booleans")
            section, dot, field = key.partition(".")
            if dot:
                if section not in SECTIONS or not field:
                    raise FaultSpecError(
                        f"reject_where key {key!r}: use a bare field name or one of "
                        + ", ".join(f"{s}.<field>" for s in SECTIONS))
                conditions.append(((section,), field, value))
            else:
                conditions.append((BARE_KEY_SECTIONS, key, value))
        return RejectRule(where=tuple(conditions), spec=dict(where))
    unknown = set(spec) - ONE_OFF_KEYS
    if unknown:
        raise FaultSpecError(
            "unknown fault key(s) " + ", ".join(sorted(map(repr, unknown)))
            + "; known: " + ", ".join(sorted(ONE_OFF_KEYS | STANDING_KEYS)))
    status = spec.get("status")
    if status is not None:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise FaultSpecError("status must be an HTTP status code (200..599)")
    retry_after = spec.get("retry_after")
    if retry_after is not None:
        if status is None:
            raise FaultSpecError("retry_after needs a status")
        if isinstance(retry_after, str):
            if not retry_after.strip():
                raise FaultSpecError("retry_after must not be empty")
        elif isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise FaultSpecError("retry_after must be whole seconds (>= 0) or an HTTP date string")
    delay_s = _number("delay_s", spec["delay_s"]) if "delay_s" in spec else 0.0
    drop = spec.get("drop_connection", False)
    if not isinstance(drop, bool):
        raise FaultSpecError("drop_connection must be true or false")
    if drop and status is not None:
        raise FaultSpecError("drop_connection and status exclude each other")
    if status is None and not drop and not delay_s:
        raise FaultSpecError("a fault needs status, delay_s, drop_connection or reject_where")
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise FaultSpecError("times must be a positive integer")
    return Fault(status=status, retry_after=retry_after, delay_s=delay_s, drop_connection=drop,
                 times=times)


def parse_faults(specs: Any) -> list[Fault | Standing]:
    """A list of specs (a single object is read as a list of one)."""
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list):
        raise FaultSpecError("faults must be a JSON list of fault objects")
    out = []
    for i, spec in enumerate(specs):
        try:
            out.append(parse_fault(spec))
        except FaultSpecError as exc:
            raise FaultSpecError(f"fault #{i}: {exc}") from None
    return out


class FaultBook:
    """Pending one-off faults and standing rules.

    Mutated only on the server's event loop. Readers in worker threads use `rules`, a tuple that
    is replaced, never changed in place.
    """

    def __init__(self, faults: Iterable[Fault | Standing] = ()) -> None:
        self._queue: collections.deque[list[Any]] = collections.deque()  # [Fault, remaining]
        self.rules: tuple[RejectRule, ...] = ()
        self.latency: Latency | None = None
        self.concurrency: ConcurrencyLimit | None = None
        self.add(faults)

    def add(self, faults: Iterable[Fault | Standing]) -> None:
        rules = list(self.rules)
        for f in faults:
            if isinstance(f, RejectRule):
                rules.append(f)
            elif isinstance(f, Latency):
                self.latency = f
            elif isinstance(f, ConcurrencyLimit):
                self.concurrency = f
            else:
                self._queue.append([f, f.times])
        self.rules = tuple(rules)

    def replace(self, faults: Iterable[Fault | Standing]) -> None:
        faults = list(faults)
        self.clear()
        self.add(faults)

    def clear(self) -> None:
        self._queue.clear()
        self.rules = ()
        self.latency = None
        self.concurrency = None

    def pop_next(self) -> Fault | None:
        """The fault for the request that has just arrived, if any."""
        if not self._queue:
            return None
        item = self._queue[0]
        item[1] -= 1
        if item[1] <= 0:
            self._queue.popleft()
        return item[0]

    def public(self) -> dict[str, Any]:
        return {
            "pending": [{**f.public(), "remaining": n} for f, n in self._queue],
            "standing": [r.public() for r in (*self.rules, self.latency, self.concurrency)
                         if r is not None],
        }
