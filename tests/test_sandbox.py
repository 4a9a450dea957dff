"""The LINE Conversion API sandbox, exercised over real HTTP on loopback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import pytest

from connector.outputs.line_conversion.sandbox import SandboxState, run_sandbox
from connector.outputs.line_conversion.sandbox import cli as sandbox_cli
from connector.outputs.line_conversion.sandbox import state as sandbox_state

pytestmark = pytest.mark.timeout(60)

TAG = "1b2c3d4e-0000-4000-8000-00000000000a"
TOKEN = "tok-A-s3cret-value"
TAG2 = "1b2c3d4e-0000-4000-8000-00000000000b"
TOKEN2 = "tok-B-other-s3cret"
EMAIL_HASH = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
PHONE_HASH = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
LINE_UID = "U" + "0123456789abcdef" * 2


def ev(key: str, name: str | None = "Purchase", **user: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "deduplication_key": key,
        "event_type": "conversion",
        "source_type": "web",
        "event_timestamp": int(time.time()) - 60,
    }
    if name is not None:
        event["event_name"] = name
    return {"event": event, "user": user or {"external_id": f"user-{key}"}}


@pytest.fixture(scope="module")
def tagged():
    with run_sandbox(tags={TAG: TOKEN, TAG2: TOKEN2}) as sb:
        yield sb


@pytest.fixture
def sb(tagged):
    """The module's sandbox with two configured tags, emptied before each test."""
    tagged.clear_faults()
    tagged.reset()
    return tagged


@pytest.fixture
def client():
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(transport=transport, timeout=10.0, trust_env=False) as c:
        yield c


def post(client: httpx.Client, sb, events: Any, tag: str = TAG, token: str | None = TOKEN,
         **kw: Any) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["X-Line-TagAccessToken"] = token
    if "content" not in kw:
        kw["content"] = orjson.dumps(events)
        headers.setdefault("Content-Type", "application/json")
    return client.post(sb.events_url(tag), headers=headers, **kw)


def last_log(sb) -> dict[str, Any]:
    return sb.requests()[-1]


# --------------------------------------------------------------------------- 202 and storage
def test_valid_batch_202_empty_body_stored_as_received(sb, client):
    events = [ev("k-1", email=EMAIL_HASH), ev("k-2", phone=PHONE_HASH, click_id="abc_1"),
              {**ev("k-3"), "web": {"url": "https://shop.example.com/x", "ip_address": "::1"},
               "custom": {"value": 12.5, "currency": "JPY", "item_ids": ["a"]}}]
    before = time.time()
    r = post(client, sb, events)
    assert r.status_code == 202
    assert r.content == b""
    stored = sb.events(TAG)
    assert [s["event"] for s in stored] == events
    assert all(s["tag"] == TAG for s in stored)
    assert all(before - 1 <= s["received_at"] <= time.time() + 1 for s in stored)
    entry = last_log(sb)
    assert entry["status"] == 202 and entry["events"] == 3 and entry["stored"] == 3
    assert entry["bytes"] == len(orjson.dumps(events)) and entry["error"] is None


def test_empty_array_is_202(sb, client):
    assert post(client, sb, []).status_code == 202
    assert sb.events() == []


# --------------------------------------------------------------------------- 400
@pytest.mark.parametrize("content, rule", [
    (b"{not json", "json"),
    (b"", "json"),
    (orjson.dumps({"events": [ev("k-1")]}), "array"),
    (b'"a string"', "array"),
])
def test_400_body_not_a_json_array(sb, client, content, rule):
    r = post(client, sb, None, content=content)
    assert r.status_code == 400
    assert last_log(sb)["error"]["rule"] == rule
    assert sb.events() == []


def test_400_chunked_request(sb, client):
    body = orjson.dumps([ev("k-1")])

    def chunks():
        yield body[:10]
        yield body[10:]

    r = post(client, sb, None, content=chunks())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 400
    entry = last_log(sb)
    assert entry["error"]["rule"] == "chunked"
    assert sb.events() == []
    # The connection is still good for the next request.
    assert post(client, sb, [ev("k-1")]).status_code == 202


def test_400_more_than_100000_events(sb, client):
    # The count is checked before any event, so cheap non-events are enough to prove it.
    r = post(client, sb, None, content=b"[" + b",".join([b"0"] * 100_001) + b"]")
    assert r.status_code == 400
    entry = last_log(sb)
    assert entry["error"]["rule"] == "max_events" and entry["events"] == 100_001
    stats = sb.stats()
    assert stats["events_in_rejected_requests"] == 100_001
    assert stats["rejected_events"] == 0  # a problem of the whole body, not of one event


def test_event_limit_boundary(monkeypatch):
    monkeypatch.setattr(sandbox_state, "MAX_EVENTS_PER_REQUEST", 3)
    st = SandboxState()
    try:
        now = time.time()
        assert st.process({}, "t", orjson.dumps([ev(f"k{i}") for i in range(3)]), False, now) == 202
        assert st.process({}, "t", orjson.dumps([ev(f"k{i}") for i in range(4)]), False, now) == 400
    finally:
        st.close()


def test_400_first_invalid_event_discards_whole_request(sb, client):
    raw_email = "Taro.Yamada@Example.com"
    events = [ev("k-1"), ev("k-2"), ev("k-3", email=raw_email), ev("k-4", email="also bad")]
    r = post(client, sb, events)
    assert r.status_code == 400
    assert sb.events() == []  # nothing from a 400 request is stored
    entry = last_log(sb)
    assert entry["error"] == {"index": 2, "field": "email", "rule": "pattern",
                              "reason": entry["error"]["reason"]}
    assert entry["events"] == 4
    # Reasons never carry values.
    assert raw_email not in sb.state.requests_json(None, None, 0, None).decode()
    stats = sb.stats()
    assert stats["rejected_requests"] == 1 and stats["events_in_rejected_requests"] == 4
    assert stats["rejected_events"] == 1  # the event the 400 was about
    assert stats["accepted"] == 0


@pytest.mark.parametrize("bad, field, rule", [
    ({"event": {"event_timestamp": int(time.time() * 1000)}}, "event_timestamp", "unit"),
    ({"event": {"event_timestamp": int(time.time()) - 91 * 86400}}, "event_timestamp", "window"),
    ({"event": {"event_type": "purchase"}}, "event_type", "enum"),
    ({"event": {"deduplication_key": "undefined"}}, "deduplication_key", "undefined"),
    ({"event": {"test_flag": None}}, "test_flag", "null"),
    ({"user": {"external_id": "x", "nickname": "x"}}, "user.nickname", "unknown"),
    ({"user": {"line_uid": LINE_UID}}, "line_uid", "channel_id"),
    ({"custom_data": {"value": 1}}, "custom_data", "unknown"),
])
def test_400_invalid_event_reports_field_and_rule(sb, client, bad, field, rule):
    event = ev("k-9")
    for section, values in bad.items():
        if section in event:
            if section == "user":
                event[section] = dict(values)
            else:
                event[section].update(values)
        else:
            event[section] = values
    r = post(client, sb, [ev("k-8"), event])
    assert r.status_code == 400
    error = last_log(sb)["error"]
    assert (error["index"], error["field"], error["rule"]) == (1, field, rule)
    assert error["reason"]


def test_line_uid_needs_channel_id_header(sb, client):
    events = [ev("k-1", line_uid=LINE_UID)]
    assert post(client, sb, events).status_code == 400
    r = post(client, sb, events, headers={"X-Line-ChannelID": "1234567890"})
    assert r.status_code == 202
    assert last_log(sb)["channel_id"] is True
    assert len(sb.events()) == 1


# --------------------------------------------------------------------------- 401 and tokens
def test_401_missing_or_wrong_token(sb, client):
    events = [ev("k-1")]
    assert post(client, sb, events, token=None).status_code == 401
    assert post(client, sb, events, token="").status_code == 401
    assert post(client, sb, events, token="wrong").status_code == 401
    assert post(client, sb, events, token=f"Bearer {TOKEN}").status_code == 401
    assert post(client, sb, events, token=TOKEN2).status_code == 401  # another tag's token
    assert post(client, sb, events, tag="unknown-tag").status_code == 401
    assert sb.events() == []
    assert post(client, sb, events).status_code == 202
    assert post(client, sb, events, tag=TAG2, token=TOKEN2).status_code == 202
    stats = sb.stats()
    assert stats["by_status"] == {"401": 6, "202": 2}
    assert stats["per_tag"][TAG]["accepted"] == 1 and stats["per_tag"][TAG2]["accepted"] == 1


def test_tokens_never_appear_in_api_output(sb, client):
    post(client, sb, [ev("k-1")])
    post(client, sb, [ev("k-1")], token=TOKEN + "x")
    post(client, sb, [{"bad": 1}], tag=TAG2, token=TOKEN2)
    for path in ("/sandbox/api/requests", "/sandbox/api/stats", "/sandbox/api/events",
                 "/sandbox/api/faults", "/"):
        text = client.get(sb.url + path).text
        assert TOKEN not in text and TOKEN2 not in text


def test_any_token_mode(client):
    with run_sandbox() as sb:
        assert sb.stats()["any_token"] is True
        assert post(client, sb, [ev("k-1")], tag="whatever", token="anything").status_code == 202
        assert post(client, sb, [ev("k-2")], tag="other-tag", token="x").status_code == 202
        assert post(client, sb, [ev("k-3")], tag="whatever", token=None).status_code == 401
        assert post(client, sb, [ev("k-3")], tag="whatever", token="").status_code == 401
        assert [e["tag"] for e in sb.events()] == ["whatever", "other-tag"]


# --------------------------------------------------------------------------- 404, 405, 413
def test_405_wrong_method(sb, client):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = client.request(method, sb.events_url(TAG), headers={"X-Line-TagAccessToken": TOKEN})
        assert r.status_code == 405, method
    assert sb.stats()["by_status"] == {"405": 4}
    assert last_log(sb)["tag"] == TAG


def test_404_unknown_paths(sb, client):
    for path in ("/v1/events", f"/v1/{TAG}/event", f"/v1/{TAG}/events/", f"/v2/{TAG}/events",
                 "/nothing"):
        r = client.post(sb.url + path, content=b"[]", headers={"X-Line-TagAccessToken": TOKEN})
        assert r.status_code == 404, path
    assert sb.stats()["by_status"] == {"404": 5}


def test_413_above_max_body_bytes(client):
    with run_sandbox(max_body_bytes=2000) as sb:
        small = orjson.dumps([ev("k-1")])
        big = orjson.dumps([ev(f"k-{i}") for i in range(20)])
        assert len(small) <= 2000 < len(big)
        r = post(client, sb, None, content=big)
        assert r.status_code == 413
        assert last_log(sb)["error"]["rule"] == "max_body_bytes"
        # Keep-alive survives the unread body.
        assert post(client, sb, None, content=small).status_code == 202
        assert len(sb.events()) == 1


# --------------------------------------------------------------------------- dedup
def test_dedup_on_event_name_and_key(sb, client):
    assert post(client, sb, [ev("k-1"), ev("k-2")]).status_code == 202
    # Same name + key: duplicate. Same key, other name: a new event. Within one request too.
    r = post(client, sb, [ev("k-1"), ev("k-1", name="Signup"), ev("k-3"), ev("k-3")])
    assert r.status_code == 202
    entry = last_log(sb)
    assert entry["stored"] == 2 and entry["duplicates"] == 2
    keys = [(e["event"]["event"].get("event_name"), e["event"]["event"]["deduplication_key"])
            for e in sb.events()]
    assert keys == [("Purchase", "k-1"), ("Purchase", "k-2"), ("Signup", "k-1"), ("Purchase", "k-3")]
    stats = sb.stats()
    assert stats["accepted"] == 4 and stats["duplicates"] == 2


def test_dedup_absent_event_name_is_its_own_value(sb, client):
    assert post(client, sb, [ev("k-1", name=None), ev("k-1", name="Conversion")]).status_code == 202
    assert post(client, sb, [ev("k-1", name=None)]).status_code == 202
    stats = sb.stats()
    assert stats["accepted"] == 2 and stats["duplicates"] == 1


def test_dedup_is_per_tag(sb, client):
    assert post(client, sb, [ev("k-1")]).status_code == 202
    assert post(client, sb, [ev("k-1")], tag=TAG2, token=TOKEN2).status_code == 202
    assert len(sb.events(TAG)) == 1 and len(sb.events(TAG2)) == 1
    assert sb.stats()["duplicates"] == 0


# --------------------------------------------------------------------------- persistence
def test_data_dir_survives_restart(tmp_path, client):
    with run_sandbox(tags={TAG: TOKEN}, data_dir=tmp_path) as sb:
        assert post(client, sb, [ev("k-1", email=EMAIL_HASH), ev("k-2")]).status_code == 202
        assert post(client, sb, [{"x": 1}]).status_code == 400
        first = sb.events()
    assert list(tmp_path.iterdir())
    with run_sandbox(tags={TAG: TOKEN}, data_dir=tmp_path) as sb:
        assert sb.events() == first
        stats = sb.stats()
        assert stats["accepted"] == 2 and stats["coverage"]["email"] == 1
        assert stats["requests"] == 2 and stats["rejected_requests"] == 1
        assert stats["storage"].startswith(str(tmp_path))
        # Dedup still knows the stored events.
        assert post(client, sb, [ev("k-1"), ev("k-3")]).status_code == 202
        assert sb.stats()["duplicates"] == 1 and len(sb.events()) == 3
    with run_sandbox(tags={TAG: TOKEN}) as sb:  # without data_dir: a fresh, empty store
        assert sb.events() == [] and sb.stats()["accepted"] == 0


# --------------------------------------------------------------------------- faults
def test_fault_status_times_then_normal(sb, client):
    sb.set_faults([{"status": 500, "times": 2}, {"status": 503}])
    assert [f["remaining"] for f in sb.faults()["pending"]] == [2, 1]
    codes = [post(client, sb, [ev("k-1")]).status_code for _ in range(4)]
    assert codes == [500, 500, 503, 202]
    assert len(sb.events()) == 1  # a status fault stores nothing
    log = sb.requests()
    assert [e["fault"] for e in log] == [{"status": 500}, {"status": 500}, {"status": 503}, None]
    assert sb.faults()["pending"] == []
    assert sb.stats()["faulted_requests"] == 3


def test_fault_429_retry_after(sb, client):
    sb.set_faults([{"status": 429, "retry_after": 1}])
    r = post(client, sb, [ev("k-1")])
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    r = post(client, sb, [ev("k-1")])
    assert r.status_code == 202 and "retry-after" not in r.headers


def test_fault_delay_then_normal(sb, client):
    sb.set_faults([{"delay_s": 0.4}])
    start = time.monotonic()
    r = post(client, sb, [ev("k-1")])
    assert r.status_code == 202 and time.monotonic() - start >= 0.4
    assert len(sb.events()) == 1


def test_fault_delay_client_timeout_still_processed(sb, client):
    sb.set_faults([{"delay_s": 0.8}])
    with pytest.raises(httpx.ReadTimeout):
        post(client, sb, [ev("k-1")], timeout=0.2)
    # The server went on and stored the events, as a real server may: a retry is a duplicate.
    deadline = time.monotonic() + 5
    while sb.stats()["accepted"] == 0:
        assert time.monotonic() < deadline, "the delayed request was never processed"
        time.sleep(0.05)
    assert post(client, sb, [ev("k-1")]).status_code == 202
    assert sb.stats()["duplicates"] == 1


def test_fault_drop_connection(sb, client):
    sb.set_faults([{"drop_connection": True, "times": 2}])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, sb, [ev("k-1")])
    # A proxy header must not confuse which connection is dropped.
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, sb, [ev("k-1")], headers={"X-Forwarded-For": "10.1.2.3"})
    assert sb.events() == []
    entry = last_log(sb)
    assert entry["status"] is None and entry["fault"] == {"drop_connection": True}
    stats = sb.stats()
    assert stats["dropped_connections"] == 2 and stats["by_status"] == {"dropped": 2}
    # The same client reconnects and the next request is processed.
    assert post(client, sb, [ev("k-1")]).status_code == 202


def test_reset_discards_requests_still_in_a_delay(sb, client):
    sb.set_faults([{"delay_s": 1.0}])
    with pytest.raises(httpx.ReadTimeout):
        post(client, sb, [ev("k-old")], timeout=0.2)
    sb.reset()
    assert post(client, sb, [ev("k-new")]).status_code == 202
    time.sleep(1.2)  # past the delay: the old request must not have landed in the fresh store
    assert [e["event"]["event"]["deduplication_key"] for e in sb.events()] == ["k-new"]
    assert sb.stats()["requests"] == 1 and len(sb.requests()) == 1


def test_shutdown_is_quick_despite_a_pending_delay(client):
    with run_sandbox(faults=[{"delay_s": 30}]) as sb:
        with pytest.raises(httpx.ReadTimeout):
            post(client, sb, [ev("k-1")], timeout=0.2)
        start = time.monotonic()
    assert time.monotonic() - start < 2


def test_fault_reject_where_is_standing_until_cleared(sb, client):
    sb.set_faults([{"reject_where": {"deduplication_key": "k-13"}}])
    batch = [ev(f"k-{i}") for i in range(10, 16)]
    assert post(client, sb, batch).status_code == 400
    assert post(client, sb, batch).status_code == 400  # not consumed
    error = last_log(sb)["error"]
    assert (error["index"], error["field"], error["rule"]) == (3, "deduplication_key", "reject_where")
    # Bisection: the halves without the culprit go through.
    assert post(client, sb, batch[:3]).status_code == 202
    assert post(client, sb, batch[3:]).status_code == 400
    assert post(client, sb, batch[4:]).status_code == 202
    assert post(client, sb, batch[3:4]).status_code == 400
    assert len(sb.events()) == 5
    assert sb.faults()["standing"] == [{"reject_where": {"deduplication_key": "k-13"}}]
    sb.clear_faults()
    assert post(client, sb, batch[3:4]).status_code == 202
    assert len(sb.events()) == 6


def test_fault_reject_where_user_and_dotted_keys(sb, client):
    sb.set_faults([{"reject_where": {"user.external_id": "vip"}},
                   {"reject_where": {"email": EMAIL_HASH, "event_name": "Signup"}}])
    assert post(client, sb, [ev("k-1", external_id="vip")]).status_code == 400
    assert post(client, sb, [ev("k-1", email=EMAIL_HASH)]).status_code == 202  # name differs
    assert post(client, sb, [ev("k-2", name="Signup", email=EMAIL_HASH)]).status_code == 400
    assert post(client, sb, [ev("k-3", name="Signup", phone=PHONE_HASH)]).status_code == 202


def test_faults_apply_in_order_and_mix(sb, client):
    sb.set_faults([{"status": 500}, {"status": 429, "retry_after": 2}, {"delay_s": 0.1}])
    r1, r2, r3 = (post(client, sb, [ev("k-1")]) for _ in range(3))
    assert (r1.status_code, r2.status_code, r3.status_code) == (500, 429, 202)
    assert r2.headers["retry-after"] == "2"


def test_faults_api_validation_and_clear(sb, client):
    url = sb.url + "/sandbox/api/faults"
    for bad in ({"status": 99}, {"times": 0, "status": 500}, {"retry_after": 1},
                {"bogus": 1}, {"reject_where": {}}, {"drop_connection": "yes"}, {}):
        r = client.post(url, json=[bad])
        assert r.status_code == 400 and r.json()["error"], bad
    assert client.post(url, content=b"nope").status_code == 400
    sb.set_faults([{"status": 500}])
    client.post(url + "?append=1", json=[{"reject_where": {"ifa": "x"}}]).raise_for_status()
    view = sb.faults()
    assert view["pending"] == [{"status": 500, "remaining": 1}]
    assert view["standing"] == [{"reject_where": {"ifa": "x"}}]
    assert sb.clear_faults() == {"pending": [], "standing": []}


def test_faults_at_startup(client):
    faults = [{"status": 502}, {"reject_where": {"deduplication_key": "bad"}}]
    with run_sandbox(faults=faults) as sb:
        assert post(client, sb, [ev("k-1")]).status_code == 502
        assert post(client, sb, [ev("bad")]).status_code == 400
        assert post(client, sb, [ev("k-1")]).status_code == 202


# --------------------------------------------------------------------------- read API, reset
def test_read_api_events_paging_and_tags(sb, client):
    post(client, sb, [ev(f"a-{i}") for i in range(5)])
    post(client, sb, [ev(f"b-{i}") for i in range(3)], tag=TAG2, token=TOKEN2)
    post(client, sb, [ev(f"a-{i}") for i in range(5, 7)])
    keys = lambda items: [e["event"]["event"]["deduplication_key"] for e in items]  # noqa: E731
    assert keys(sb.events(TAG)) == [f"a-{i}" for i in range(7)]
    assert keys(sb.events(TAG2)) == ["b-0", "b-1", "b-2"]
    assert len(sb.events()) == 10
    assert keys(sb.events(TAG, limit=2, offset=3)) == ["a-3", "a-4"]
    assert keys(sb.events(TAG, offset=6)) == ["a-6"]
    data = client.get(sb.url + "/sandbox/api/events", params={"tag": TAG, "tail": 2}).json()
    assert data["total"] == 7 and keys(data["events"]) == ["a-5", "a-6"]
    ids = [e["id"] for e in sb.events()]
    assert ids == sorted(ids)
    assert client.get(sb.url + "/sandbox/api/events?limit=-1").status_code == 400


def test_read_api_requests_log_and_stats(sb, client):
    post(client, sb, [ev("k-1", email=EMAIL_HASH, phone=PHONE_HASH), ev("k-2", ifa=str(
        "6f1c8f1e-7a33-4c51-9b43-1e0e7c5f0a11"))])
    post(client, sb, [ev("k-3"), {"event": {}, "user": {}}])
    post(client, sb, [ev("k-1")])
    log = sb.requests()
    assert [e["status"] for e in log] == [202, 400, 202]
    for e in log:
        assert {"id", "time", "tag", "status", "events", "bytes", "error"} <= set(e)
        assert e["tag"] == TAG
    assert log[1]["error"]["index"] == 1 and log[1]["error"]["field"]
    assert [e["status"] for e in sb.requests(status=400)] == [400]
    stats = sb.stats()
    assert stats["requests"] == 3
    assert stats["accepted"] == 2 and stats["duplicates"] == 1
    assert stats["rejected_requests"] == 1 and stats["events_in_rejected_requests"] == 2
    assert stats["rejected_events"] == 1 and stats["rejected_resends"] == 0
    assert stats["by_status"] == {"202": 2, "400": 1}
    assert stats["per_tag"][TAG] == {"requests": 3, "accepted": 2, "duplicates": 1,
                                     "without_identifier": 0, "rejected_requests": 1,
                                     "rejected_events": 1, "rejected_resends": 0,
                                     "events_in_rejected_requests": 2}
    assert stats["coverage"] == {"email": 1, "phone": 1, "line_uid": 0, "click_id": 0,
                                 "browser_id": 0, "ifa": 1, "external_id": 0}
    assert stats["coverage_share"]["email"] == 0.5


def test_reset_clears_store_counters_and_log(sb, client):
    post(client, sb, [ev("k-1")])
    post(client, sb, [{"bad": True}])
    assert sb.stats()["requests"] == 2
    sb.reset()
    assert sb.events() == [] and sb.requests() == []
    stats = sb.stats()
    assert stats["requests"] == 0 and stats["accepted"] == 0 and stats["by_status"] == {}
    assert post(client, sb, [ev("k-1")]).status_code == 202  # not a duplicate any more
    assert sb.stats()["duplicates"] == 0


def test_request_log_bounded_counters_exact():
    st = SandboxState(log_size=5)
    try:
        for i in range(12):
            st.process({"tag": "t"}, "t", orjson.dumps([ev(f"k-{i}")]), False, time.time())
        assert len(st.log) == 5 and st.stats()["requests"] == 12 and st.stats()["accepted"] == 12
        assert [e["id"] for e in st.log] == [8, 9, 10, 11, 12]
    finally:
        st.close()


# --------------------------------------------------------------------------- CLI
def test_cli_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        sandbox_cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: connector sandbox")
    parser = sandbox_cli.build_parser()
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    assert set(options) >= {"--host", "--port", "--tag", "--data-dir", "--fault",
                            "--max-body-bytes", "--help"}
    for option in options:
        assert option in out


def test_cli_module_help_subprocess():
    r = subprocess.run([sys.executable, "-m", "connector.outputs.line_conversion.sandbox.cli", "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for option in ("--host", "--port", "--tag", "--data-dir", "--fault", "--max-body-bytes"):
        assert option in r.stdout


@pytest.mark.parametrize("argv", [["--tag", "no-equals"], ["--fault", "{bad"],
                                  ["--fault", '{"status": 1}'], ["--max-body-bytes", "0"]])
def test_cli_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        sandbox_cli.main(argv)
    assert exc.value.code == 2


def test_cli_serves_and_never_prints_tokens(tmp_path, client):
    env = {**os.environ, "SANDBOX_TEST_TOKEN": "env-s3cret-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.outputs.line_conversion.sandbox.cli", "--port", "0",
         "--tag", f"{TAG}={TOKEN}", "--tag", f"{TAG2}=env:SANDBOX_TEST_TOKEN",
         "--data-dir", str(tmp_path), "--fault", '{"status": 503}', "--max-body-bytes", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = []
        while not banner or not banner[-1].startswith("Press Ctrl+C"):
            line = proc.stdout.readline()
            assert line, "the sandbox exited early"
            banner.append(line)
        first = "".join(banner)
        assert "listening on http://127.0.0.1:" in banner[0]
        url = banner[0].rsplit(" ", 1)[-1].strip()
        endpoint = f"{url}/v1/{TAG}/events"
        headers = {"X-Line-TagAccessToken": TOKEN}
        deadline = time.monotonic() + 10
        while True:
            try:
                r = client.post(endpoint, json=[ev("k-1")], headers=headers)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 503  # the --fault
        assert client.post(endpoint, json=[ev("k-1")], headers=headers).status_code == 202
        r = client.post(f"{url}/v1/{TAG2}/events", json=[ev("k-1")],
                        headers={"X-Line-TagAccessToken": "env-s3cret-token"})
        assert r.status_code == 202
        assert client.post(endpoint, json=[ev("k-2")],
                           headers={"X-Line-TagAccessToken": "nope"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    output = first + out + err
    assert TOKEN not in output and "env-s3cret-token" not in output
    assert TAG in output and str(tmp_path) in output
