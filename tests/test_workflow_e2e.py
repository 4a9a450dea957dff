"""The examples of examples/workflow/ end to end, as docs/workflows.md runs them: Treasure Data's
LINE workflow example and the multi-brand workflow on DuckDB, the multi-brand workflow on the
real Trino, and a workflow schedule's slots.

In CI (CI=true) a missing Trino fails the Trino test; elsewhere it skips with the reason.
"""
from __future__ import annotations

import csv
import json
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpers import REPO, TOKEN, no_traceback, run_command

SEED_TAG = "0b5c6a3e-2f4d-4c1a-9e7b-5d8f1a2b3c4d"
SHOES_TAG = "5d1c3a9e-1111-4c1a-9e7b-000000000001"
BAGS_TAG = "5d1c3a9e-2222-4c1a-9e7b-000000000002"


def project(tmp_path: Path, sandbox) -> Path:
    """A copy of the examples, a saved connection to the sandbox and the token as a secret."""
    shutil.copytree(REPO / "examples" / "workflow", tmp_path / "examples" / "workflow")
    shutil.copy(REPO / "examples" / "events.csv", tmp_path / "examples" / "events.csv")
    ok = run_command(tmp_path, "connections", "add", "line_sandbox", "--type", "line_conversion",
                     "--set", f"endpoint={sandbox.url}")
    assert ok.returncode == 0, ok.stderr
    ok = run_command(tmp_path, "secrets", "set", "line.token", input=TOKEN)
    assert ok.returncode == 0, ok.stderr
    return tmp_path


def run(tmp_path: Path, *args: str):
    result = run_command(tmp_path, "workflow", "run", *args, timeout=300)
    no_traceback(result)
    assert TOKEN not in result.stdout + result.stderr
    return result


def expected_per_brand() -> dict[str, int]:
    with open(REPO / "examples" / "events.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["event_type"] == "conversion"]
    return {"shoes": sum(r["category"] == "shoes" for r in rows),
            "bag": sum(r["category"] == "bag" for r in rows)}


def test_seed_workflow(tmp_path, sandbox):
    project(tmp_path, sandbox)
    result = run(tmp_path, "examples/workflow/line_export.dig", "--session", "2026-11-20")
    assert result.returncode == 0, result.stdout + result.stderr
    name, status, rows, events = result.stdout.split()[:4]
    assert (name, status) == ("+line_export+line_messaging_export_task", "success")
    sent = int(events.split("=")[1])
    assert sent == len(sandbox.events(SEED_TAG)) > 500
    reports = list((tmp_path / "examples/workflow/.connector/runs/line_export").glob("*/reports/*.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["events_sent"] == sent


def test_multi_brand_on_duckdb(tmp_path, sandbox):
    project(tmp_path, sandbox)
    db = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    assert run(tmp_path, "examples/workflow/load_sample.dig", "--database", db).returncode == 0
    result = run(tmp_path, "examples/workflow/multi_brand.dig", "--database", db,
                 "--session", "2026-11-20")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = expected_per_brand()
    assert f"{counts['shoes'] + counts['bag']} conversions of 2 brands for 2026-11-20" in result.stdout
    shoes, bags = sandbox.events(SHOES_TAG), sandbox.events(BAGS_TAG)
    assert 0 < len(shoes) <= counts["shoes"] and 0 < len(bags) <= counts["bag"]
    assert not sandbox.events(SEED_TAG)
    assert "+multi_brand+export^sub+for-0=brand=0=shoes+meta" in result.stdout


@pytest.mark.trino
def test_multi_brand_on_trino(tmp_path, sandbox, trino):
    """The same workflow on Trino (its memory catalog), in a schema of its own."""
    root = project(tmp_path, sandbox)
    schema = f"wf17_{uuid.uuid4().hex[:8]}"
    params = root / "examples/workflow/config/params.yml"
    params.write_text(params.read_text().replace("database: analytics", f"database: {schema}"))
    with open(REPO / "examples" / "events.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["event_type"] == "conversion"]
    engine = sa.create_engine(trino)

    def literal(value: str) -> str:
        return "NULL" if value == "" else "'" + value.replace("'", "''") + "'"

    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA memory.{schema}")
        conn.exec_driver_sql(
            f"CREATE TABLE memory.{schema}.raw_events (order_id varchar, event_type varchar, "
            "event_name varchar, source_type varchar, event_time bigint, email varchar, "
            "phone varchar, category varchar)")
        for start in range(0, len(rows), 200):
            values = ", ".join(
                f"({literal(r['order_id'])}, {literal(r['event_type'])}, {literal(r['event_name'])}, "
                f"{literal(r['source_type'])}, {int(r['event_time'])}, {literal(r['email'])}, "
                f"{literal(r['phone'])}, {literal(r['category'])})" for r in rows[start:start + 200])
            conn.exec_driver_sql(f"INSERT INTO memory.{schema}.raw_events VALUES {values}")
    try:
        result = run(tmp_path, "examples/workflow/multi_brand.dig", "--database", trino,
                     "--session", "2026-11-20")
        assert result.returncode == 0, result.stdout + result.stderr
        counts = expected_per_brand()
        assert f"{counts['shoes'] + counts['bag']} conversions of 2 brands" in result.stdout
        assert 0 < len(sandbox.events(SHOES_TAG)) <= counts["shoes"]
        assert 0 < len(sandbox.events(BAGS_TAG)) <= counts["bag"]
        with engine.connect() as conn:  # the prepared tables stay on Trino
            kept = conn.exec_driver_sql(
                f"SELECT count(*) FROM memory.{schema}.brand_conversions").fetchone()
        assert kept == (counts["shoes"] + counts["bag"],)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA memory.{schema} CASCADE")
        engine.dispose()


def test_workflow_schedule(tmp_path):
    (tmp_path / "daily.dig").write_text(
        "timezone: Asia/Tokyo\nschedule:\n  daily>: 07:00:00\n+say:\n"
        "  echo>: ${session_time} last=${last_session_date} next=${next_session_date}\n")
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    made = run_command(tmp_path, "schedule", "create", "nightly", "--workflow", "daily.dig", env=env)
    assert made.returncode == 0, made.stderr
    assert "'0 0 * * *' in Asia/Tokyo, delay 25200s" in made.stdout
    ran = run_command(tmp_path, "schedule", "run", "nightly", "2026-01-02", "-n", "2", env=env)
    assert ran.returncode == 0, ran.stderr
    said = [line for line in ran.stdout.splitlines() if not line.startswith("+")]
    assert said == ["2026-01-02T00:00:00+09:00 last=2026-01-01 next=2026-01-03",
                    "2026-01-03T00:00:00+09:00 last=2026-01-02 next=2026-01-04"]
    history = run_command(tmp_path, "schedule", "history", "nightly", "--json", env=env)
    records = json.loads(history.stdout)
    assert [r["status"] for r in records] == ["success", "success"]
    assert all(r["report_path"].endswith("run.json") for r in records)
    refused = run_command(tmp_path, "schedule", "create", "bad", "--workflow", "daily.dig",
                          "q.sql", env=env)
    assert refused.returncode == 2 and "--workflow takes no QUERY_FILE" in refused.stderr
