"""Events per second over a real network: the export against a receiver that answers late.

A round trip to LINE's API plus its processing is about 100 ms; on loopback it is nothing. This
runs the full export (`python -m connector`, DuckDB file from bench/datagen.py) against
bench/receiver.py in its own process with an added latency, and prints, for each scenario, the
rate, the requests, the 429s, the peak and final concurrency and the exporter's peak RSS:

- loopback (no latency), default settings;
- 20, 100 and 300 ms, default settings (parallelism 8, adaptive);
- 100 ms against a receiver that answers 429 beyond 4 requests in flight (Retry-After: 1);
- 100 ms one request at a time (parallelism 1), the behaviour before concurrent delivery;
- 100 ms with max_records 100,000, for memory.

    python bench/latency_bench.py                 # 500,000 rows per scenario
    python bench/latency_bench.py --rows 100000   # quick
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.datagen import generate, query_sql  # noqa: E402
from bench.harness import receiver_stats, run_export, start_receiver  # noqa: E402

# (name, receiver options, export settings, share of --rows)
SCENARIOS: list[tuple[str, list[str], dict[str, Any], float]] = [
    ("loopback", [], {}, 1.0),
    ("20 ms", ["--latency-ms", "20"], {}, 1.0),
    ("100 ms", ["--latency-ms", "100"], {}, 1.0),
    ("300 ms", ["--latency-ms", "300"], {}, 1.0),
    ("100 ms, 429 beyond 4 in flight", ["--latency-ms", "100", "--max-in-flight", "4",
                                        "--retry-after", "1"], {}, 1.0),
    ("100 ms, parallelism 1", ["--latency-ms", "100"], {"parallelism": 1}, 0.2),
    ("100 ms, max_records 100,000", ["--latency-ms", "100"], {"max_records": 100_000}, 1.0),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "connector-bench"))
    p.add_argument("--only", help="run only scenarios whose name contains this text")
    args = p.parse_args(argv)
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    table = [["scenario", "rows", "seconds", "events/s", "requests", "429s", "peak in flight",
              "final limit", "lowered", "peak RSS MB", "check"]]
    for name, options, settings, share in SCENARIOS:
        if args.only and args.only not in name:
            continue
        n = max(1000, int(args.rows * share))
        db = workdir / f"events_{n}.duckdb"
        generate(db, n)
        sql_file = workdir / f"query_{n}.sql"
        sql_file.write_text(query_sql())
        receiver, port = start_receiver(workdir, *options)
        try:
            settings = {"max_records": 1000, **settings}
            r = run_export(f"duckdb:///{db}", sql_file, workdir, port=port, dry_run=False,
                           max_retry=8, **settings)
            stats = receiver_stats(port)
        finally:
            receiver.terminate()
            receiver.wait()
        rep = r["report"]
        rate = r["events"] / r["wall"] if r["wall"] else 0
        ok = (r["exit"] == 0 and rep.get("failed_events") == 0
              and stats["events"] == r["events"] == rep.get("rows_read", 0) - r["invalid"])
        row = [name, f"{n:,}", f"{r['wall']:.2f}", f"{rate:,.0f}", f"{rep.get('requests', 0):,}",
               f"{stats['rejected_429']:,}", rep.get("peak_in_flight"),
               rep.get("concurrency_limit"), rep.get("concurrency_lowered") or "-",
               f"{r['peak_rss_mb']:.0f}", "ok" if ok else f"FAILED {r['stderr'][-200:]}"]
        table.append(row)
        print("  " + " | ".join(str(c) for c in row), flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}\n")
    print("| " + " | ".join(table[0]) + " |")
    print("|" + " --- |" * len(table[0]))
    for row in table[1:]:
        print("| " + " | ".join(str(c) for c in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
