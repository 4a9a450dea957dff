"""The sandbox's web console, rendered by headless Chromium, shows what the API says."""
from __future__ import annotations

import shutil
import time
from typing import Any

import httpx
import orjson
import pytest

from connector.outputs.line_conversion.sandbox import run_sandbox
from helpers import ById, DevTools, dump_dom, find_chromium

pytestmark = pytest.mark.timeout(120)

TAG = "5f0c7a5e-0000-4000-8000-0000000000c1"
TOKEN = "console-test-token"
EMAIL_HASH = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
PHONE_HASH = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
def ev(key: str, **user: Any) -> dict[str, Any]:
    return {"event": {"deduplication_key": key, "event_type": "conversion", "event_name": "Purchase",
                      "source_type": "web", "event_timestamp": int(time.time()) - 60},
            "user": user}


def test_console_shows_the_api_numbers():
    chromium = find_chromium()
    with run_sandbox(tags={TAG: TOKEN}) as sb, httpx.Client(timeout=10, trust_env=False) as client:
        headers = {"X-Line-TagAccessToken": TOKEN, "Content-Type": "application/json"}

        def post(events: Any) -> int:
            return client.post(sb.events_url(TAG), content=orjson.dumps(events),
                               headers=headers).status_code

        with_custom = ev("k-4", click_id="c4")
        with_custom["custom"] = {"value": 1200, "currency": "JPY"}
        assert post([ev("k-1", email=EMAIL_HASH), ev("k-2", phone=PHONE_HASH),
                     ev("k-3", email=EMAIL_HASH, external_id="u3"), with_custom]) == 202
        assert post([ev("k-1", email=EMAIL_HASH), ev("k-5", external_id="u5")]) == 202  # 1 dup
        assert post([ev("k-6", external_id="u6"), ev("k-7", email="Not@Hashed.example")]) == 400
        assert post([ev("k-7", email="Not@Hashed.example")]) == 400  # the same event, resent
        assert post([ev("k-8", external_id="u8")]) == 202
        stats = sb.stats()
        assert stats["accepted"] == 6 and stats["duplicates"] == 1
        assert stats["rejected_requests"] == 2 and stats["rejected_events"] == 1
        assert stats["rejected_resends"] == 1 and stats["events_in_rejected_requests"] == 3

        dom = dump_dom(chromium, sb.url + "/")
        after = sb.stats()

    page = ById()
    page.feed(dom)
    assert page.body.get("data-ready") == "true", "the console never loaded its data"
    assert int(page.body["data-refreshes"]) >= 2, "the console did not poll again"
    assert after["requests"] == stats["requests"]  # the console's polling is not logged

    expected = {
        "stat-requests": stats["requests"],
        "stat-accepted": stats["accepted"],
        "stat-duplicates": stats["duplicates"],
        "stat-without-identifier": stats["without_identifier"],
        "stat-rejected": stats["rejected_requests"],
        "stat-rejected-events": stats["rejected_events"],
        "stat-rejected-resends": stats["rejected_resends"],
        "stat-rejected-copies": stats["events_in_rejected_requests"],
        "stat-faulted": stats["faulted_requests"],
        "stat-dropped": stats["dropped_connections"],
    }
    shown = {k: int(page.text[k].strip().replace(",", "")) for k in expected}
    assert shown == expected
    for key, count in stats["coverage"].items():
        assert int(page.text[f"cov-{key}-count"]) == count
        assert float(page.attrs[f"cov-{key}"]["data-share"]) == pytest.approx(
            stats["coverage_share"][key])
        assert page.text[f"cov-{key}"].strip() == f"{stats['coverage_share'][key] * 100:.1f}%"
    assert page.text["cov-email"].strip() == "33.3%"

    # Newest accepted events, with user values truncated; the rejected request with its reason.
    assert page.rows["events"] == 1 + stats["accepted"]  # header row + one per event
    assert EMAIL_HASH not in dom and EMAIL_HASH[:10] in dom
    assert page.rows["rejected"] == 3
    rejected = page.text["rejected"]
    assert "email" in rejected and "pattern" in rejected and "yes" in rejected  # the resend
    assert '{"value":1200,"currency":"JPY"}' in page.text["events"]  # custom_data, shown
    assert "Not@Hashed.example" not in dom
    assert TOKEN not in dom


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        find_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        find_chromium()


def test_empty_tables_say_none():
    chromium = find_chromium()
    with run_sandbox() as sb:
        dom = dump_dom(chromium, sb.url + "/")
    page = ById()
    page.feed(dom)
    assert page.body.get("data-ready") == "true"
    for table in ("events", "rejected", "by-status", "per-tag"):
        assert page.rows[table] == 2, table  # the header and one row
        assert page.text[table].strip().endswith("none"), table


@pytest.mark.parametrize("width", [320, 375, 600, 1280])
def test_layout_fits_the_window_at_any_width(width):
    """On a phone-sized window the page does not scroll sideways: counters wrap, the two
    columns stack, and wide tables scroll inside their own box. Measured in the browser,
    with a long value in every table."""
    chromium = find_chromium()
    with run_sandbox() as sb, httpx.Client(timeout=10, trust_env=False) as client:
        long = ev("k-" + "x" * 200, external_id="u" * 300)
        long["custom"] = {"category": "c" * 300, "item_ids": ["i" * 50] * 5}
        headers = {"X-Line-TagAccessToken": TOKEN, "Content-Type": "application/json"}
        assert client.post(sb.events_url(TAG), content=orjson.dumps([long]),
                           headers=headers).status_code == 202
        assert client.post(sb.events_url(TAG), content=orjson.dumps([ev("bad key!")]),
                           headers=headers).status_code == 400
        browser = DevTools(chromium)
        try:
            browser.open(sb.url + "/", width, 900)
            browser.wait_for("document.body.dataset.ready === 'true'")
            page_width, window = browser.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]")
            assert window == width
            assert page_width <= window, f"the page is {page_width}px wide in a {window}px window"
            # Every table is inside a box of its own that fits the window.
            widest = browser.evaluate(
                "Math.max(...[...document.querySelectorAll('.scroll')]"
                ".map(e => e.getBoundingClientRect().right))")
            assert widest <= window
        finally:
            browser.close()
