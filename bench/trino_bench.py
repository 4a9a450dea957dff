"""The export from Trino against its floor, side by side in one run: fetch paths, the pushdown's
phases, the email-digest choice, full exports, two shards, and peak RSS at 1M and 5M rows.

Needs a running Trino (`TRINO_PORT=18080 bash .ci/trino.sh start`, or --trino-url). Steps:
1. Setup: a materialised memory table of N rows × the 17 LINE columns (bench/datagen.py's Trino
   generator: raw mixed-case emails with stray spaces, pre-hashed emails and phones, E.164
   phones, UUIDs, URLs, titles with quotes, tabs and Japanese text, IPv4/IPv6, ~2% invalid
   rows), created once and reused while its timestamps stay inside LINE's window.
2. Fetch paths (in this process, no encoding): the trino client as it comes (gzip, the standard
   library's JSON parser, a Python value per value), the exporter's Source (uncompressed,
   orjson), and the raw JSON values the pushdown reads.
3. Floor: the query through the exporter's Source (the same client and settings as the export),
   a flat dict per row, orjson. No checks, no hashing.
4. Phases (in this process, the exporter's classes): the engine builds the events (RowBatches,
   no completion); then with Python's completion; and the same with raw email addresses hashed
   by the engine instead of hashlib (the email-digest choice).
5. Full exports: `python -m connector` as a subprocess: a dry run, an export to bench/receiver.py
   (a local HTTP server answering 202), the same with --no-pushdown; times include Python's
   start-up (the report's job time is printed beside). Then `--shard 0/2` and `--shard 1/2`
   side by side (dry runs), checked against the unsharded dry run: the same events, none twice.
6. Memory: dry runs of 1M and 5M rows read as they are generated (a memory table that big does
   not fit the test server), peak RSS from the kernel's high-water mark.

The CPU seconds of the Trino server (from /proc, when the server was started by .ci/trino.sh on
this machine) are printed beside each in-process phase. The machine's load average is printed
at each step: on a shared machine, compare runs of the same step only.

    python bench/trino_bench.py                             # 300,000 rows, RSS at 1M and 5M
    python bench/trino_bench.py --rows 300000 --rss-rows    # no RSS runs
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

from bench.datagen import COLUMNS, trino_generate_sql  # noqa: E402
from bench.export_bench import _watch_hwm, receiver_stats, start_receiver  # noqa: E402
from connector.mapping import bind_columns  # noqa: E402
from connector.outputs.line_conversion.encoders.pushdown_trino import (  # noqa: E402
    TrinoDialect, compile_trino_pushdown)
from connector.outputs.line_conversion.fields import KNOWN_COLUMNS  # noqa: E402
from connector.source import Source  # noqa: E402

TAG = "00000000-0000-4000-8000-000000000000"
CHANNEL = "1234567890"


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def trino_pid(port: int) -> int | None:
    path = Path.home() / ".cache" / "connector-trino" / f"run-{port}" / "trino.pid"
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def cpu_of(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def timed(out: dict[str, float], server: int | None) -> Iterator[None]:
    w, c, s = time.perf_counter(), time.process_time(), cpu_of(server)
    yield
    out["wall"] = time.perf_counter() - w
    out["cpu"] = time.process_time() - c
    out["server"] = cpu_of(server) - s


def show(label: str, r: dict[str, float], rows: int, extra: str = "") -> None:
    print(f"  {label:44s} {r['wall']:6.2f}s wall  {rows / r['wall']:9,.0f} rows/s  "
          f"client cpu {r['cpu']:5.2f}s  server cpu {r['server']:5.2f}s  {extra}{load()}",
          flush=True)


# --------------------------------------------------------------------------- setup


def run_sql(url: str, sql: str) -> list[Any]:
    src = Source(url)
    try:
        with src.engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            return [tuple(r) for r in result.fetchall()] if result.returns_rows else []
    finally:
        src.dispose()


def setup(url: str, catalog: str, n: int) -> str:
    """The export query over a materialised table of n rows (created when missing)."""
    table, meta = f"{catalog}.bench_events_{n}", f"{catalog}.bench_meta_{n}"
    try:
        count = run_sql(url, f"SELECT count(*) FROM {table}")[0][0]
        epoch = run_sql(url, f"SELECT epoch FROM {meta}")[0][0]
    except Exception:  # noqa: BLE001 - missing: create it
        count = epoch = None
    # The rows' timestamps reach 58 days back; regenerated before they leave LINE's window.
    # (Shifting them in the query would make its text change with the clock, and Trino
    # compile its expressions again for every run.)
    if count != n or epoch is None or epoch < time.time() - 20 * 86400:
        run_sql(url, f"DROP TABLE IF EXISTS {table}")
        run_sql(url, f"DROP TABLE IF EXISTS {meta}")
        epoch = int(time.time())
        t = time.perf_counter()
        run_sql(url, f"CREATE TABLE {table} AS {trino_generate_sql(n, epoch)}")
        run_sql(url, f"CREATE TABLE {meta} AS SELECT CAST({epoch} AS bigint) AS epoch")
        print(f"  created {table} ({n:,} rows) in {time.perf_counter() - t:.1f}s", flush=True)
    return f"SELECT {', '.join(COLUMNS)} FROM {table}"


# --------------------------------------------------------------------------- in-process phases


def fetch_default_client(url: str, sql: str, server: int | None) -> dict[str, float]:
    """The trino client as it comes: gzip, json.loads, a Python value per value."""
    import sqlalchemy as sa
    import trino

    parsed = sa.engine.make_url(url)
    out: dict[str, float] = {}
    conn = trino.dbapi.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                               catalog=(parsed.database or "system").split("/")[0])
    with timed(out, server):
        cur = conn.cursor()
        cur.execute(sql)
        n = 0
        while True:
            part = cur.fetchmany(5000)
            if not part:
                break
            n += len(part)
    conn.close()
    out["rows"] = n
    return out


def fetch_source(url: str, sql: str, server: int | None, floor: bool) -> dict[str, float]:
    """The exporter's Source (SQLAlchemy partitions); with `floor`, a dict per row and orjson."""
    out: dict[str, float] = {}
    src = Source(url)
    dumps = orjson.dumps
    with timed(out, server):
        n = 0
        with src.stream(sql) as stream:
            cols = stream.columns
            for part in stream.partitions:
                if floor:
                    for row in part:
                        dumps(dict(zip(cols, row)))
                n += len(part)
    src.dispose()
    out["rows"] = n
    return out


def fetch_raw(url: str, sql: str, server: int | None) -> dict[str, float]:
    """The raw JSON values (RowBatch), as the pushdown reads them, of the plain query."""
    out: dict[str, float] = {}
    src = Source(url)
    with timed(out, server):
        n = 0
        with src.stream_batches(sql) as stream:
            for batch in stream.partitions:
                n += len(batch)
    src.dispose()
    out["rows"] = n
    return out


def phase_engine(url: str, sql: str, server: int | None, *, complete: bool,
                 email_in_engine: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    src = Source(url)
    described = src.describe(sql) or []
    binding = bind_columns([n for n, _ in described], output="line_conversion", required=(),
                           known=KNOWN_COLUMNS, types=[t for _, t in described])
    plan = compile_trino_pushdown(sql, binding, channel_id_present=True, test_flag=False,
                                  default_phone_region=None,
                                  dialect=TrinoDialect(email_in_engine=email_in_engine))
    with timed(out, server):
        n = bad = 0
        with src.stream_batches(plan.sql) as stream:
            for batch in stream.partitions:
                n += len(batch)
                if complete:
                    plan.encoder.refresh_clock()
                    _, invalid = plan.encode_all(batch)
                    bad += len(invalid)
    src.dispose()
    out.update(rows=n, invalid=bad, engine=plan.engine_rows)
    return out


# --------------------------------------------------------------------------- full exports


def export(url: str, sql_file: Path, workdir: Path, *, port: int | None, dry_run: str | None,
           pushdown: bool = True, shard: str | None = None, max_records: int = 10000,
           name: str = "report", server: int | None = None) -> dict[str, Any]:
    """One `python -m connector` run; peak RSS from VmHWM."""
    result = {"type": "line_conversion", "line_tag_id": TAG, "access_token": "bench-token",
              "line_channel_id": CHANNEL, "max_records": max_records,
              "endpoint": f"http://127.0.0.1:{port or 9}", "max_retry": 1}
    report = workdir / f"{name}.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "connector", str(sql_file), "--result", json.dumps(result),
           "--database", url, "--quiet", "--report-file", str(report)]
    if dry_run:
        cmd += ["--dry-run", dry_run]
    if not pushdown:
        cmd += ["--no-pushdown"]
    if shard:
        cmd += ["--shard", shard]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak), daemon=True)
    watcher.start()
    return {"proc": proc, "start": t, "peak": peak, "watcher": watcher, "report": report,
            "server": server, "server_cpu": cpu_of(server)}


def finish(run: dict[str, Any]) -> dict[str, Any]:
    proc = run["proc"]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - run["start"]
    run["watcher"].join(timeout=1)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    rep = json.loads(run["report"].read_text()) if run["report"].exists() else {}
    return {"wall": wall, "exit": os.waitstatus_to_exitcode(status),
            "server": cpu_of(run["server"]) - run["server_cpu"],
            "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": run["peak"][0] / 1024,
            "job": rep.get("duration_seconds") or float("nan"), "rows": rep.get("rows_read", 0),
            "events": rep.get("events_sent", 0), "invalid": rep.get("invalid_records", 0),
            "engine": rep.get("engine_encoded_rows", 0), "status": rep.get("status"),
            "stderr": err[-400:]}


def show_export(label: str, r: dict[str, Any], floor_wall: float | None) -> None:
    ratio = f"x{r['wall'] / floor_wall:.2f} floor  " if floor_wall else ""
    ok = "ok" if r["exit"] == 0 and r["status"] == "success" else f"CHECK {r['status']} {r['stderr']}"
    print(f"  {label:44s} {r['wall']:6.2f}s wall (job {r['job']:.2f}s)  "
          f"{r['rows'] / r['wall']:9,.0f} rows/s  {ratio}cpu {r['cpu']:5.2f}s  "
          f"server cpu {r['server']:5.2f}s  "
          f"peak RSS {r['peak_mb']:4.0f} MB  events {r['events']:,} invalid {r['invalid']:,} "
          f"built by the engine {r['engine']:,}  {load()}  {ok}", flush=True)


def keys_of(path: Path) -> list[str]:
    return [e["event"]["deduplication_key"] for line in path.read_text().splitlines()
            for e in orjson.loads(line)]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export benchmark on Trino")
    p.add_argument("--trino-url", default=None,
                   help="SQLAlchemy URL (default: trino://bench@127.0.0.1:$TRINO_PORT/memory/default)")
    p.add_argument("--rows", type=int, default=300_000, help="rows of the materialised table")
    p.add_argument("--rss-rows", type=int, nargs="*", default=[1_000_000, 5_000_000],
                   help="generated rows for the peak-RSS dry runs (none: skip)")
    p.add_argument("--repeat", type=int, default=2, help="rounds of the floor-vs-export comparison")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "connector-trino-bench"))
    args = p.parse_args(argv)
    port = int(os.environ.get("TRINO_PORT") or 18080)
    url = args.trino_url or f"trino://bench@127.0.0.1:{port}/memory/default"
    server = trino_pid(port) if args.trino_url is None else None
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    version = run_sql(url, "SELECT node_version FROM system.runtime.nodes LIMIT 1")[0][0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, Trino {version} at {url}, "
          f"TRINO_EXTRA_JVM_OPTS={os.environ.get('TRINO_EXTRA_JVM_OPTS', '')!r}, {load()}")
    n = args.rows
    print(f"\n=== setup: {n:,} rows x {len(COLUMNS)} columns ===", flush=True)
    sql = setup(url, "memory.default", n)
    sql_file = workdir / "query.sql"
    sql_file.write_text(sql + "\n")
    receiver, rport = start_receiver(workdir)
    try:
        print("\n=== fetch paths (no encoding) ===", flush=True)
        show("trino client as it comes (gzip, json)", fetch_default_client(url, sql, server), n)
        show("exporter's Source (identity, orjson)", fetch_source(url, sql, server, False), n)
        show("raw JSON values (RowBatch)", fetch_raw(url, sql, server), n)

        print("\n=== pushdown phases and the email digests ===", flush=True)
        eng = phase_engine(url, sql, server, complete=False)
        show("engine builds the events (no completion)", eng, n)
        for in_engine in (False, True):
            r = phase_engine(url, sql, server, complete=True, email_in_engine=in_engine)
            show(f"+ completion, emails hashed by {'the engine' if in_engine else 'hashlib'}", r,
                 n, f"built by the engine {r['engine'] / n:.1%}  ")

        print(f"\n=== floor and full exports, side by side, {args.repeat} rounds ===", flush=True)
        for round_no in range(1, args.repeat + 1):
            floor = fetch_source(url, sql, server, True)
            show(f"[{round_no}] floor (fetch + dict + orjson)", floor, n)
            fw = floor["wall"]
            show_export(f"[{round_no}] dry run", finish(export(
                url, sql_file, workdir, port=None, dry_run=os.devnull, server=server)), fw)
            before = receiver_stats(rport)["events"]
            r = finish(export(url, sql_file, workdir, port=rport, dry_run=None, server=server))
            show_export(f"[{round_no}] export to the receiver", r, fw)
            got = receiver_stats(rport)["events"] - before
            if got != r["events"]:
                print(f"  CHECK: the receiver counted {got:,} events, the report {r['events']:,}")
            show_export(f"[{round_no}] export --no-pushdown", finish(export(
                url, sql_file, workdir, port=rport, dry_run=None, pushdown=False, server=server)), fw)

        print("\n=== two shards side by side (dry runs) ===", flush=True)
        whole = workdir / "whole.jsonl"
        one = finish(export(url, sql_file, workdir, port=None, dry_run=str(whole), server=server))
        show_export("one process", one, None)
        runs = [export(url, sql_file, workdir, port=None, dry_run=str(workdir / f"shard{k}.jsonl"),
                       shard=f"{k}/2", name=f"shard{k}") for k in range(2)]
        done = [finish(r) for r in runs]
        for k, r in enumerate(done):
            show_export(f"--shard {k}/2", r, None)
        union = keys_of(workdir / "shard0.jsonl") + keys_of(workdir / "shard1.jsonl")
        everything = keys_of(whole)
        same = sorted(union) == sorted(everything) and len(set(union)) == len(union)
        print(f"  both shards: {max(r['wall'] for r in done):.2f}s wall against "
              f"{one['wall']:.2f}s for one process; union {len(union):,} events, "
              f"{'identical to one process, none twice' if same else 'CHECK: differs'}", flush=True)

        if args.rss_rows:
            print("\n=== peak RSS (dry runs of generated rows) ===", flush=True)
            for rows in args.rss_rows:
                gen = workdir / f"gen_{rows}.sql"
                gen.write_text(trino_generate_sql(rows, int(time.time())) + "\n")
                r = finish(export(url, gen, workdir, port=None, dry_run=os.devnull))
                show_export(f"{rows:,} generated rows", r, None)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    print(f"\n{load()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
