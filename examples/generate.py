"""Regenerate examples/events.csv: about 1,000 realistic conversion rows, some invalid on purpose.

    python examples/generate.py

Deterministic (fixed seed). `event_time` is UNIX seconds before 2026-11-29T00:00:00Z (1795910400);
the example queries shift it to "now" so that the demo stays inside LINE's 90-day window
whenever it runs.
"""
from __future__ import annotations

import csv
import datetime as dt
import random
import uuid
from pathlib import Path

ROWS = 1000
BASE = dt.datetime(2026, 11, 29, 0, 0, 0)
OUT = Path(__file__).with_name("events.csv")

FIRST = ["taro", "hanako", "yuki", "ken", "aiko", "sora", "ren", "mei", "daichi", "emi"]
LAST = ["yamada", "sato", "suzuki", "takahashi", "tanaka", "ito", "watanabe", "nakamura"]
DOMAINS = ["example.com", "example.co.jp", "mail.example.jp", "example.net"]
PRODUCTS = [("shoes", "SKU-1001", 12800), ("bag", "SKU-2040", 23500), ("cap", "SKU-3300", 3900),
            ("jacket", "SKU-4120", 45800), ("socks", "SKU-5005", 990)]
UAS = ["Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Line/14.19.0",
       "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"]

COLUMNS = ["order_id", "event_type", "event_name", "source_type", "event_time", "email", "phone",
           "customer_id", "browser_id", "click_id", "ifa", "line_uid", "page_url", "referrer",
           "page_title", "user_agent", "ip_address", "value", "currency", "quantity", "item_ids",
           "category"]

# Each invalid kind names the rule it breaks; about 6% of rows get one.
INVALID_KINDS = [
    ("email", "not-an-email"),
    ("phone", "090-1234-5678"),          # national number without country code
    ("event_type", "purchase"),          # not page_view / conversion
    ("event_time_ms", None),             # milliseconds instead of seconds
    ("event_time_old", None),            # older than LINE's 90-day window
    ("order_id", "undefined"),           # LINE reads it as "not sent"
    ("order_id", "order#42"),            # character outside the pattern
    ("no_identifier", None),             # LINE would drop it after the 202
    ("page_url", "ftp://example.com/x"),
    ("ip_address", "300.1.2.3"),
    ("currency", "yen"),
    ("event_name", "ThisNameIsFarTooLongForLINE"),
]


def _epoch(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.timezone.utc).timestamp())


def main() -> None:
    rnd = random.Random(20261129)
    rows = []
    for i in range(1, ROWS + 1):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        product, sku, price = rnd.choice(PRODUCTS)
        qty = rnd.randint(1, 3)
        purchase = rnd.random() < 0.6
        when = BASE - dt.timedelta(seconds=rnd.randint(60, 20 * 86400))
        email = f"{first}.{last}{rnd.randint(1, 99)}@{rnd.choice(DOMAINS)}"
        if rnd.random() < 0.3:  # users type addresses in every shape
            email = f"  {email.title()} "
        row = {
            "order_id": f"ord-{100000 + i}",
            "event_type": "conversion" if purchase else "page_view",
            "event_name": "Purchase" if purchase else "",
            "source_type": "web",
            "event_time": _epoch(when),
            "email": email if rnd.random() < 0.9 else "",
            "phone": f"+8190{rnd.randint(10000000, 99999999)}" if rnd.random() < 0.5 else "",
            "customer_id": f"cust_{rnd.randint(1000, 9999)}" if rnd.random() < 0.7 else "",
            "browser_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)) if rnd.random() < 0.5 else "",
            "click_id": f"cl{rnd.getrandbits(64):016x}" if rnd.random() < 0.3 else "",
            "ifa": str(uuid.UUID(int=rnd.getrandbits(128), version=4)) if rnd.random() < 0.1 else "",
            "line_uid": "",
            "page_url": f"https://shop.example.com/{'thanks' if purchase else 'item'}/{sku}",
            "referrer": rnd.choice(["https://www.example.com/", "https://shop.example.com/cart", ""]),
            "page_title": f"{product.title()} | Example Shop",
            "user_agent": rnd.choice(UAS),
            "ip_address": rnd.choice([f"203.0.113.{rnd.randint(1, 254)}",
                                      f"2001:db8::{rnd.randint(1, 0xffff):x}"]),
            "value": price * qty if purchase else "",
            "currency": "JPY" if purchase else "",
            "quantity": qty if purchase else "",
            "item_ids": sku if purchase else "",
            "category": product if purchase else "",
        }
        if rnd.random() < 0.06:
            kind, bad = rnd.choice(INVALID_KINDS)
            if kind == "event_time_ms":
                row["event_time"] = row["event_time"] * 1000
            elif kind == "event_time_old":
                row["event_time"] = _epoch(BASE - dt.timedelta(days=120))
            elif kind == "no_identifier":
                for key in ("email", "phone", "customer_id", "browser_id", "click_id", "ifa"):
                    row[key] = ""
            else:
                row[kind] = bad
                if kind == "currency":
                    row.update(event_type="conversion", event_name="Purchase", value=price,
                               quantity=1, item_ids=sku, category=product)
        rows.append(row)
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
