"""The scheduler's read-only dashboard, rendered by headless Chromium from a real
`connector scheduler --ui` process, shows what the state database holds: every schedule, and
per schedule its history, counts and a chart of events sent per run. `/metrics` is valid
Prometheus text with the same numbers. Nothing secret is on the page.
"""
from __future__ import annotations

import json
import signal
import socket
import time
import urllib.parse
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.schedule import Schedule, ScheduleStore, export_definition
from connector.scheduler import Scheduler, SchedulerOptions
from helpers import (TOKEN, ById, ManualClock, dump_dom, find_chromium, result_config,
                     run_connector, start_scheduler, wait_for)

pytestmark = pytest.mark.timeout(300)
WEIRD = 'weird <b>"q" & co'  # escaped on the page and in the metrics' labels
# 1 to 4 events per slot, by day, so the chart's bars differ.
QUERY = ("SELECT 'd-' || CAST(TD_SCHEDULED_TIME() AS VARCHAR) || '-' || CAST(i AS VARCHAR) AS "
         "deduplication_key, 'conversion' AS event_type, 'web' AS source_type, "
         "CAST(epoch(now()) AS BIGINT) - 60 AS event_timestamp, 'u' AS external_id "
         "FROM range(CAST((TD_SCHEDULED_TIME() // 86400) % 4 AS INTEGER) + 1) t(i)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def state(tmp_path, sandbox, monkeypatch) -> dict[str, Any]:
    """A state database with history: a daily schedule backfilled over five days, one skipped
    slot, a schedule disabled by three configuration errors, and one that never ran."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = ScheduleStore(url)
    output = result_config(sandbox)
    store.create(Schedule(name="daily", cron="@daily", timezone="Asia/Tokyo",
                          definition=export_definition(QUERY, output, None)))
    store.create(Schedule(name=WEIRD, cron="0 12 * * 1-5", catchup="all", overlap="skip",
                          definition=export_definition(QUERY, output, None)))
    store.close()
    backfill = run_connector(tmp_path, "schedule", "run", "daily", "2026-03-01T00:00:00+09:00",
                             "-n", "5", "--state", url)
    assert backfill.returncode == 0, backfill.stderr
    # A slot the service skipped (catch-up latest), written as the service writes it.
    hour = time.time() // 3600 * 3600 - 48 * 3600
    clock = ManualClock(hour + 60)
    store = ScheduleStore(url, clock=clock)
    store.create(Schedule(name="broken", cron="0 * * * *", definition=export_definition(
        QUERY, result_config(sandbox, access_token="${TEST_UNSET_VARIABLE}"), None)))
    monkeypatch.delenv("TEST_UNSET_VARIABLE", raising=False)
    scheduler = Scheduler(store, SchedulerOptions(), clock)
    # Back two hours later: one missed slot skipped, the newest run; then two more hours.
    # Each run fails with a configuration error: the third disables the schedule.
    for later in (2, 3, 4):
        clock.t = hour + later * 3600
        scheduler.run_until_idle()
    assert not store.get("broken").enabled
    store.close()
    return {"url": url, "path": tmp_path}


def test_dashboard_in_chromium_and_metrics(state, sandbox):
    chromium = find_chromium()
    port = free_port()
    proc, log = start_scheduler(state["path"], "--state", state["url"], "--ui", "--ui-port",
                                str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            wait_for(lambda: _get(client, base + "/api/schedules"), 60, "the dashboard")
            api = client.get(base + "/api/schedules").json()
            daily = client.get(base + "/api/schedules/daily/history").json()
            broken = client.get(base + "/api/schedules/broken/history").json()
            metrics = client.get(base + "/metrics")
            page = client.get(base + "/")
            refused = client.post(base + "/api/schedules")
            missing = client.get(base + "/api/schedules/nope/history")
        dom_daily = dump_dom(chromium, base + "/?schedule=daily")
        dom_broken = dump_dom(chromium, base + "/?schedule=broken")
        dom_weird = dump_dom(chromium, base + "/?schedule=" + urllib.parse.quote(WEIRD))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()
    assert "dashboard on http://127.0.0.1:" in log.read_text()

    # The API: every schedule, what it says about each.
    names = [s["name"] for s in api["schedules"]]
    assert names == sorted(["daily", "broken", WEIRD])
    by = {s["name"]: s for s in api["schedules"]}
    assert by["daily"]["runs"] == {"success": 5} and by["daily"]["events_sent"] == sum(
        r["events_sent"] for r in daily["runs"])
    assert by["daily"]["last_status"] == "success" and by["daily"]["next_run"]["scheduled_time"] \
        .endswith("T00:00:00+09:00")
    assert by["broken"]["enabled"] is False and "3 consecutive" in by["broken"]["disabled_reason"]
    assert by["broken"]["runs"] == {"skipped": 1, "error": 3} and by["broken"]["next_run"] is None
    assert by[WEIRD]["last_status"] is None and by[WEIRD]["catchup"] == "all"
    assert [r["status"] for r in broken["runs"]] == ["error"] * 3 + ["skipped"]
    assert refused.status_code == 405 and missing.status_code == 404
    assert "default-src 'self'" in page.headers["content-security-policy"]

    # The page in Chromium, for the daily schedule.
    doc = ById()
    doc.feed(dom_daily)
    assert doc.body.get("data-ready") == "true", "the dashboard never loaded its data"
    assert doc.body.get("data-selected") == "daily"
    assert doc.rows["schedules"] == 1 + 3  # header + one row per schedule
    row = names.index("daily")
    shown = {k: doc.text[f"sched-{row}-{k}"].strip() for k in (
        "name", "kind", "cron", "timezone", "next", "last", "enabled", "catchup", "overlap",
        "runs", "events")}
    assert shown == {"name": "daily", "kind": "export", "cron": "@daily",
                     "timezone": "Asia/Tokyo", "next": by["daily"]["next_run"]["scheduled_time"],
                     "last": "success", "enabled": "yes", "catchup": "latest", "overlap": "wait",
                     "runs": "5", "events": str(by["daily"]["events_sent"])}
    assert doc.rows["history"] == 1 + 5
    for i, run in enumerate(daily["runs"]):  # newest first
        assert doc.text[f"run-{i}-scheduled"] == run["scheduled_time"]
        assert doc.text[f"run-{i}-status"] == "success"
        assert int(doc.text[f"run-{i}-sent"]) == run["events_sent"]
        assert int(doc.text[f"run-{i}-read"]) == run["rows_read"]
    assert doc.text["count-success"] == "5" and doc.text["count-error"] == "0"
    assert int(doc.text["total-events"]) == by["daily"]["events_sent"]
    # The chart: one bar per run, oldest left, each as tall as its events.
    assert doc.attrs["chart"]["data-bars"] == "5"
    bars = [doc.attrs[f"bar-{i}"] for i in range(5)]
    oldest_first = list(reversed(daily["runs"]))
    assert [int(b["data-events"]) for b in bars] == [r["events_sent"] for r in oldest_first]
    assert len({int(b["data-events"]) for b in bars}) > 1  # the runs differ
    heights = [float(b["height"]) for b in bars]
    most = max(r["events_sent"] for r in oldest_first)
    assert heights[[r["events_sent"] for r in oldest_first].index(most)] == max(heights)

    # The disabled schedule: why, its errors, the skipped slot, red and grey bars.
    doc = ById()
    doc.feed(dom_broken)
    row = names.index("broken")
    assert doc.text[f"sched-{row}-enabled"].startswith("no: disabled after 3 consecutive")
    assert doc.text["count-error"] == "3" and doc.text["count-skipped"] == "1"
    assert "TEST_UNSET_VARIABLE" in doc.text["run-0-message"]
    assert "catch-up 'latest'" in doc.text["run-3-message"]
    assert [doc.attrs[f"bar-{i}"]["data-status"] for i in range(4)] == [
        "skipped", "error", "error", "error"]

    # A name with markup in it is text, not markup.
    doc = ById()
    doc.feed(dom_weird)
    assert doc.body.get("data-selected") == WEIRD
    assert doc.text[f"sched-{names.index(WEIRD)}-name"] == WEIRD
    assert "<b>" not in dom_weird.split("<tbody>", 1)[1].split("</table>", 1)[0]
    assert doc.text["count-success"] == "0" and doc.attrs["chart"]["data-bars"] == "0"

    for dom in (dom_daily, dom_broken, dom_weird):
        assert TOKEN not in dom and "TD_SCHEDULED_TIME" not in dom  # no query, no output
        assert sandbox.url not in dom

    # /metrics: valid Prometheus text, the same numbers.
    assert metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    runs = {(s.labels["schedule"], s.labels["status"]): s.value
            for s in families["connector_schedule_runs"].samples if s.name.endswith("_total")}
    assert runs[("daily", "success")] == 5 and runs[("broken", "error")] == 3
    assert runs[("broken", "skipped")] == 1 and runs[(WEIRD, "success")] == 0
    sent = {s.labels["schedule"]: s.value
            for s in families["connector_schedule_events_sent"].samples
            if s.name.endswith("_total")}
    assert sent == {"daily": by["daily"]["events_sent"], "broken": 0, WEIRD: 0}
    last = {s.labels["schedule"]: s.value
            for s in families["connector_schedule_last_success_timestamp_seconds"].samples}
    assert set(last) == {"daily"} and abs(last["daily"] - time.time()) < 600
    enabled = {s.labels["schedule"]: s.value
               for s in families["connector_schedule_enabled"].samples}
    assert enabled == {"daily": 1, "broken": 0, WEIRD: 1}
    assert TOKEN not in metrics.text


def _get(client: httpx.Client, url: str) -> Any:
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return None
    return response.status_code == 200 and json.loads(response.text)
