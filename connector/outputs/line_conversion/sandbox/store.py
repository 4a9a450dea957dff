"""SQLite storage of the sandbox: accepted events, the events it rejected, and (in a file) the
request log; in memory, or in a file that survives a restart.

Deduplication keeps LINE's window: an event is a duplicate while an event with the same tag,
event_name and deduplication_key arrived less than `dedup_window` seconds before it. Such a
first event is `live`; a partial unique index over the live events does the deduplication, and
events whose window has passed stop being live before each insert.

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
    body        BLOB    NOT NULL,     -- the event's JSON
    live        INTEGER DEFAULT 1     -- 1: later events with its key are duplicates; else NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
-- Digests of the events a 400 was about, so that a resend of one is counted once.
CREATE TABLE IF NOT EXISTS rejected (tag TEXT NOT NULL, digest BLOB NOT NULL,
                                     PRIMARY KEY (tag, digest)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, entry BLOB NOT NULL);
"""
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS events_live_dedup ON events (tag, event_name, dedup_key)
    WHERE live = 1;
CREATE INDEX IF NOT EXISTS events_live_since ON events (received_at) WHERE live = 1;
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
        try:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._db.executescript(_INDEXES)
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """A data directory from before the dedup window: every stored event was live."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "live" not in columns:
            self._db.execute("ALTER TABLE events ADD COLUMN live INTEGER DEFAULT 1")
        self._db.execute("DROP INDEX IF EXISTS events_dedup")

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

    def insert(self, rows: Sequence[Row], dedup_window: float) -> list[tuple[int, int]]:
        """Insert rows received at one moment inside the open transaction; duplicates within
        the window are skipped (dedup_window 0: none is). Returns [(idmask, count)] of the rows
        actually stored."""
        if not rows:
            return []
        if dedup_window > 0:
            received_at = rows[0][3]
            self._db.execute("UPDATE events SET live = NULL WHERE live = 1 AND received_at <= ?",
                             (received_at - dedup_window,))
        (last,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        self._db.executemany(
            "INSERT OR IGNORE INTO events (tag, event_name, dedup_key, received_at, idmask, body,"
            f" live) VALUES (?, ?, ?, ?, ?, ?, {1 if dedup_window > 0 else 'NULL'})", rows)
        # Rowids grow, so the new rows are exactly those above the old maximum.
        return self._db.execute(
            "SELECT idmask, COUNT(*) FROM events WHERE id > ? GROUP BY idmask", (last,)).fetchall()

    def add_rejected(self, tag: str, digest: bytes) -> bool:
        """Remember an event a 400 was about; False if it was rejected before (a resend)."""
        cursor = self._db.execute("INSERT OR IGNORE INTO rejected (tag, digest) VALUES (?, ?)",
                                  (tag, digest))
        return cursor.rowcount == 1

    def log_request(self, entry: dict[str, Any], keep: int) -> None:
        """Append to the stored request log, keeping the newest `keep` entries."""
        self._db.execute("INSERT INTO requests (id, entry) VALUES (?, ?)",
                         (entry["id"], orjson.dumps(entry)))
        self._db.execute("DELETE FROM requests WHERE id <= ?", (entry["id"] - keep,))

    def request_log(self, keep: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT entry FROM requests ORDER BY id DESC LIMIT ?",
                                (keep,)).fetchall()
        return [orjson.loads(entry) for (entry,) in reversed(rows)]

    def put_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                         (key, orjson.dumps(value)))

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def clear(self) -> None:
        self.begin()
        try:
            for table in ("events", "meta", "rejected", "requests"):
                self._db.execute(f"DELETE FROM {table}")
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
