"""Throughput, memory and time split of a full export, against the floor.

For each N (default 1,000,000 and 5,000,000 rows):
1. Setup: N realistic rows × the 17 columns of fields.FIELDS in a DuckDB file (raw mixed-case
   emails with stray spaces, pre-hashed emails and phones, E.164 phones from JP/TH/TW, UUIDs, URLs,
   titles with quotes, tabs and Japanese text, IPv4/IPv6, ~2% invalid rows of six kinds). The
   file is generated once (deterministic) and reused.
2. Floor: the same query through the same Source class (SQLAlchemy, partitions), building a flat
   dict per row and encoding it with orjson: fetching rows and serialising them, no checks.
3. Phases, in this process with the exporter's own classes:
   - Python path: fetch rows only, then fetch + encode (LineEventEncoder);
   - pushdown (the default on DuckDB): the engine builds the events (Arrow batches, pushdown.py),
     then the same plus Python's completion (phones, custom_data, window, fallback rows).
   The shares printed per export are engine (or fetch) / Python / send: the send share is what
   the full export adds on top of the second phase.
4. Full export: `python -m connector` as a subprocess (`--database duckdb:///file`) to
   bench/receiver.py, a separate process on 127.0.0.1 answering 202, for each max_records; once
   with `--no-pushdown` for comparison; and a dry run (`--dry-run /dev/null`, no network). Peak
   RSS of the export process comes from its VmHWM (the kernel's high-water mark), polled.

    python bench/export_bench.py                          # 1M and 5M, max_records 1000/10000/100000
    python bench/export_bench.py --rows 100000            # quick
    python bench/export_bench.py --rows 1000000 --profile # plus a pyinstrument profile of encode

Wall times on a shared machine are noisy: CPU seconds of this process are printed next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.plugins.base import InvalidRecord  # noqa: E402
from connector.plugins.line_conversion.fields import FIELDS  # noqa: E402
from connector.plugins.line_conversion.pushdown import compile_plan  # noqa: E402
from connector.plugins.line_conversion.transform import LineEventEncoder  # noqa: E402
from connector.source import Source  # noqa: E402

TAG = "00000000-0000-4000-8000-000000000000"
CHANNEL = "1234567890"  # line_uid needs a channel id
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
    cols = [f"event_timestamp + (CAST(epoch(current_timestamp) AS BIGINT) - (SELECT epoch FROM meta)) "
            f"AS event_timestamp" if c == "event_timestamp" else c for c in COLUMNS]
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


# --------------------------------------------------------------------------- in-process phases


@contextmanager
def timed(out: dict[str, float]) -> Iterator[None]:
    w, c = time.perf_counter(), time.process_time()
    yield
    out["wall"] = time.perf_counter() - w
    out["cpu"] = time.process_time() - c


def phase_fetch(url: str, sql: str) -> dict[str, float]:
    out: dict[str, float] = {}
    src = Source(url)
    with timed(out):
        n = 0
        with src.stream(sql) as stream:
            for part in stream.partitions:
                n += len(part)
    src.dispose()
    out["rows"] = n
    return out


def phase_floor(url: str, sql: str) -> dict[str, float]:
    """Fetch, one flat dict per row, orjson: the floor."""
    out: dict[str, float] = {}
    src = Source(url)
    dumps = orjson.dumps
    with timed(out):
        n = 0
        with src.stream(sql) as stream:
            cols = stream.columns
            for part in stream.partitions:
                for row in part:
                    dumps(dict(zip(cols, row)))
                n += len(part)
    src.dispose()
    out["rows"] = n
    return out


def phase_encode(url: str, sql: str, *, reference: bool = False, profile: str | None = None,
                 limit_rows: int | None = None) -> dict[str, float]:
    """Fetch + encode with the exporter's encoder, as job.py drives it (refresh per partition)."""
    out: dict[str, float] = {}
    src = Source(url)
    if limit_rows:
        sql = f"{sql} LIMIT {limit_rows}"
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    with timed(out):
        n = bad = 0
        with src.stream(sql) as stream:
            enc = LineEventEncoder(stream.columns, channel_id_present=True, test_flag=False,
                                   default_phone_region=None)
            encode = enc.encode_reference if reference else enc.encode
            for part in stream.partitions:
                enc.refresh_clock()
                for row in part:
                    try:
                        encode(row)
                    except InvalidRecord:
                        bad += 1
                n += len(part)
    if profiler is not None:
        profiler.stop()
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        Path(profile).write_text(text)
    src.dispose()
    out["rows"] = n
    out["invalid"] = bad
    return out


def phase_engine(url: str, sql: str, *, complete: bool) -> dict[str, float]:
    """The pushdown: DuckDB builds the events (Arrow batches); with `complete`, also Python's
    part (phones, custom_data, the window, rows left to the reference), as job.py drives it."""
    out: dict[str, float] = {}
    src = Source(url)
    described = src.describe(sql)
    plan = compile_plan(sql, described or [], channel_id_present=True, test_flag=False,
                        default_phone_region=None)
    if plan is None:
        raise SystemExit("the pushdown declined this query")
    with timed(out):
        n = bad = engine = 0
        with src.stream_arrow(plan.sql) as stream:
            for batch in stream.partitions:
                n += batch.num_rows
                if complete:
                    plan.encoder.refresh_clock()
                    _, by_engine, invalid = plan.encode_all(batch)
                    engine += by_engine
                    bad += len(invalid)
    src.dispose()
    out.update(rows=n, invalid=bad, engine=engine)
    return out


# --------------------------------------------------------------------------- full export


def start_receiver(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = workdir / "receiver.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "receiver.py"), "--port-file",
                             str(port_file)], stdout=subprocess.DEVNULL)
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            return proc, int(port_file.read_text())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("receiver did not start")


def receiver_stats(port: int) -> dict[str, int]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/stats")
    data = json.loads(c.getresponse().read())
    c.close()
    return data


def _watch_hwm(pid: int, peak: list[int]) -> None:
    """Peak RSS of the export process: VmHWM, the kernel's high-water mark of the process's own
    memory, polled until it exits. (ru_maxrss from wait4 would also count the benchmark process's
    RSS at fork time, which Linux carries across exec.)"""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
                        break
                else:
                    return  # a zombie: no memory lines any more
        except OSError:
            return
        time.sleep(0.02)


def run_export(url: str, sql_file: Path, workdir: Path, *, max_records: int, port: int | None,
               dry_run: bool, pushdown: bool = True) -> dict[str, Any]:
    result = {"type": "line_conversion", "line_tag_id": TAG, "access_token": "bench-token",
              "line_channel_id": CHANNEL, "max_records": max_records,
              "endpoint": f"http://127.0.0.1:{port or 9}", "max_retry": 1}
    report_file = workdir / "report.json"
    report_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "connector", str(sql_file), "--result", json.dumps(result),
           "--database", url, "--quiet", "--report-file", str(report_file)]
    if dry_run:
        cmd += ["--dry-run", os.devnull]
    if not pushdown:
        cmd += ["--no-pushdown"]
    before = receiver_stats(port) if port else None
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    watcher.join(timeout=1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    rep = json.loads(report_file.read_text()) if report_file.exists() else {}
    out: dict[str, Any] = {
        "wall": wall, "exit": proc.returncode, "peak_rss_mb": peak[0] / 1024,
        "cpu": usage.ru_utime + usage.ru_stime, "job_seconds": rep.get("duration_seconds"),
        "events": rep.get("events_sent", 0), "requests": rep.get("requests", 0),
        "invalid": rep.get("invalid_records", 0), "rows": rep.get("rows_read", 0),
        "engine_rows": rep.get("engine_encoded_rows", 0),
        "status": rep.get("status"), "stderr": err[-500:],
    }
    if port:
        after = receiver_stats(port)
        out["received_events"] = after["events"] - before["events"]  # type: ignore[index]
        out["received_requests"] = after["requests"] - before["requests"]  # type: ignore[index]
    return out


# --------------------------------------------------------------------------- main


def fmt_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def bench_n(n: int, args: argparse.Namespace, workdir: Path, port: int | None,
            table: list[list[Any]]) -> None:
    print(f"\n=== N = {n:,} rows ===", flush=True)
    db = workdir / f"events_{n}.duckdb"
    generate(db, n)
    sql = query_sql()
    sql_file = workdir / "query.sql"
    sql_file.write_text(sql + "\n")
    url = f"duckdb:///{db}" + (f"?memory_limit={args.duckdb_memory_limit}" if args.duckdb_memory_limit else "")

    floor = phase_floor(url, sql)
    print(f"  floor (fetch + dict + orjson): {floor['wall']:.2f}s wall, {floor['cpu']:.2f}s cpu, "
          f"{n / floor['wall']:,.0f} rows/s", flush=True)
    fetch = enc = eng = eng_all = None
    if not args.no_phases:
        fetch = phase_fetch(url, sql)
        print(f"  fetch only (rows):             {fetch['wall']:.2f}s wall, {fetch['cpu']:.2f}s cpu, "
              f"{n / fetch['wall']:,.0f} rows/s", flush=True)
        enc = phase_encode(url, sql, profile=str(workdir / f"profile_encode_{n}.txt") if args.profile else None)
        print(f"  fetch + encode in Python:      {enc['wall']:.2f}s wall, {enc['cpu']:.2f}s cpu, "
              f"{n / enc['wall']:,.0f} rows/s, invalid {enc['invalid']:,}", flush=True)
        if args.profile:
            print(f"  profile: {workdir / f'profile_encode_{n}.txt'}")
        if args.reference_rows:
            ref = phase_encode(url, sql, reference=True, limit_rows=args.reference_rows)
            print(f"  fetch + encode (reference, first {ref['rows']:,} rows): {ref['wall']:.2f}s, "
                  f"{ref['rows'] / ref['wall']:,.0f} rows/s", flush=True)
        eng = phase_engine(url, sql, complete=False)
        print(f"  engine builds events (Arrow):  {eng['wall']:.2f}s wall, {eng['cpu']:.2f}s cpu, "
              f"{n / eng['wall']:,.0f} rows/s", flush=True)
        eng_all = phase_engine(url, sql, complete=True)
        print(f"  engine + Python completion:    {eng_all['wall']:.2f}s wall, {eng_all['cpu']:.2f}s cpu, "
              f"{n / eng_all['wall']:,.0f} rows/s, invalid {eng_all['invalid']:,}, "
              f"built by the engine {eng_all['engine'] / n:.1%}", flush=True)
    # (label, max_records, dry run, pushdown)
    runs: list[tuple[str, int, bool, bool]] = [("export", m, False, True) for m in args.max_records
                                               if not (m >= 100000 and n < m)]
    if not args.no_python:
        runs.append(("export --no-pushdown", args.max_records[0], False, False))
    if not args.no_dry_run:
        runs.append(("dry-run", args.max_records[0], True, True))
    for label, max_records, dry, pushdown in runs:
        r = run_export(url, sql_file, workdir, max_records=max_records,
                       port=None if dry else port, dry_run=dry, pushdown=pushdown)
        ok = r["status"] == "success" and r["events"] + r["invalid"] == n
        if not dry and r.get("received_events") != r["events"]:
            ok = False
        eps = r["events"] / r["wall"]
        ratio = r["wall"] / floor["wall"]
        rps = r["requests"] / r["wall"] if not dry else 0.0
        shares = "-"
        first, second = (eng, eng_all) if pushdown else (fetch, enc)
        if first and second:
            shares = (f"{first['wall'] / r['wall']:.0%} / "
                      f"{max(second['wall'] - first['wall'], 0) / r['wall']:.0%} / "
                      f"{max(r['wall'] - second['wall'], 0) / r['wall']:.0%}")
        print(f"  {label:20s} max_records={max_records:<6d} {r['wall']:.2f}s wall "
              f"(job {r['job_seconds']}s, cpu {r['cpu']:.1f}s)  {eps:,.0f} events/s  "
              f"x{ratio:.2f} floor  peak RSS {r['peak_rss_mb']:.0f} MB  "
              f"{rps:,.1f} req/s  {'engine/python' if pushdown else 'fetch/transform'}/send {shares}  "
              f"events {r['events']:,} invalid {r['invalid']:,} built by engine {r['engine_rows']:,} "
              f"{'OK' if ok else 'CHECK: ' + str(r['status']) + ' ' + r['stderr']}",
              flush=True)
        table.append([f"{n:,}", label, max_records, f"{r['wall']:.2f}", f"{eps:,.0f}",
                      f"{ratio:.2f}", f"{r['peak_rss_mb']:.0f}", f"{rps:,.1f}" if not dry else "-",
                      shares, f"{floor['wall']:.2f} ({n / floor['wall']:,.0f}/s)",
                      "ok" if ok else "CHECK"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export benchmark")
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    p.add_argument("--max-records", type=int, nargs="+", default=[1000, 10000, 100000],
                   help="export runs; 100000 runs only when N >= 100000 (memory check)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "connector-bench"))
    p.add_argument("--no-phases", action="store_true", help="skip the in-process fetch/encode phases")
    p.add_argument("--no-dry-run", action="store_true")
    p.add_argument("--no-python", action="store_true",
                   help="skip the comparison export with --no-pushdown (every row encoded in Python)")
    p.add_argument("--profile", action="store_true", help="pyinstrument profile of fetch + encode")
    p.add_argument("--duckdb-memory-limit", metavar="SIZE",
                   help="append ?memory_limit=SIZE to the DuckDB URL (caps DuckDB's block cache, "
                        "which otherwise keeps every block of the table it read)")
    p.add_argument("--reference-rows", type=int, default=0,
                   help="also time the reference encoder on the first K rows")
    args = p.parse_args(argv)
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    receiver, port = start_receiver(workdir)
    table: list[list[Any]] = []
    try:
        for n in args.rows:
            bench_n(n, args, workdir, port, table)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}\n")
    print(fmt_row(["rows", "run", "max_records", "seconds", "events/s", "x floor", "peak RSS MB",
                   "requests/s", "engine (or fetch) / Python / send", "floor s (rows/s)", "check"]))
    print(fmt_row(["---"] * 11))
    for row in table:
        print(fmt_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
