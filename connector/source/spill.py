"""Where the embedded DuckDB spills: one directory per database file and process, shared.

DuckDB keeps one database instance per file in a process and refuses a second connection
whose configuration differs, so every Source on one file (a workflow's parallel exports on its
scratch database) must name the same spill directory. The directory is counted: the last
Source to let go of it removes it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading

import sqlalchemy as sa

_lock = threading.Lock()
_users: dict[str, int] = {}


def acquire(url: sa.engine.URL) -> str | None:
    """The spill directory for a DuckDB URL that names none, or None (not DuckDB, or the URL
    sets `temp_directory` itself)."""
    if url.get_backend_name() != "duckdb" or "temp_directory" in url.query:
        return None
    database = url.database or ""
    if database in ("", ":memory:"):
        # Each in-memory connection is its own instance: a directory of its own.
        path = tempfile.mkdtemp(prefix="connector-duckdb-")
    else:
        key = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"connector-duckdb-{os.getpid()}-{key}")
    with _lock:
        _users[path] = _users.get(path, 0) + 1
    return path


def release(path: str | None) -> None:
    """One Source is done with `path`; the last one removes it."""
    if path is None:
        return
    with _lock:
        left = _users.get(path, 1) - 1
        if left > 0:
            _users[path] = left
            return
        _users.pop(path, None)
    shutil.rmtree(path, ignore_errors=True)
