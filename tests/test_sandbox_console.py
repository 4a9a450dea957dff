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


class DevTools:
    """Headless Chromium driven over its DevTools pipe (file descriptors 3 and 4): open a page
    in a window of a given size and evaluate JavaScript in it, to measure the layout."""

    def __init__(self, chromium: str) -> None:
        import fcntl

        self._profile = tempfile.TemporaryDirectory(prefix="sandbox-chromium-")
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        # Out of the way of 3 and 4, which the child's copies must take.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (to_child, from_child)]
        for fd in (to_child, from_child):
            os.close(fd)

        def child_pipes() -> None:
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self._proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={self._profile.name}",
             "about:blank"],
            pass_fds=(3, 4, *ends), preexec_fn=child_pipes, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self._write, self._read = from_parent, to_parent
        self._id = 0
        self._buffer = b""
        self._session: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self._session is not None and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._write, orjson.dumps(message) + b"\0")
        deadline = time.monotonic() + 30
        while True:
            while b"\0" not in self._buffer:
                assert time.monotonic() < deadline, f"no answer to {method}"
                chunk = os.read(self._read, 1 << 16)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = orjson.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def open(self, url: str, width: int, height: int) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        os.close(self._write)
        os.close(self._read)
        self._profile.cleanup()


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
