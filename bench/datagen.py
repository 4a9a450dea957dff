"""The benchmark's data: N realistic rows of the LINE output's 17 columns in a DuckDB file.

Raw mixed-case emails with stray spaces, pre-hashed emails and phones, E.164 phones from
JP/TH/TW, UUIDs, URLs, titles with quotes, tabs and Japanese text, IPv4/IPv6, and ~2% invalid
rows of six kinds. Deterministic: the same N gives the same rows. The equivalence tests use the
same generator, so what the benchmark measures is what they prove byte-identical.
"""
from __future__ import annotations

import time
from pathlib import Path

from connector.outputs.line_conversion.fields import FIELDS

COLUMNS = [f.column for f in FIELDS]
assert len(COLUMNS) == 17

# Deterministic data. Bits of three 64-bit hashes pick every choice; `bad` >= 0 marks ~2% of the
# rows with one of six invalid kinds.
GENERATE_SQL = r"""
CREATE TABLE events AS
WITH b AS MATERIALIZED (
  SELECT i, hash(i * 7919 + 13) AS r2, hash(i * 104729 + 7) AS r3, hash(i) AS r,
         CASE WHEN hash(i + 1000000007) % 100 < 2 THEN (hash(i * 31) % 6)::INTEGER ELSE -1 END AS bad
  FROM range($N) t(i)
)
SELECT
  'ord-' || i AS deduplication_key,
  CASE WHEN bad = 0 THEN 'purchase' WHEN r % 3 = 0 THEN 'conversion' ELSE 'page_view' END AS event_type,
  CASE WHEN r % 3 = 0 THEN 'Purchase' WHEN r % 7 = 1 THEN 'AddToCart' ELSE NULL END AS event_name,
  'web' AS source_type,
  CASE WHEN bad = 1 THEN ($EPOCH - ((r >> 8) % 5000000)) * 1000
       ELSE $EPOCH - ((r >> 8) % 5000000) END AS event_timestamp,
  CASE WHEN bad = 2 THEN 'not-an-email'
       WHEN (r >> 12) % 10 = 0 THEN NULL
       WHEN (r >> 12) % 10 = 1 THEN sha256('user' || (i % 300000) || '@example.com')
       WHEN (r >> 12) % 10 = 2 THEN upper(sha256('user' || (i % 300000) || '@example.com'))
       ELSE (CASE WHEN (r >> 16) % 4 = 0 THEN '  ' ELSE '' END)
            || ['Taro','hanako','YUKI','Ken','aiko','Sora','ren','Mei','daichi','Emi'][1 + ((r >> 20) % 10)::INTEGER]
            || '.' || ['Yamada','sato','SUZUKI','Takahashi','tanaka','Ito','watanabe','Nakamura'][1 + ((r >> 24) % 8)::INTEGER]
            || ((r >> 28) % 10000)::VARCHAR || '@'
            || ['Example.com','example.CO.jp','mail.example.jp','Example.net'][1 + ((r >> 32) % 4)::INTEGER]
            || (CASE WHEN (r >> 18) % 5 = 0 THEN ' ' ELSE '' END)
  END AS email,
  CASE WHEN bad = 3 THEN '090-1234-5678'
       WHEN (r >> 36) % 10 < 3 THEN NULL
       WHEN (r >> 36) % 10 = 3 THEN sha256('+8190' || (i % 500000)::VARCHAR)
       WHEN (r >> 36) % 10 = 4 THEN '+668' || lpad(((r >> 40) % 100000000)::VARCHAR, 8, '0')
       WHEN (r >> 36) % 10 = 5 THEN '+8869' || lpad(((r >> 40) % 100000000)::VARCHAR, 8, '0')
       ELSE '+81' || ['90','80','70'][1 + ((r >> 44) % 3)::INTEGER] || lpad(((r >> 40) % 100000000)::VARCHAR, 8, '0')
  END AS phone,
  CASE WHEN (r >> 46) % 10 < 3 THEN 'U' || printf('%016x%016x', r2, r3) ELSE NULL END AS line_uid,
  CASE WHEN (r >> 48) % 10 < 2 THEN 'cl' || printf('%016x', r3) ELSE NULL END AS click_id,
  CASE WHEN (r >> 50) % 10 < 8 THEN printf('%08x-%04x-4%03x-a%03x-%012x', r2 >> 32, (r2 >> 16) % 65536,
       r2 % 4096, r3 >> 52, r3 % 281474976710656) ELSE NULL END AS browser_id,
  CASE WHEN (r >> 52) % 10 = 0 THEN printf('%08X-%04X-%04X-%04X-%012X', r3 >> 32, (r3 >> 16) % 65536,
       r3 % 65536, r2 >> 48, r2 % 281474976710656) ELSE NULL END AS ifa,
  CASE WHEN (r >> 54) % 2 = 0 THEN 'cust_' || ((r >> 8) % 300000)::VARCHAR ELSE NULL END AS external_id,
  CASE WHEN bad = 4 THEN 'ftp://shop.example.com/x'
       ELSE 'https://shop.example.com/' || ['item','cart','thanks','category'][1 + ((r >> 56) % 4)::INTEGER]
            || '/SKU-' || ((r >> 10) % 5000)::VARCHAR || '?utm_source=line&utm_medium=cpc' END AS url,
  CASE WHEN (r >> 58) % 3 = 0 THEN NULL
       WHEN (r >> 58) % 3 = 1 THEN 'https://www.google.com/search?q=shoes+' || ((r >> 9) % 1000)::VARCHAR
       ELSE '' END AS referrer,
  ['Shoes | Example Shop','スニーカー | サンプル店','Cart – Example "Shop"',
   'Thanks! ご購入ありがとうございます','Bag' || chr(9) || 'Sale | Example Shop'][1 + ((r >> 11) % 5)::INTEGER] AS title,
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Line/14.19.0',
   'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
   'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
  ][1 + ((r >> 13) % 3)::INTEGER] AS user_agent,
  CASE WHEN bad = 5 THEN '999.12.3.4'
       WHEN (r >> 14) % 4 = 0 THEN '2001:db8::' || lower(printf('%x', (r >> 15) % 65536))
       ELSE '203.0.' || ((r >> 17) % 256)::VARCHAR || '.' || ((r >> 25) % 256)::VARCHAR END AS ip_address
FROM b
"""


def query_sql() -> str:
    """The export query: the 17 columns, timestamps shifted so that they sit inside the window now."""
    cols = ["event_timestamp + (CAST(epoch(current_timestamp) AS BIGINT) - (SELECT epoch FROM meta)) "
            "AS event_timestamp" if c == "event_timestamp" else c for c in COLUMNS]
    return "SELECT " + ", ".join(cols) + " FROM events"


def generate(path: Path, n: int) -> None:
    """The DuckDB file with n rows (kept if it already holds them)."""
    import duckdb

    if path.exists():
        try:
            con = duckdb.connect(str(path), read_only=True)
            if con.execute("SELECT count(*) FROM events").fetchone()[0] == n:
                con.close()
                return
            con.close()
        except duckdb.Error:
            pass
        path.unlink()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    epoch = int(time.time())
    t = time.perf_counter()
    con.execute(GENERATE_SQL.replace("$N", str(n)).replace("$EPOCH", str(epoch)))
    con.execute(f"CREATE TABLE meta AS SELECT {epoch}::BIGINT AS epoch")
    con.close()
    tmp.rename(path)
    print(f"  generated {n:,} rows into {path} in {time.perf_counter() - t:.1f}s", flush=True)
