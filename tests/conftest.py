"""Shared fixtures: a real sandbox on loopback and a helper that runs the real CLI."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from connector.sandbox import run_sandbox

REPO = Path(__file__).resolve().parents[1]
TAG = "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"
TOKEN = "tok-SECRET-7f3a9c1e5b"  # any leak of this string in output is a bug


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    with run_sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: Any) -> Any:
    sandbox_server.reset()
    sandbox_server.clear_faults()
    return sandbox_server


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None
    elapsed: float

    def assert_no_secret(self, *secrets: str) -> None:
        blob = self.stdout + self.stderr + json.dumps(self.report or {})
        for s in (TOKEN, *secrets):
            assert s not in blob, f"secret {s[:3]}... leaked into output"


def check_equation(report: dict[str, Any]) -> None:
    assert report["rows_read"] == (report["events_sent"] + report["invalid_records"]
                                   + report["rejected_events"] + report["failed_events"]), report


def result_config(sandbox: Any = None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"type": "line_conversion", "line_tag_id": TAG,
                              "access_token": "${TEST_LINE_TOKEN}", "initial_retry_wait": 1}
    if sandbox is not None:
        config["endpoint"] = sandbox.url
    config.update(overrides)
    return config


def run_cli(tmp_path: Path, sql: str, config: dict[str, Any], *extra: str,
            env: dict[str, str] | None = None, timeout: float = 300) -> CliRun:
    query = tmp_path / f"q-{uuid.uuid4().hex[:8]}.sql"
    query.write_text(sql)
    report_path = tmp_path / f"report-{uuid.uuid4().hex[:8]}.json"
    full_env = {k: v for k, v in os.environ.items() if k != "CONNECTOR_DATABASE_URL"}
    full_env.update({"TEST_LINE_TOKEN": TOKEN, **(env or {})})
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "connector", str(query), "--result", json.dumps(config),
         "--report-file", str(report_path), *extra],
        capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=timeout,
    )
    elapsed = time.monotonic() - start
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is not None:
        check_equation(report)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, report, elapsed)


def run_cli_peak_rss(tmp_path: Path, sql: str, config: dict[str, Any],
                     *extra: str) -> tuple[dict[str, Any], int]:
    """Run the CLI, sampling its RSS; returns (report, peak RSS in bytes). Must succeed."""
    import psutil

    query = tmp_path / f"q-{uuid.uuid4().hex[:8]}.sql"
    query.write_text(sql)
    report = tmp_path / f"r-{uuid.uuid4().hex[:8]}.json"
    env = {k: v for k, v in os.environ.items() if k != "CONNECTOR_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", str(query), "--quiet", "--report-file", str(report),
         "--result", json.dumps(config), *extra], env={**env, "TEST_LINE_TOKEN": TOKEN})
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    assert proc.returncode == 0
    result = json.loads(report.read_text())
    check_equation(result)
    return result, peak


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def now_s() -> int:
    return int(time.time())
