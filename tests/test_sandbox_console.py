"""The sandbox's web console, rendered by headless Chromium, shows what the API says."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from typing import Any

import httpx
import orjson
import pytest

from connector.outputs.line_conversion.sandbox import run_sandbox

pytestmark = pytest.mark.timeout(120)

TAG = "5f0c7a5e-0000-4000-8000-0000000000c1"
TOKEN = "console-test-token"
EMAIL_HASH = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
PHONE_HASH = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def find_chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    message = ("headless Chromium is needed for the console test: "
               "apt-get install -y chromium (Debian package, /usr/bin/chromium)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def dump_dom(chromium: str, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="sandbox-chromium-") as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class ById(HTMLParser):
    """Text content and attributes of every element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.body: dict[str, Any] = {}
        self.rows: dict[str, int] = {}
        self._stack: list[tuple[str, str | None]] = []
        self._tables: list[str | None] = []
        self.html = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table":
            self._tables.append(a.get("id"))
        if tag == "tr" and self._tables and self._tables[-1]:
            self.rows[self._tables[-1]] = self.rows.get(self._tables[-1], 0) + 1
        if tag in VOID:
            return
        element_id = a.get("id")
        if element_id:
            self.text[element_id] = ""
            self.attrs[element_id] = a
        self._stack.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            self._tables.pop()
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._stack:
            if element_id:
                self.text[element_id] += data


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

        assert post([ev("k-1", email=EMAIL_HASH), ev("k-2", phone=PHONE_HASH),
                     ev("k-3", email=EMAIL_HASH, external_id="u3"), ev("k-4", click_id="c4")]) == 202
        assert post([ev("k-1", email=EMAIL_HASH), ev("k-5", external_id="u5")]) == 202  # 1 dup
        assert post([ev("k-6", external_id="u6"), ev("k-7", email="Not@Hashed.example")]) == 400
        assert post([ev("k-8", external_id="u8")]) == 202
        stats = sb.stats()
        assert stats["accepted"] == 6 and stats["duplicates"] == 1
        assert stats["rejected_requests"] == 1

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
        "stat-rejected": stats["rejected_requests"],
        "stat-rejected-events": stats["rejected_events"],
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
    assert page.rows["rejected"] == 2
    rejected = page.text["rejected"]
    assert "email" in rejected and "pattern" in rejected
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
