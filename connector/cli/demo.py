"""`connector demo`: a complete export of the bundled examples to the output's local emulator.

No credentials and no network: the emulator listens on loopback and the query reads a CSV file
through the embedded DuckDB. The export runs through `run_export`, exactly as the export command
runs it, with the emulator's settings merged over the example result.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import result_url
from connector.api import ExportSpec
from connector.errors import ConfigError
from connector.outputs import load_output

from .export import error, read_query, run_in_console

EXAMPLES = Path("examples")


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="connector demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--query", default=str(EXAMPLES / "conversions_custom_data.sql"),
                   help="SQL file to export (default: %(default)s)")
    p.add_argument("--result", default=str(EXAMPLES / "result.sandbox.json"),
                   help="result JSON whose settings the emulator overrides (default: %(default)s)")
    p.add_argument("--report-file", default="demo-report.json", help="default: %(default)s")
    p.add_argument("--keep-open", action="store_true",
                   help="keep the emulator and its web console running until Ctrl-C")
    args = p.parse_args(argv)
    if not Path(args.query).exists():
        print(f"connector demo: {args.query} not found; run it from the root of a clone",
              file=sys.stderr)
        return 2
    try:
        query = read_query(args.query)
        result = result_url.parse_result("@" + args.result)
        emulator = load_output(result.get("type")).emulator()
    except ConfigError as exc:
        error(str(exc))
        return 2
    if emulator is None:
        error(f"the {result.get('type')} output has no local emulator to run a demo against")
        return 2
    with emulator as emu:
        result.update(emu.config)
        print(emu.banner(), file=sys.stderr)
        overrides = ", ".join(f"{k} -> {v}" for k, v in emu.config.items())
        print(f"$ connector {args.query} --result @{args.result} --report-file "
              f"{args.report_file}   # {overrides}", file=sys.stderr)
        rc = run_in_console(ExportSpec(query=query, output=result, report_path=args.report_file))
        print(f"{emu.summary()}; report written to {args.report_file}", file=sys.stderr)
        if args.keep_open:
            print(f"console: {emu.url}/ - press Ctrl-C to stop", file=sys.stderr)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    # Invalid example rows are skipped on purpose; the demo succeeds when the export did.
    return rc
