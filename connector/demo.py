"""`connector demo`: a complete export of the bundled examples to an in-process LINE sandbox.

No credentials and no network: the sandbox listens on loopback and the query reads a CSV file
through the embedded DuckDB. It runs exactly the export command a user would run, with the
sandbox's URL as endpoint.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

EXAMPLES = Path("examples")


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="connector demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--query", default=str(EXAMPLES / "conversions_custom_data.sql"),
                   help="SQL file to export (default: %(default)s)")
    p.add_argument("--result", default=str(EXAMPLES / "result.sandbox.json"),
                   help="result JSON whose endpoint is replaced by the sandbox (default: %(default)s)")
    p.add_argument("--report-file", default="demo-report.json", help="default: %(default)s")
    p.add_argument("--keep-open", action="store_true",
                   help="keep the sandbox and its web console running until Ctrl-C")
    args = p.parse_args(argv)
    if not Path(args.query).exists():
        print(f"connector demo: {args.query} not found; run it from the root of a clone",
              file=sys.stderr)
        return 2

    from connector.cli import export
    from connector.sandbox import run_sandbox

    result = json.loads(Path(args.result).read_text(encoding="utf-8"))
    with run_sandbox() as sb:
        result["endpoint"] = sb.url
        print(f"LINE sandbox listening at {sb.url} (console: {sb.url}/)", file=sys.stderr)
        print(f"$ connector {args.query} --result @{args.result} --report-file "
              f"{args.report_file}   # endpoint -> {sb.url}", file=sys.stderr)
        rc = export([args.query, "--result", json.dumps(result),
                     "--report-file", args.report_file])
        stats = sb.stats()
        print(f"sandbox received {stats['requests']} request(s) and stored "
              f"{stats['accepted']} event(s); report written to {args.report_file}",
              file=sys.stderr)
        if args.keep_open:
            print(f"console: {sb.url}/ - press Ctrl-C to stop", file=sys.stderr)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    # Invalid example rows are skipped on purpose; the demo succeeds when the export did.
    return rc
