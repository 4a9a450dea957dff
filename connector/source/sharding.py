"""`--shard K/N`: export only the rows whose key hashes to shard K of N, computed by the engine.

The shard of a row is the first 32 bits of MD5 of its key (as text), modulo N. Every engine
computes the same number, so a row lands in the same shard whichever engine reads it, and N
processes started by any orchestrator export every row exactly once between them.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from connector.errors import ConfigError
from connector.masking import show_value

_SPEC = re.compile(r"\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*")
MAX_SHARDS = 4096


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    m = _SPEC.fullmatch(text)
    if not m:
        raise ConfigError(f"--shard: {show_value(text)!r} is not K/N (for example 0/4)")
    k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= MAX_SHARDS or not 0 <= k < n:
        raise ConfigError(f"--shard: need 0 <= K < N <= {MAX_SHARDS}, got {k}/{n}")
    return Shard(k, n)


def _bucket_expr(dialect: str, column: str) -> str:
    """The 32-bit MD5 prefix of the key, as an engine expression."""
    # COALESCE: a row with a NULL key must land in some shard, where it is reported as invalid.
    key = f"COALESCE(CAST({column} AS VARCHAR), '')"
    if dialect == "duckdb":
        return f"CAST(('0x' || substr(md5({key}), 1, 8)) AS UBIGINT)"
    if dialect == "trino":
        return f"from_big_endian_64(from_hex('00000000' || substr(to_hex(md5(to_utf8({key}))), 1, 8)))"
    if dialect == "postgresql":
        return f"('x' || substr(md5(COALESCE(CAST({column} AS TEXT), '')), 1, 8))::bit(32)::bigint"
    raise ConfigError(f"--shard is not supported on {dialect} (supported: duckdb, trino, postgresql)")


def shard_sql(sql: str, dialect: str, shard: Shard, column: str) -> str:
    """The user's query, filtered to one shard. The engine evaluates the hash next to the data."""
    return (f"SELECT * FROM (\n{sql}\n) AS connector_shard_source\n"
            f"WHERE {_bucket_expr(dialect, column)} % {shard.count} = {shard.index}")


def shard_of(key: str | None, count: int) -> int:
    """The same function in Python, for tests and for checking an engine's result."""
    return int(hashlib.md5((key or "").encode("utf-8")).hexdigest()[:8], 16) % count
