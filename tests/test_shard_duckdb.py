"""--shard on the embedded DuckDB: the union over all shards is the unsharded export, no overlap."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.source.sharding import MAX_SHARDS, parse_shard, shard_of
from connector.errors import ConfigError
from helpers import gen_sql, generated_sql, result_config, run_cli


def _bodies(path):
    return [e["event"]["deduplication_key"] for line in path.read_text().splitlines()
            for e in json.loads(line)]


def test_union_of_shards_equals_unsharded_export(tmp_path):
    sql = generated_sql(5000, invalid_every=97)
    config = result_config(None, access_token="x")
    full = tmp_path / "full.jsonl"
    assert run_cli(tmp_path, sql, config, "--dry-run", str(full)).returncode == 0
    everything = _bodies(full)
    parts, invalid = [], 0
    for k in range(3):
        out = tmp_path / f"s{k}.jsonl"
        run = run_cli(tmp_path, sql, config, "--dry-run", str(out), "--shard", f"{k}/3")
        assert run.returncode == 0, run.stderr
        keys = _bodies(out)
        assert all(shard_of(key, 3) == k for key in keys)  # the engine's hash is MD5's prefix
        assert keys == [key for key in everything if shard_of(key, 3) == k]  # query order kept
        parts.append(keys)
        invalid += run.report["invalid_records"]
    union = [key for part in parts for key in part]
    assert sorted(union) == sorted(everything) and len(set(union)) == len(union)
    assert invalid == 5000 // 97
    assert all(len(p) > 1000 for p in parts)  # the hash spreads rows


@pytest.mark.parametrize("spec", ["3/3", "1", "-1/2", "a/b", "0/0", "0/99999", "", " ", "１/２",
                                  "0/2/3", "0 / 2 x"])
def test_bad_shard_specs(spec):
    with pytest.raises(ConfigError):
        parse_shard(spec)


@given(st.one_of(st.text(max_size=12), st.builds("{}/{}".format, st.integers(-3, 5000),
                                                  st.integers(-3, 5000))))
def test_generated_shard_specs_parse_to_a_shard_or_refuse(text):
    try:
        shard = parse_shard(text)
    except ConfigError as exc:
        assert str(exc).startswith("--shard: ") and "\n" not in str(exc)
        return
    assert 0 <= shard.index < shard.count <= MAX_SHARDS
    assert tuple(int(part) for part in text.split("/")) == (shard.index, shard.count)


def test_bad_shard_is_exit_2(tmp_path):
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"), "--shard", "5/2")
    assert run.returncode == 2 and "--shard" in run.stderr


def test_shard_unsupported_engine_is_exit_2(tmp_path):
    run = run_cli(tmp_path, "SELECT 1", result_config(None, access_token="x"), "--shard", "0/2",
                  "--database", f"sqlite:///{tmp_path}/x.db")
    assert run.returncode == 2 and "sqlite" in run.stderr


def test_shards_run_concurrently_on_one_duckdb_file(tmp_path):
    """DuckDB locks a file opened for writing; the exporter opens files read-only."""
    import os
    import subprocess
    import sys

    import duckdb

    db = tmp_path / "events.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE events AS {generated_sql(3000)}")
    con.close()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "connector", "-", "--quiet", "--database", f"duckdb:///{db}",
         "--result", json.dumps(result_config(None, access_token="x")),
         "--dry-run", str(tmp_path / f"s{k}.jsonl"), "--shard", f"{k}/2"],
        stdin=subprocess.PIPE, text=True, env=dict(os.environ)) for k in range(2)]
    for p in procs:
        p.communicate("SELECT * FROM events", timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    keys = _bodies(tmp_path / "s0.jsonl") + _bodies(tmp_path / "s1.jsonl")
    assert sorted(keys) == sorted(f"k-{i}" for i in range(1, 3001))


def test_null_key_rows_land_in_a_shard_that_reports_them(sandbox, tmp_path):
    """A NULL deduplication_key hashes as the empty string, so its row lands in exactly one
    shard, which reports it invalid: together the shards read every row the unsharded query
    reads. A NULL in the shard filter would match no shard, and strict mode would then pass
    sharded where it fails unsharded."""
    sql = gen_sql(6).replace("'k-' || i AS deduplication_key",
                             "CASE WHEN i = 3 THEN NULL ELSE 'k-' || i END AS deduplication_key")
    config = result_config(sandbox, ignore_invalid_records=False)
    # Unsharded, this query reads 6 rows, finds row 3 invalid and exits 1 sending nothing.
    shards = [run_cli(tmp_path, sql, config, "--shard", f"{k}/2", "--dry-run",
                      str(tmp_path / f"s{k}.jsonl")) for k in range(2)]
    assert sum(s.report["rows_read"] for s in shards) == 6
    assert sum(s.report["invalid_records"] for s in shards) == 1
    # Strict mode holds per shard (each shard is its own job): the shard that read the invalid
    # row fails and sends nothing.
    (bad,) = [s for s in shards if s.report["invalid_records"]]
    assert bad.returncode == 1 and bad.report["events_sent"] == 0
