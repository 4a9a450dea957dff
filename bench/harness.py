"""What the benchmarks share: the receiver process, its counters, and one export run as a
subprocess with its wall time, CPU and peak RSS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TAG = "00000000-0000-4000-8000-000000000000"
CHANNEL = "1234567890"  # line_uid needs a channel id


def start_receiver(workdir: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    """bench/receiver.py in its own process (options: --latency-ms, --max-in-flight, ...)."""
    port_file = workdir / "receiver.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "receiver.py"), "--port-file",
                             str(port_file), *options], stdout=subprocess.DEVNULL)
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
               dry_run: bool, pushdown: bool = True, **settings: Any) -> dict[str, Any]:
    """`python -m connector` as a subprocess, to the receiver on `port` (or a dry run): its
    wall time, CPU, peak RSS and report figures, and what the receiver counted."""
    result = {"type": "line_conversion", "line_tag_id": TAG, "access_token": "bench-token",
              "line_channel_id": CHANNEL, "max_records": max_records,
              "endpoint": f"http://127.0.0.1:{port or 9}", "max_retry": 1, **settings}
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
        "status": rep.get("status"), "stderr": err[-500:], "report": rep,
    }
    if port:
        after = receiver_stats(port)
        out["received_events"] = after["events"] - before["events"]  # type: ignore[index]
        out["received_requests"] = after["requests"] - before["requests"]  # type: ignore[index]
    return out
