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
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.datagen import generate, query_sql  # noqa: E402
from bench.harness import run_export, start_receiver  # noqa: E402
from connector.mapping import bind_columns  # noqa: E402
from connector.outputs.base import InvalidRecord  # noqa: E402
from connector.outputs.line_conversion.encoders import LineEventEncoder  # noqa: E402
from connector.outputs.line_conversion.encoders.pushdown import compile_pushdown  # noqa: E402
from connector.outputs.line_conversion.fields import KNOWN_COLUMNS  # noqa: E402
from connector.source import Source  # noqa: E402


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
            index = bind_columns(stream.columns, output="line_conversion", required=(),
                                 known=KNOWN_COLUMNS).index
            enc = LineEventEncoder(index, channel_id_present=True, test_flag=False,
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
    described = src.describe(sql) or []
    binding = bind_columns([n for n, _ in described], output="line_conversion", required=(),
                           known=KNOWN_COLUMNS, types=[t for _, t in described])
    plan = compile_pushdown(sql, binding, channel_id_present=True, test_flag=False,
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
                    _, invalid = plan.encode_all(batch)
                    bad += len(invalid)
        engine = plan.engine_rows
    src.dispose()
    out.update(rows=n, invalid=bad, engine=engine)
    return out


# --------------------------------------------------------------------------- full export


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
    if args.sort_join:
        # A self-join on the key and a sort on a text column: more than the embedded engine's
        # default memory cap holds, so it must spill to its temporary directory and finish.
        sj_file = workdir / "query_sort_join.sql"
        sj_file.write_text(f"WITH q AS (\n{sql}\n)\nSELECT q.* FROM q JOIN "
                           "(SELECT deduplication_key AS k FROM q) d ON q.deduplication_key = d.k\n"
                           "ORDER BY q.email DESC NULLS LAST\n")
        r = run_export(url, sj_file, workdir, max_records=args.max_records[0], port=None,
                       dry_run=True)
        ok = r["status"] == "success" and r["events"] + r["invalid"] == n
        print(f"  dry-run, self-join + sort     {r['wall']:.2f}s wall, peak RSS "
              f"{r['peak_rss_mb']:.0f} MB {'OK' if ok else 'CHECK: ' + r['stderr']}", flush=True)
        table.append([f"{n:,}", "dry-run, self-join + sort", args.max_records[0],
                      f"{r['wall']:.2f}", f"{r['events'] / r['wall']:,.0f}",
                      f"{r['wall'] / floor['wall']:.2f}", f"{r['peak_rss_mb']:.0f}", "-", "-",
                      f"{floor['wall']:.2f} ({n / floor['wall']:,.0f}/s)", "ok" if ok else "CHECK"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="export benchmark")
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    p.add_argument("--max-records", type=int, nargs="+", default=[1000, 10000, 100000],
                   help="export runs; 100000 runs only when N >= 100000 (memory check)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "connector-bench"))
    p.add_argument("--no-phases", action="store_true", help="skip the in-process fetch/encode phases")
    p.add_argument("--no-dry-run", action="store_true")
    p.add_argument("--sort-join", action="store_true",
                   help="also a dry run of the query self-joined and sorted (spills to disk)")
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
