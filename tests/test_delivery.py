"""Delivery to the LINE Conversion API: retries, Retry-After, bisection of rejected batches,
oversized events, fatal statuses, and the request body.

The CLI runs as a subprocess against the sandbox on loopback and its faults (statuses,
Retry-After headers, delays, standing rejections). test_export_e2e.py runs the basic delivery
scenarios (500 then success, 429, 401, one rejected event, timeouts, dropped connections).
"""
from __future__ import annotations

from helpers import TAG, gen_sql, no_traceback, result_config, run_cli, stored_keys


def test_malformed_retry_after_is_ignored_and_the_request_retried(sandbox, tmp_path):
    """A Retry-After the exporter cannot read (here "²", a Unicode digit that is not a number
    of seconds) is ignored: the request is retried after the usual backoff and the events are
    delivered (exit 0, no traceback). A broken proxy header never stops an export."""
    sandbox.set_faults([{"status": 429, "retry_after": "\u00b2"}])
    run = run_cli(tmp_path, gen_sql(3), result_config(sandbox))
    no_traceback(run)
    assert run.returncode == 0
    assert run.report is not None and run.report["events_sent"] == 3


def test_single_event_too_large_for_the_server_is_rejected_alone(tmp_path):
    """A 413 on a batch is bisected, and a 413 for a single event rejects that event, like a
    lone 400; it is not a fatal error. One oversized event (user_agent has no length limit in
    the field table) is rejected and the other 2,499 are delivered."""
    from connector.outputs.line_conversion.sandbox import run_sandbox

    big_ua = "x" * 60_000
    sql = gen_sql(2500, extra=f", CASE WHEN i = 10 THEN '{big_ua}' END AS user_agent")
    with run_sandbox(max_body_bytes=50_000) as sb:
        run = run_cli(tmp_path, sql, result_config(sb))
        stored = [e["event"]["event"]["deduplication_key"] for e in sb.events(TAG)]
    r = run.report
    assert r["rejected_events"] == 1 and r["failed_events"] == 0, (r["reason"], r["error"])
    assert r["events_sent"] == 2499 and len(stored) == 2499


def test_bisection_isolates_several_culprits_despite_server_errors(sandbox, tmp_path):
    """Three culprits (two adjacent in batch 1, one in batch 3) plus a 500 and a 503 during
    the bisection: the server errors are retried, exactly the culprits are rejected, and every
    other row is delivered once, in query order."""
    sandbox.set_faults([{"reject_where": {"deduplication_key": "k-17"}},
                        {"reject_where": {"deduplication_key": "k-18"}},
                        {"reject_where": {"deduplication_key": "k-2999"}},
                        {"status": 500, "times": 1}, {"delay_s": 0.001, "times": 3},
                        {"status": 503, "times": 1}])
    run = run_cli(tmp_path, gen_sql(3000), result_config(sandbox, parallelism=1))
    r = run.report
    assert run.returncode == 1 and r["reason"] == "events_not_accepted"
    assert sorted(x["row"] for x in r["rejected"]) == [17, 18, 2999]
    assert r["events_sent"] == 2997 and r["failed_events"] == 0 and r["retries"] == 2
    expected = [f"k-{i}" for i in range(1, 3001) if i not in (17, 18, 2999)]
    assert stored_keys(sandbox) == expected


def test_401_in_strict_mode_fails_every_row_after_one_request(tmp_path):
    """Strict mode (ignore_invalid_records=false), every row valid, a wrong token: one
    request and no retry (a 401 is fatal), every row reported failed, the counts add up,
    exit 1, and neither token appears in the output."""
    from connector.outputs.line_conversion.sandbox import run_sandbox

    with run_sandbox(tags={TAG: "right-token"}) as sb:
        run = run_cli(tmp_path, gen_sql(1500),
                      result_config(sb, ignore_invalid_records=False, max_retry=3,
                                    parallelism=1))
        assert sb.stats()["requests"] == 1
    r = run.report
    assert run.returncode == 1 and r["reason"] == "send_failed"
    assert r["failed_events"] == r["rows_read"] == 1500 and r["events_sent"] == 0
    run.assert_no_secret("right-token")


def test_json_array_body_slices_match_the_joined_array():
    """The request body goes out in slices whose bytes are the joined JSON array, and the same
    bytes again on every iteration, since a retry sends the body again."""
    import json

    from connector.delivery import JsonArrayBody

    for records in ([], [b'{"a":1}'], [b'{"a":%d,"pad":"%s"}' % (i, b"x" * (i % 900))
                                        for i in range(3000)]):
        body = JsonArrayBody(records)
        data = bytes(body)
        assert data == b"[" + b",".join(records) + b"]" and len(data) == body.length
        assert bytes(body) == data  # iterating again gives the same bytes (retries)
        assert json.loads(data) == [json.loads(r) for r in records]
        if len(records) > 1000:
            assert len(list(body)) > 3  # sent in slices, not as one copy
