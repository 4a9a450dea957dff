"""Saved activations: `connector activation create/run/list/show/history/delete`, stored beside
the schedules, run against the sandbox over HTTP with the example segment and mapping."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import REPO, TAG, TOKEN, result_config, run_connector

MAPPING = REPO / "examples" / "activation" / "mapping.json"
SEGMENT = REPO / "examples" / "activation" / "segment.sql"


def segment(tmp_path: Path) -> Path:
    """The example segment, reading the example table by its absolute path."""
    query = tmp_path / "segment.sql"
    query.write_text(SEGMENT.read_text().replace(
        "'examples/activation/profiles.csv'", f"'{REPO / 'examples/activation/profiles.csv'}'"))
    return query


def activation(tmp_path: Path, *args: str) -> Any:
    return run_connector(tmp_path, "activation", *args, "--state",
                         f"sqlite:///{tmp_path / 'state.db'}")


def test_create_run_and_read_back_an_activation(tmp_path, sandbox):
    created = activation(tmp_path, "create", "high-value", "--query", str(segment(tmp_path)),
                         "--result", json.dumps(result_config(sandbox)),
                         "--output-mapping", f"@{MAPPING}", "--metadata", "segment_name=VIP")
    assert created.returncode == 0, created.stderr
    assert "activation 'high-value' created" in created.stdout
    listed = activation(tmp_path, "list")
    assert "high-value" in listed.stdout and "VIP" in listed.stdout
    ran = activation(tmp_path, "run", "high-value")
    assert ran.returncode == 0, ran.stderr
    assert "email (from mail)" in ran.stderr
    events = sandbox.events(TAG)
    assert events and all(e["event"]["event"]["deduplication_key"].startswith("seg1042-")
                          for e in events)
    assert {e["event"]["event"]["event_name"] for e in events} == {"HighValue"}
    history = json.loads(activation(tmp_path, "history", "high-value", "--json").stdout)
    assert len(history) == 1 and history[0]["status"] == "success"
    assert history[0]["events_sent"] == len(events)
    report = json.loads(Path(history[0]["report_path"]).read_text())
    assert report["activation"] == {"name": "high-value", "metadata": {
        "segment_id": "1042", "segment_name": "VIP", "audience_id": "77"}}
    shown = json.loads(activation(tmp_path, "show", "high-value", "--json").stdout)
    assert shown["kind"] == "activation" and shown["definition"]["mapping"]["metadata"][
        "segment_name"] == "VIP"
    assert TOKEN not in json.dumps(shown) + created.stdout + created.stderr + ran.stderr
    deleted = activation(tmp_path, "delete", "high-value")
    assert deleted.returncode == 0
    assert "no activations" in activation(tmp_path, "list").stdout


def test_activation_errors_exit_2_with_a_message(tmp_path, sandbox):
    result = json.dumps(result_config(sandbox))
    query = str(segment(tmp_path))
    bad_mapping = activation(tmp_path, "create", "a", "--query", query, "--result", result,
                             "--output-mapping", '{"columns": [{"name": "x"}]}')
    assert bad_mapping.returncode == 2 and "output mapping: columns[0]" in bad_mapping.stderr
    no_metadata = activation(tmp_path, "create", "a", "--query", query, "--result", result,
                             "--output-mapping", json.dumps({"columns": [
                                 {"name": "x", "string_builder": [{"type": "audience_id"}]}]}))
    assert no_metadata.returncode == 2 and "audience_id" in no_metadata.stderr
    missing = activation(tmp_path, "run", "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr
    # A plain schedule is not an activation.
    plain = run_connector(tmp_path, "schedule", "create", "plain", "--cron", "", query,
                          "--result", result, "--state", f"sqlite:///{tmp_path / 'state.db'}")
    assert plain.returncode == 0, plain.stderr
    wrong = activation(tmp_path, "run", "plain")
    assert wrong.returncode == 2 and "not an activation" in wrong.stderr
    assert sandbox.stats()["requests"] == 0


def test_an_activation_on_a_cron_runs_as_a_schedule_slot(tmp_path, sandbox):
    """With a cron, an activation has slots like any schedule: `schedule run` backfills them,
    each with the activation's mapping and metadata."""
    created = activation(tmp_path, "create", "daily-vip", "--query", str(segment(tmp_path)),
                         "--result", json.dumps(result_config(sandbox)),
                         "--output-mapping", f"@{MAPPING}", "--cron", "@daily",
                         "--timezone", "Asia/Tokyo")
    assert created.returncode == 0, created.stderr
    ran = run_connector(tmp_path, "schedule", "run", "daily-vip", "2026-11-01T00:00:00+09:00",
                        "-n", "2", "--state", f"sqlite:///{tmp_path / 'state.db'}")
    assert ran.returncode == 0, ran.stderr
    history = json.loads(activation(tmp_path, "history", "daily-vip", "--json").stdout)
    assert [h["status"] for h in history] == ["success", "success"]
    reports = [json.loads(Path(h["report_path"]).read_text()) for h in history]
    assert all(r["activation"]["name"] == "daily-vip" for r in reports)
