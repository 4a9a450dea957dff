"""The sandbox accepts what LINE accepts and remembers what LINE remembers.

- LINE's own server-side tag (github.com/line/line-conversion-api-server-tag) sends
  `event_timestamp` as milliseconds / 1000, a fraction, and may send an event with no user
  identifier (no cookie, no user data), which LINE takes with 202 and drops. The payloads below
  are built the way that tag builds them.
- Deduplication lasts LINE's window (30 days), settable, not for ever.
- With --data-dir, the request log survives a restart like the events do.
- A rejected event is counted once however often a bisecting client resends it.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pytest

from connector.outputs.line_conversion.sandbox import SandboxState, run_sandbox
from helpers import TAG, TOKEN, gen_sql, result_config, run_cli

pytestmark = pytest.mark.timeout(120)


def server_tag_payload(event_type: str = "conversion", *, cookie: bool = True,
                       page: bool = True, millis: int | None = None) -> list[dict[str, Any]]:
    """One request body as LINE's server-side tag builds it: the keys in its order, undefined
    values left out (JSON.stringify), the timestamp as getTimestampMillis() / 1000."""
    millis = int(time.time() * 1000) - 1234 if millis is None else millis
    event: dict[str, Any] = {"source_type": "web", "event_type": event_type}
    if event_type == "conversion":
        event["event_name"] = "Purchase"
    event["deduplication_key"] = str(uuid.uuid4())
    event["event_timestamp"] = millis / 1000
    user = {"browser_id": str(uuid.uuid4())} if cookie else {}
    web = {"title": "Shop", "url": "https://shop.example/thanks?ldtag_cl=abc",
           "referrer": "https://shop.example/cart", "ip_address": "203.0.113.10",
           "user_agent": "Mozilla/5.0"} if page else {}
    return [{"event": event, "user": user, "web": web}]


def post(client: httpx.Client, url: str, body: Any) -> int:
    # JSON.stringify writes 1735689600.123 as is; orjson does the same for the float.
    return client.post(url, content=orjson.dumps(body),
                       headers={"X-Line-TagAccessToken": TOKEN,
                                "Content-Type": "application/json"}).status_code


@pytest.fixture
def client():
    with httpx.Client(timeout=10.0, trust_env=False) as c:
        yield c


def test_the_server_tags_payload_is_accepted_as_line_accepts_it(sandbox, client):
    url = sandbox.events_url(TAG)
    conversion = server_tag_payload()
    assert conversion[0]["event"]["event_timestamp"] % 1 != 0  # a fraction, as the tag sends
    page_view = server_tag_payload("page_view")
    assert post(client, url, conversion) == 202
    assert post(client, url, page_view) == 202
    stored = sandbox.events(TAG)
    assert [e["event"] for e in stored] == conversion + page_view
    assert stored[0]["event"]["event"]["event_timestamp"] == conversion[0]["event"]["event_timestamp"]
    # No cookie and no user data: LINE takes it (202) and drops it; so does the sandbox.
    assert post(client, url, server_tag_payload(cookie=False, page=False)) == 202
    stats = sandbox.stats()
    assert stats["accepted"] == 2 and stats["without_identifier"] == 1
    assert sandbox.requests()[-1]["without_identifier"] == 1
    # A fraction outside the window is refused like a whole number.
    old = server_tag_payload(millis=int((time.time() - 91 * 86400) * 1000) + 1)
    assert post(client, url, old) == 400
    assert sandbox.requests()[-1]["error"]["rule"] == "window"


def test_the_exporter_keeps_sending_whole_seconds(sandbox, tmp_path):
    for extra in ([], ["--no-pushdown"]):
        sandbox.reset()
        sql = gen_sql(3).replace("AS event_timestamp", "+ 0.75 AS event_timestamp_f") \
            .replace("AS email", "AS email, CAST(epoch(now()) AS BIGINT) - 60 AS event_timestamp")
        run = run_cli(tmp_path, sql, result_config(sandbox), *extra)
        assert run.returncode == 0, run.stderr
        stamps = [e["event"]["event"]["event_timestamp"] for e in sandbox.events(TAG)]
        assert len(stamps) == 3 and all(type(s) is int for s in stamps)


def _state(**kw: Any) -> SandboxState:
    return SandboxState(**kw)


def _event(key: str) -> dict[str, Any]:
    return {"event": {"deduplication_key": key, "event_type": "conversion",
                      "event_name": "Purchase", "source_type": "web",
                      "event_timestamp": int(time.time()) - 60},
            "user": {"external_id": "u-" + key}}


def _send(state: SandboxState, at: float, *keys: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"tag": "t"}
    body = orjson.dumps([_event(k) for k in keys])
    assert state.process(entry, "t", body, False, at) == 202
    return entry


def test_dedup_lasts_the_window_then_the_event_is_new_again():
    day = 86400.0
    state = _state()
    try:
        assert state.dedup_window == 30 * day
        t0 = time.time()
        assert _send(state, t0, "k-1")["stored"] == 1
        assert _send(state, t0 + 29 * day, "k-1")["duplicates"] == 1
        # 30 days after the first (not after the duplicate): stored again, and it starts a
        # window of its own
        assert _send(state, t0 + 30 * day, "k-1")["stored"] == 1
        assert _send(state, t0 + 31 * day, "k-1", "k-1")["duplicates"] == 2
        assert state.stats()["accepted"] == 2
    finally:
        state.close()


def test_dedup_window_is_settable_and_zero_turns_it_off(tmp_path, client):
    with run_sandbox(dedup_window=1) as sb:
        url = sb.events_url(TAG)
        assert post(client, url, [_event("k-1")]) == 202
        assert post(client, url, [_event("k-1")]) == 202
        assert sb.stats()["duplicates"] == 1
        time.sleep(1.1)
        assert post(client, url, [_event("k-1")]) == 202
        assert sb.stats()["accepted"] == 2
    state = _state(dedup_window=0)
    try:
        assert _send(state, time.time(), "k-1", "k-1")["stored"] == 2
    finally:
        state.close()


def test_dedup_window_survives_a_restart_and_an_old_data_dir(tmp_path):
    import sqlite3

    # A data directory written before the window existed: a unique index on every event.
    db = sqlite3.connect(tmp_path / "sandbox.sqlite3")
    db.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY, tag TEXT NOT NULL, event_name TEXT NOT NULL,
            dedup_key TEXT NOT NULL, received_at REAL NOT NULL, idmask INTEGER NOT NULL,
            body BLOB NOT NULL);
        CREATE UNIQUE INDEX events_dedup ON events (tag, event_name, dedup_key);
    """)
    old = time.time() - 40 * 86400
    db.execute("INSERT INTO events (tag, event_name, dedup_key, received_at, idmask, body) "
               "VALUES ('t', 'Purchase', 'k-1', ?, 64, '{}'), "
               "('t', 'Purchase', 'k-2', ?, 64, '{}')", (old, time.time() - 60))
    db.commit()
    db.close()
    state = _state(data_dir=tmp_path)
    try:
        entry = _send(state, time.time(), "k-1", "k-2")
        assert entry["stored"] == 1 and entry["duplicates"] == 1  # k-1 is 40 days old
    finally:
        state.close()


def test_request_log_survives_a_restart_with_a_data_dir(tmp_path, client):
    with run_sandbox(tags={TAG: TOKEN}, data_dir=tmp_path) as sb:
        url = sb.events_url(TAG)
        assert post(client, url, [_event("k-1")]) == 202
        assert post(client, url, [{"x": 1}]) == 400
        before = sb.requests()
    with run_sandbox(tags={TAG: TOKEN}, data_dir=tmp_path) as sb:
        assert sb.requests() == before
        assert post(client, sb.events_url(TAG), [_event("k-2")]) == 202
        log = sb.requests()
        assert log[:2] == before and log[2]["id"] == before[-1]["id"] + 1
        assert [e["status"] for e in sb.requests(status=400)] == [400]
    state = _state(data_dir=tmp_path, log_size=2)  # the stored log is bounded like the live one
    try:
        for i in range(5):
            _send(state, time.time(), f"n-{i}")
    finally:
        state.close()
    state = _state(data_dir=tmp_path, log_size=2)
    try:
        assert [e["id"] for e in state.log] == [7, 8]
    finally:
        state.close()


def test_a_rejected_event_resent_by_bisection_is_counted_once(sandbox, tmp_path):
    """The exporter splits a rejected batch of 1,000 in halves until the bad event stands alone:
    about 2·log2(1000) requests hold it. It is one rejected event, resent many times."""
    sandbox.set_faults([{"reject_where": {"deduplication_key": "k-377"}}])
    run = run_cli(tmp_path, gen_sql(1000), result_config(sandbox))
    assert run.returncode == 1 and run.report["rejected_events"] == 1
    stats = sandbox.stats()
    assert stats["rejected_events"] == 1
    assert stats["rejected_resends"] == stats["rejected_requests"] - 1 >= 9
    assert stats["events_in_rejected_requests"] > 1000
    assert stats["per_tag"][TAG]["rejected_events"] == 1
    resends = [r["resend"] for r in sandbox.requests(status=400)]
    assert resends[0] is False and all(resends[1:])
