"""The sandbox's state and its synchronous core: validate a request body, store, count, log.

Nothing here touches the network. Validation is `fields.check_wire_event`, the one rule table the
exporter uses too. Every mutation runs under `SandboxState.lock`; the web layer calls these
methods from worker threads.
"""
from __future__ import annotations

import collections
import copy
import hashlib
import hmac
import os
import threading
import time
from typing import Any, Iterable, Mapping

import orjson

from .. import wire
from ..fields import IDENTIFIER_KEYS, FieldError, check_wire_event, has_identifier

from .faults import Fault, FaultBook, RejectRule
from .store import EventStore, Row

MAX_EVENTS_PER_REQUEST = wire.MAX_EVENTS_PER_REQUEST
DEFAULT_MAX_BODY_BYTES = wire.MAX_BODY_BYTES
DEFAULT_LOG_SIZE = 10_000
DEFAULT_DEDUP_WINDOW = wire.DEDUP_WINDOW_SECONDS
STALE = 503  # answer to a request overtaken by a reset

_MASK_BITS = tuple((1 << i, key) for i, key in enumerate(IDENTIFIER_KEYS))
_TAG_COUNTERS = ("requests", "accepted", "duplicates", "without_identifier", "rejected_requests",
                 "rejected_events", "rejected_resends", "events_in_rejected_requests")


def _new_counters() -> dict[str, Any]:
    return {
        "requests": 0,  # every logged request (all of /v1/..., unknown paths)
        "accepted": 0,  # events stored
        "duplicates": 0,  # events in 202'ed requests not stored again (same event_name + key)
        # events in 202'ed requests without a user identifier: LINE takes them and drops them
        "without_identifier": 0,
        "rejected_requests": 0,  # requests answered 400
        # distinct events a 400 was about (the first invalid event of the request), each counted
        # once however often it is resent; a client bisecting a batch resends it many times
        "rejected_events": 0,
        "rejected_resends": 0,  # 400s about an event rejected before
        "events_in_rejected_requests": 0,  # every event of every 400'ed request
        "faulted_requests": 0,  # requests answered by an injected fault (incl. reject_where)
        "dropped_connections": 0,
        "by_status": {},  # "202": n, ..., "dropped": n
        "per_tag": {},  # tag: {requests, accepted, duplicates, rejected_requests, rejected_events}
        "coverage": {key: 0 for key in IDENTIFIER_KEYS},  # accepted events carrying the key
    }


_BIT_OF = {key: bit for bit, key in _MASK_BITS}


def id_mask(user: Mapping[str, Any]) -> int:
    """Bit i set when the user object carries IDENTIFIER_KEYS[i]."""
    mask = 0
    for key in user:
        mask |= _BIT_OF.get(key, 0)
    return mask


def event_digest(event: Any) -> bytes:
    """What identifies an event a 400 was about, to count a resend of it once."""
    return hashlib.blake2b(orjson.dumps(event, option=orjson.OPT_SORT_KEYS),
                           digest_size=16).digest()


class Rejected(Exception):
    """A 400: the first problem found. Never carries a value from the request; `digest` names
    the event it was about (None for a problem of the whole body)."""

    def __init__(self, index: int | None, field: str, rule: str, reason: str,
                 event: Any = None) -> None:
        super().__init__(reason)
        self.detail = {"index": index, "field": field, "rule": rule, "reason": reason}
        self.digest = None if index is None else event_digest(event)


class SandboxState:
    def __init__(
        self,
        tags: Mapping[str, str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        faults: Iterable[Fault | RejectRule] = (),
        max_body_bytes: int | None = None,
        log_size: int = DEFAULT_LOG_SIZE,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
    ) -> None:
        if tags is not None:
            for tag, token in tags.items():
                if not tag or not token:
                    raise ValueError("every --tag needs a non-empty TAG_ID and TOKEN")
        # Tokens as bytes, compared in constant time with the raw header value.
        self._tokens = None if tags is None else {t: tok.encode() for t, tok in tags.items()}
        if dedup_window < 0:
            raise ValueError("the dedup window must be 0 (no dedup) or more seconds")
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
        self.dedup_window = dedup_window
        self.faults = FaultBook(faults)
        self.lock = threading.RLock()
        self.store = EventStore(data_dir)
        self.log_size = log_size
        # With a data directory the log survives a restart (the store keeps the newest entries).
        self.log: collections.deque[dict[str, Any]] = collections.deque(
            self.store.request_log(log_size) if self.store.persistent else (), maxlen=log_size)
        self._seq = self.log[-1]["id"] if self.log else 0
        # Bumped by reset(): a request that arrived before a reset is not stored or logged after
        # it (an injected delay could otherwise leak old events into the fresh store).
        self.generation = 0
        self.counters = self._load_counters()

    # ----------------------------------------------------------------- config
    @property
    def any_token(self) -> bool:
        """True when no --tag was given: any tag, any non-empty token."""
        return self._tokens is None

    @property
    def tag_ids(self) -> list[str]:
        return [] if self._tokens is None else list(self._tokens)

    def token_ok(self, tag: str, token: bytes | None) -> bool:
        if not token:
            return False
        if self._tokens is None:
            return True
        expected = self._tokens.get(tag)
        return expected is not None and hmac.compare_digest(expected, token)

    def close(self) -> None:
        with self.lock:
            self.store.close()

    # ----------------------------------------------------------------- counters
    def _load_counters(self) -> dict[str, Any]:
        counters = _new_counters()
        if self.store.persistent:
            saved = self.store.get_meta("counters")
            if isinstance(saved, dict):
                counters.update({k: v for k, v in saved.items() if k in counters})
            # The events table is the truth for what is stored.
            self._recount_memory(counters)
        return counters

    @staticmethod
    def _tag(counters: dict[str, Any], tag: str) -> dict[str, int]:
        per_tag = counters["per_tag"].setdefault(tag, {})
        for key in _TAG_COUNTERS:  # also fills in counters a saved state did not have yet
            per_tag.setdefault(key, 0)
        return per_tag

    # ----------------------------------------------------------------- the core
    def check_body(self, body: bytes, channel_id_present: bool, now: float,
                   entry: dict[str, Any], tag: str) -> list[Row]:
        """Parse and validate a request body; the rows to store, or raise Rejected.

        Like LINE, it stops at the first invalid event, and takes an event without a user
        identifier but drops it (`entry["without_identifier"]` counts them).
        """
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejected(None, "body", "json", f"the body is not valid JSON (at byte {exc.pos})")
        if not isinstance(events, list):
            raise Rejected(None, "body", "array", "the body must be a JSON array of events")
        entry["events"] = len(events)
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise Rejected(None, "body", "max_events",
                           f"more than {MAX_EVENTS_PER_REQUEST} events ({len(events)})")
        rules = self.faults.rules
        for i, ev in enumerate(events):
            try:
                check_wire_event(ev, now, channel_id_present, require_identifier=False)
            except FieldError as exc:
                raise Rejected(i, exc.column, exc.rule, exc.reason, ev) from None
            for rule in rules:
                key = rule.matches(ev)
                if key is not None:
                    entry["fault"] = rule.public()
                    raise Rejected(i, key, "reject_where",
                                   "matches a standing reject_where fault", ev)
        dumps = orjson.dumps
        kept = [ev for ev in events if has_identifier(ev["user"])]
        entry["without_identifier"] = len(events) - len(kept)
        return [(tag, ev["event"].get("event_name", ""), ev["event"]["deduplication_key"], now,
                 id_mask(ev["user"]), dumps(ev)) for ev in kept]

    def process(self, entry: dict[str, Any], tag: str, body: bytes, channel_id_present: bool,
                now: float, generation: int | None = None) -> int:
        """Handle an authenticated, well-framed POST body; returns the HTTP status.

        STALE (503, nothing stored or logged) when the sandbox was reset since `generation`.
        """
        try:
            rows = self.check_body(body, channel_id_present, now, entry, tag)
        except Rejected as exc:
            entry["status"] = 400
            entry["error"] = exc.detail
            return 400 if self.record(entry, generation=generation,
                                      rejected=exc.digest) else STALE
        entry["status"] = 202
        return 202 if self.record(entry, rows, generation) else STALE

    def record(self, entry: dict[str, Any], rows: list[Row] | None = None,
               generation: int | None = None, rejected: bytes | None = None) -> bool:
        """Store `rows` (for a 202), count and log the request, in one transaction. `rejected`:
        the digest of the event a 400 was about.

        False (and nothing done) when the sandbox was reset since `generation`.
        """
        if entry.get("time") is not None:
            entry["duration_ms"] = round((time.time() - entry["time"]) * 1000, 3)
        with self.lock:
            if generation is not None and generation != self.generation:
                return False
            self._seq += 1
            entry["id"] = self._seq
            store = self.store
            status = entry.get("status")
            c = self.counters
            # Work on copies so a failed transaction leaves the counters untouched.
            new = copy.deepcopy(c) if store.persistent else c
            tag = entry.get("tag")
            per_tag = self._tag(new, tag) if tag is not None else None
            stored = 0
            if status == 202:
                entry["stored"] = entry["duplicates"] = 0
            store.begin()
            try:
                if rejected is not None:
                    entry["resend"] = not store.add_rejected(tag or "", rejected)
                if status == 202 and rows:
                    coverage = new["coverage"]
                    for mask, n in store.insert(rows, self.dedup_window):
                        stored += n
                        for bit, key in _MASK_BITS:
                            if mask & bit:
                                coverage[key] += n
                    entry["stored"] = stored
                    entry["duplicates"] = len(rows) - stored
                self._count(new, per_tag, entry, stored)
                if store.persistent:
                    store.put_meta("counters", new)
                    store.log_request(entry, self.log_size)
                store.commit()
            except BaseException:
                store.rollback()
                if not store.persistent:
                    # In memory the counters were updated in place; rebuild them from the store.
                    self.counters = self._recount_memory(c)
                raise
            self.counters = new
            self.log.append(entry)
            return True

    def _count(self, c: dict[str, Any], per_tag: dict[str, int] | None, entry: dict[str, Any],
               stored: int) -> None:
        status = entry.get("status")
        n_events = entry.get("events") or 0
        key = "dropped" if status is None else str(status)
        c["requests"] += 1
        c["by_status"][key] = c["by_status"].get(key, 0) + 1
        if entry.get("fault") is not None:
            c["faulted_requests"] += 1
        if status is None:
            c["dropped_connections"] += 1
        dups = entry.get("duplicates", 0)
        if per_tag is not None:
            per_tag["requests"] += 1
        # The same outcome counters, overall and for the tag.
        for target in (c, per_tag) if per_tag is not None else (c,):
            if status == 202:
                target["accepted"] += stored
                target["duplicates"] += dups
                target["without_identifier"] += entry.get("without_identifier", 0)
            elif status == 400:
                target["rejected_requests"] += 1
                target["events_in_rejected_requests"] += n_events
                if "resend" in entry:
                    target["rejected_resends" if entry["resend"] else "rejected_events"] += 1

    def _recount_memory(self, c: dict[str, Any]) -> dict[str, Any]:
        c["accepted"] = 0
        c["coverage"] = {key: 0 for key in IDENTIFIER_KEYS}
        for t in c["per_tag"].values():
            t["accepted"] = 0
        for tag, mask, n in self.store.counts_by_tag_and_mask():
            c["accepted"] += n
            self._tag(c, tag)["accepted"] += n
            for bit, key in _MASK_BITS:
                if mask & bit:
                    c["coverage"][key] += n
        return c

    # ----------------------------------------------------------------- reads and reset
    def stats(self) -> dict[str, Any]:
        with self.lock:
            out = copy.deepcopy(self.counters)
            kept = len(self.log)
        accepted = out["accepted"]
        out["coverage_share"] = {
            key: (n / accepted if accepted else 0.0) for key, n in out["coverage"].items()}
        out["log_kept"] = kept
        out["storage"] = self.store.path or ":memory:"
        out["any_token"] = self.any_token
        return out

    def events_json(self, tag: str | None, limit: int | None, offset: int,
                    tail: int | None) -> bytes:
        with self.lock:
            total = self.counters["accepted"] if tag is None else \
                self.counters["per_tag"].get(tag, {}).get("accepted", 0)
            if tail is not None:
                offset = max(0, total - tail)
                limit = tail
            rows = self.store.list_events(tag, limit, offset)
        return orjson.dumps({
            "total": total,
            "offset": offset,
            "events": [
                {"id": i, "tag": t, "received_at": at, "event": orjson.Fragment(body)}
                for i, t, at, body in rows
            ],
        })

    def requests_json(self, status: int | None, limit: int | None, offset: int,
                      tail: int | None) -> bytes:
        with self.lock:
            entries = list(self.log)
            total = self.counters["requests"]
        if status is not None:
            entries = [e for e in entries if e.get("status") == status]
        if tail is not None:
            entries = entries[-tail:] if tail else []
        else:
            entries = entries[offset:] if limit is None else entries[offset:offset + limit]
        return orjson.dumps({"total": total, "kept": len(self.log), "requests": entries})

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.store.clear()
            self.counters = _new_counters()
            self.log.clear()
