"""Every kind of schedule through the real scheduler service: an activation (a segment, its
output mapping and metadata) and a Treasure Workflow file (a `td>` export through a saved
connection), saved with their own commands and run by `connector scheduler --once` like an
export: the slot's time as their session, the sandbox over HTTP, the history written."""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from connector.schedule import ScheduleStore
from helpers import (REPO, TAG, TOKEN, backdate_schedule, result_config, run_connector,
                     slot_query)

pytestmark = pytest.mark.timeout(300)

MAPPING = REPO / "examples" / "activation" / "mapping.json"
SEGMENT = REPO / "examples" / "activation" / "segment.sql"


def saved_connection(home: Path, sandbox: Any) -> None:
    home.mkdir(exist_ok=True, mode=0o700)
    (home / "connections.toml").write_text(textwrap.dedent(f"""\
        [connections.line_sandbox]
        type = "line_conversion"
        endpoint = "{sandbox.url}"
        access_token = {{env = "TEST_LINE_TOKEN"}}
        initial_retry_wait = 1
        """))
    (home / "connections.toml").chmod(0o600)


def test_the_service_runs_activation_and_workflow_schedules(tmp_path, sandbox):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    home = tmp_path / "config-home"
    saved_connection(home, sandbox)
    env = {"CONNECTOR_CONFIG_HOME": str(home)}
    segment = tmp_path / "segment.sql"
    segment.write_text(SEGMENT.read_text().replace(
        "'examples/activation/profiles.csv'", f"'{REPO / 'examples/activation/profiles.csv'}'"))
    made = run_connector(tmp_path, "activation", "create", "vip", "--query", str(segment),
                         "--result", json.dumps(result_config(sandbox)),
                         "--output-mapping", f"@{MAPPING}", "--metadata", "segment_name=VIP",
                         "--cron", "0 * * * *", "--state", url, env=env)
    assert made.returncode == 0, made.stderr
    (tmp_path / "hourly.dig").write_text(textwrap.dedent(f"""\
        timezone: UTC
        schedule:
          hourly>: 00:00
        +send:
          td>:
          query: {json.dumps(slot_query(3, "wf"))}
          result_connection: line_sandbox
          result_settings:
            line_tag_id: {TAG}
        """))
    made = run_connector(tmp_path, "schedule", "create", "hourly-wf", "--workflow",
                         str(tmp_path / "hourly.dig"), "--state", url, env=env)
    assert made.returncode == 0, made.stderr

    # Both became active just before this hour began: this hour's slot is due, nothing older.
    hour = int(time.time() // 3600 * 3600)
    store = ScheduleStore(url)
    try:
        for name in ("vip", "hourly-wf"):
            backdate_schedule(store, name, store.get(name).active_since - (hour - 1))
        once = run_connector(tmp_path, "scheduler", "--state", url, "--once", env=env)
        assert once.returncode == 0, once.stderr
        assert "start vip" in once.stderr and "start hourly-wf" in once.stderr
        for name in ("vip", "hourly-wf"):
            (run,) = store.history(name)
            assert (run.scheduled_time, run.status) == (hour, "success"), (name, run)
    finally:
        store.close()

    events = [e["event"]["event"] for e in sandbox.events(TAG)]
    workflow_keys = sorted(e["deduplication_key"] for e in events
                           if e["deduplication_key"].startswith("wf-"))
    assert workflow_keys == [f"wf-{hour}-{i}" for i in range(3)]  # the slot as its session
    segment_events = [e for e in events if not e["deduplication_key"].startswith("wf-")]
    assert segment_events and all(e["deduplication_key"].startswith("seg1042-")
                                  for e in segment_events)  # the mapping and its metadata
    assert {e["event_name"] for e in segment_events} == {"HighValue"}
    assert TOKEN not in once.stdout + once.stderr
