"""The output mapping: a segment whose columns are not LINE's, mapped to LINE's by renames and
string builders, through the real CLI on DuckDB (pushdown on and off) and Trino."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import ConfigError
from connector.mapping import compile_mapping, parse_mapping
from connector.source.sharding import shard_of
from helpers import now_s, result_config, run_cli, write_csv

TS = now_s() - 600

PROFILE = [
    {"mail": " Taro.Yamada@Example.com ", "customer_id": "cust_1", "order_id": "1001",
     "seen_at": TS, "page": "https://shop.example.com/a", "cc": "JPY"},
    {"mail": "hanako@example.jp", "customer_id": "cust_2", "order_id": "1002", "seen_at": TS + 1,
     "page": "", "cc": "USD"},
    {"mail": "", "customer_id": "cust_3", "order_id": "", "seen_at": TS + 2,
     "page": "https://shop.example.com/c", "cc": "JPY"},
    {"mail": "not-an-address", "customer_id": "cust_4", "order_id": "1004", "seen_at": TS + 3,
     "page": "https://shop.example.com/d", "cc": "EUR"},
]

BUILT = [
    {"name": "event_type", "string_builder": [{"type": "string", "value": "conversion"}]},
    {"name": "source_type", "string_builder": [{"type": "string", "value": "web"}]},
]

MAPPINGS: dict[str, dict[str, Any]] = {
    "renames only the listed columns": {"all_columns": False, "columns": [
        {"source": "mail", "name": "email"}, {"source": "customer_id", "name": "external_id"},
        {"source": "order_id", "name": "deduplication_key"},
        {"source": "seen_at", "name": "event_timestamp"}, {"source": "page", "name": "url"},
        *BUILT]},
    "all columns plus renames": {"all_columns": True, "columns": [
        {"source": "mail", "name": "email"}, {"source": "customer_id", "name": "external_id"},
        {"source": "order_id", "name": "deduplication_key"},
        {"source": "seen_at", "name": "event_timestamp"}, *BUILT]},
    "every piece type": {"all_columns": False, "columns": [
        {"source": "mail", "name": "email"}, {"source": "seen_at", "name": "event_timestamp"},
        {"name": "deduplication_key", "string_builder": [
            {"type": "string", "value": "seg"}, {"type": "segment_id"},
            {"type": "string", "value": "-"}, {"source": "order_id"}]},
        {"name": "external_id", "string_builder": [
            {"type": "audience_id"}, {"type": "string", "value": "_"}, {"source": "customer_id"}]},
        {"name": "event_name", "string_builder": [{"type": "segment_name"}]},
        {"name": "title", "string_builder": [
            {"type": "timestamp"}, {"type": "string", "value": " / "},
            {"type": "timestamp", "format": "%Y%m%d %H:%M", "timezone": "Asia/Tokyo"}]},
        *BUILT]},
}
METADATA = ["--metadata", "segment_id=42", "--metadata", "segment_name=VIP",
            "--metadata", "audience_id=7"]


def export(tmp_path: Path, mapping: dict[str, Any], *extra: str, sql: str | None = None,
           config: dict[str, Any] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    write_csv(tmp_path / "profile.csv", PROFILE)
    out = tmp_path / f"bodies-{len(list(tmp_path.iterdir()))}.jsonl"
    run = run_cli(tmp_path, sql or "SELECT * FROM 'profile.csv'", config or result_config(),
                  "--output-mapping", json.dumps(mapping), *METADATA, "--dry-run", str(out),
                  *extra)
    run.bodies = out.read_bytes() if out.exists() else b""  # type: ignore[attr-defined]
    bodies = [e for line in run.bodies.splitlines() for e in json.loads(line)]  # type: ignore[attr-defined]
    return run, bodies


@pytest.mark.parametrize("name", list(MAPPINGS))
def test_every_mapping_form_gives_the_same_bytes_with_and_without_pushdown(tmp_path, name):
    run, bodies = export(tmp_path, MAPPINGS[name])
    assert run.returncode == 0, run.stderr
    run2, bodies2 = export(tmp_path, MAPPINGS[name], "--no-pushdown")
    assert run2.returncode == 0, run2.stderr
    assert bodies and run.report["engine_encoded_rows"] > 0 and run2.report["engine_encoded_rows"] == 0

    def same_time(raw: bytes) -> bytes:
        # Two runs, two export times: the timestamp pieces are compared within a run elsewhere.
        return re.sub(rb'"title":"[^"]*"', b'"title":"T"', raw)

    assert same_time(run.bodies) == same_time(run2.bodies)
    assert run.report["invalid_by_column"] == run2.report["invalid_by_column"]
    assert run.report["activation"] == {"name": None, "metadata": {
        "segment_id": "42", "segment_name": "VIP", "audience_id": "7"}}


def test_renamed_columns_are_named_with_their_source_in_invalid_rows(tmp_path):
    run, bodies = export(tmp_path, MAPPINGS["renames only the listed columns"])
    r = run.report
    # Row 3 has no order_id: its deduplication_key is NULL; row 4's mail is not an address.
    assert r["invalid_by_column"] == {"deduplication_key (from order_id)": 1,
                                      "email (from mail)": 1}
    samples = {s["row"]: s for s in r["invalid_samples"]}
    assert samples[4]["value"] == "n***" and "not-an-address" not in json.dumps(r)
    assert [b["event"]["deduplication_key"] for b in bodies] == ["1001", "1002"]
    assert bodies[0]["user"] == {
        "email": "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a",
        "external_id": "cust_1"}
    assert bodies[0]["web"] == {"url": "https://shop.example.com/a"}


def test_string_builder_pieces_and_one_export_time_for_every_row(tmp_path):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    run, bodies = export(tmp_path, MAPPINGS["every piece type"])
    after = dt.datetime.now(dt.timezone.utc)
    assert run.returncode == 0, run.stderr
    keys = [b["event"]["deduplication_key"] for b in bodies]
    assert keys == ["seg42-1001", "seg42-1002", "seg42-1004"][:len(keys)]
    assert {b["user"]["external_id"] for b in bodies} == {"7_cust_1", "7_cust_2", "7_cust_4"} \
        & {b["user"]["external_id"] for b in bodies}
    assert {b["event"]["event_name"] for b in bodies} == {"VIP"}
    titles = {b["web"]["title"] for b in bodies}
    assert len(titles) == 1, "the export time differs between rows"
    utc, tokyo = titles.pop().split(" / ")
    stamp = dt.datetime.strptime(utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert before <= stamp <= after
    assert tokyo == stamp.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d %H:%M")
    # Row 3 has no order_id: a NULL piece makes the whole key NULL, and validation says so.
    assert run.report["invalid_by_column"].get("deduplication_key") == 1


def test_shards_hash_the_built_key(tmp_path):
    sql = ("SELECT 'u' || i || '@example.com' AS mail, i AS order_id, "
           f"{TS} AS seen_at FROM range(1, 301) t(i)")
    mapping = {"all_columns": False, "columns": [
        {"source": "mail", "name": "email"}, {"source": "seen_at", "name": "event_timestamp"},
        {"name": "deduplication_key", "string_builder": [
            {"type": "string", "value": "seg"}, {"type": "segment_id"},
            {"type": "string", "value": "-"}, {"source": "order_id"}]}, *BUILT]}
    whole_run, whole = export(tmp_path, mapping, sql=sql)
    assert whole_run.returncode == 0 and len(whole) == 300
    union: list[str] = []
    for k in range(3):
        run, part = export(tmp_path, mapping, "--shard", f"{k}/3", sql=sql)
        assert run.returncode == 0, run.stderr
        keys = [b["event"]["deduplication_key"] for b in part]
        assert all(shard_of(key, 3) == k for key in keys)
        union += keys
    assert sorted(union) == sorted(b["event"]["deduplication_key"] for b in whole)
    assert len(set(union)) == 300


ERRORS = {
    "an unknown source column": (
        {"all_columns": False, "columns": [{"source": "nope", "name": "email"}, *BUILT]},
        "no column 'nope'"),
    "two outputs with one name": (
        {"all_columns": True, "columns": [{"source": "mail", "name": "Customer_ID"}]},
        "two output columns are named"),
    "an empty string builder": (
        {"columns": [{"name": "event_name", "string_builder": []}]},
        "the string_builder is empty"),
    "an unknown piece type": (
        {"columns": [{"name": "event_name", "string_builder": [{"type": "segment_size"}]}]},
        "unknown piece type 'segment_size'"),
    "a required LINE column left out": (
        {"all_columns": False, "columns": [{"source": "mail", "name": "email"}, *BUILT]},
        "lacks required columns deduplication_key, event_timestamp"),
    "metadata no one gave": (
        {"columns": [{"name": "x", "string_builder": [{"type": "segment_name"}]}]},
        "no value was given"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_mapping_errors_exit_2_before_any_request(sandbox, tmp_path, name):
    mapping, message = ERRORS[name]
    write_csv(tmp_path / "profile.csv", PROFILE)
    extra = [] if name == "metadata no one gave" else ["--metadata", "segment_id=42"]
    run = run_cli(tmp_path, "SELECT * FROM 'profile.csv'", result_config(sandbox),
                  "--output-mapping", json.dumps(mapping), *extra)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert "output mapping" in run.stderr or "required" in run.stderr
    assert sandbox.stats()["requests"] == 0
    run.assert_no_secret()


def test_mapping_from_a_file_and_metadata_beside_it(sandbox, tmp_path):
    mapping = dict(MAPPINGS["every piece type"], metadata={"segment_id": 9, "segment_name": "S",
                                                           "audience_id": "3"})
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    write_csv(tmp_path / "profile.csv", PROFILE)
    run = run_cli(tmp_path, "SELECT * FROM 'profile.csv'", result_config(sandbox),
                  "--output-mapping", f"@{tmp_path / 'mapping.json'}",
                  "--metadata", "segment_id=10")  # the command line wins
    assert run.returncode == 0, run.stderr
    keys = [e["event"]["event"]["deduplication_key"] for e in sandbox.events()]
    assert keys and all(k.startswith("seg10-") for k in keys)
    assert run.report["activation"]["metadata"] == {"segment_id": "10", "segment_name": "S",
                                                    "audience_id": "3"}


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC_", min_size=1, max_size=8)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(columns=st.lists(names, min_size=1, max_size=6, unique_by=str.lower),
       renames=st.lists(st.tuples(names, names), max_size=5), all_columns=st.booleans())
def test_generated_mappings_compile_or_name_the_problem(columns, renames, all_columns):
    """Any mapping over any column set either compiles to SQL whose outputs are unique (case
    aside) or is refused with a ConfigError naming an entry: never anything else."""
    raw = {"all_columns": all_columns, "columns": [{"source": s, "name": n} for s, n in renames]}
    try:
        mapping = parse_mapping(raw)
        mapped = compile_mapping(mapping, "SELECT 1", columns,
                                 dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc))
    except ConfigError as exc:
        assert str(exc).startswith("output mapping"), exc
        return
    lowered = [n.lower() for n in mapped.names]
    assert len(lowered) == len(set(lowered))
    for source, name in renames:
        assert name.lower() in lowered
