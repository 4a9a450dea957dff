"""SQLite storage of accepted events, in memory or in a file that survives a restart.

Not thread-safe by itself: the sandbox serialises every call with one lock.
"""
from __future__ import annotations

import os
import sqlite3
from typing import Any, Iterable, Sequence

import orjson

DB_FILE_NAME = "sandbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,  -- arrival order
    tag         TEXT    NOT NULL,
    event_name  TEXT    NOT NULL,     -- '' when the event has no event_name (never a valid name)
    dedup_key   TEXT    NOT NULL,
    received_at REAL    NOT NULL,     -- UNIX seconds
    idmask      INTEGER NOT NULL,     -- bit i set: the event carries IDENTIFIER_KEYS[i]
    body        BLOB    NOT NULL      -- the event's JSON
);
CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events (tag, event_name, dedup_key);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
"""

# (tag, event_name, dedup_key, received_at, idmask, body)
Row = tuple[str, str, str, float, int, bytes]


class EventStore:
    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        if data_dir is None:
            self.path: str | None = None
            target = ":memory:"
        else:
            os.makedirs(data_dir, exist_ok=True)
            self.path = os.path.join(os.fspath(data_dir), DB_FILE_NAME)
            target = self.path
        # Autocommit mode; transactions are explicit (one per request).
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @property
    def persistent(self) -> bool:
        return self.path is not None

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------- writes
    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def insert(self, rows: Sequence[Row]) -> list[tuple[int, int]]:
        """Insert inside the open transaction; duplicates are skipped.

        Returns [(idmask, count)] of the rows actually stored.
        """
        if not rows:
            return []
        (last,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        self._db.executemany(
            "INSERT OR IGNORE INTO events (tag, event_name, dedup_key, received_at, idmask, body)"
            " VALUES (?, ?, ?, ?, ?, ?)", rows)
        # Rowids grow, so the new rows are exactly those above the old maximum.
        return self._db.execute(
            "SELECT idmask, COUNT(*) FROM events WHERE id > ? GROUP BY idmask", (last,)).fetchall()

    def put_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                         (key, orjson.dumps(value)))

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def clear(self) -> None:
        self.begin()
        try:
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM meta")
            self.commit()
        except BaseException:
            self.rollback()
            raise

    # ----------------------------------------------------------------- reads
    def list_events(self, tag: str | None, limit: int | None, offset: int) -> list[tuple]:
        """[(id, tag, received_at, body)] in arrival order."""
        sql = "SELECT id, tag, received_at, body FROM events"
        args: list[Any] = []
        if tag is not None:
            sql += " WHERE tag = ?"
            args.append(tag)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
        return self._db.execute(sql, args).fetchall()

    def count(self, tag: str | None = None) -> int:
        if tag is None:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM events WHERE tag = ?", (tag,)).fetchone()[0]

    def counts_by_tag_and_mask(self) -> Iterable[tuple[str, int, int]]:
        return self._db.execute(
            "SELECT tag, idmask, COUNT(*) FROM events GROUP BY tag, idmask").fetchall()
