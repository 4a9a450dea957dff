"""An ordered hand-off of batches from the producer to the sender that spills to disk.

A few batches wait in memory. When the sender is merely busy, the producer waits for it (a spill
would only cost both threads CPU). When the sender has taken nothing for `spill_after` seconds (a
slow API, a long retry wait), later batches go to a temporary file instead of blocking the
producer, so the engine keeps being read: Trino abandons a query whose client stops fetching for
about 5 minutes, and a query that has finished frees the cluster early. Memory stays flat; the
spill file is capped (`CONNECTOR_SPILL_MAX_BYTES`, default 4 GiB), beyond which the producer
waits after all.
"""
from __future__ import annotations

import os
import struct
import tempfile
import threading
import time
from collections import deque
from typing import IO, Any

from connector.records import Batch

DEFAULT_MEMORY_BATCHES = 2
DEFAULT_SPILL_AFTER = 2.0  # seconds the sender may take nothing before batches go to disk
SPILL_MAX_ENV = "CONNECTOR_SPILL_MAX_BYTES"
DEFAULT_SPILL_MAX_BYTES = 4 * 2**30
_HEADER = struct.Struct("<QQQ")  # batch index, record count, payload bytes
_NOTHING = object()


def _spill_max() -> int:
    try:
        return int(os.environ.get(SPILL_MAX_ENV, DEFAULT_SPILL_MAX_BYTES))
    except ValueError:
        return DEFAULT_SPILL_MAX_BYTES


class BatchBuffer:
    """Batches come out in the order they went in, then the final item (done or a failure)."""

    def __init__(self, memory_batches: int = DEFAULT_MEMORY_BATCHES,
                 spill_max_bytes: int | None = None,
                 spill_after: float = DEFAULT_SPILL_AFTER) -> None:
        self._memory: deque[Batch] = deque()
        self._memory_batches = memory_batches
        self._spill_after = spill_after
        self._spill_max = _spill_max() if spill_max_bytes is None else spill_max_bytes
        self._spill: IO[bytes] | None = None
        self._spilled = 0  # batches waiting in the spill file
        self._write_pos = 0
        self._read_pos = 0
        self._final: Any = _NOTHING
        self._getters = 0  # senders waiting in get(): with memory_batches=0, a direct hand-off
        # One lock, two waiting rooms: each batch wakes one sender, not every one of them.
        self._lock = threading.Lock()
        self._items = threading.Condition(self._lock)  # senders wait here for a batch
        self._room = threading.Condition(self._lock)  # the producer waits here for room
        self.spilled_batches = 0  # over the whole job

    def put(self, batch: Batch, stop: threading.Event) -> bool:
        """Queue a batch; waits only when memory and spill are full. False if `stop` was set."""
        with self._lock:
            full_since: float | None = None
            while not stop.is_set():
                # Once anything is spilled, later batches follow it into the file: order holds.
                if self._spilled == 0 and (len(self._memory) < self._memory_batches
                                           or (not self._memory and self._getters)):
                    self._memory.append(batch)
                else:
                    now = time.monotonic()
                    full_since = now if full_since is None else full_since
                    patient = self._spilled == 0 and now - full_since < self._spill_after
                    if patient or self._write_pos >= self._spill_max:
                        self._room.wait(0.1)
                        continue
                    self._write_spill(batch)
                self._items.notify()
                return True
            return False

    def finish(self, item: Any) -> None:
        """The last item, delivered after every batch; never blocks."""
        with self._lock:
            if self._final is _NOTHING:
                self._final = item
            self._items.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """The oldest batch, else the final item; raises TimeoutError if nothing comes in time."""
        with self._lock:
            while not self._memory and not self._spilled and self._final is _NOTHING:
                self._getters += 1
                self._room.notify()  # a producer waiting for a taker may hand over now
                try:
                    if not self._items.wait(timeout):
                        raise TimeoutError
                finally:
                    self._getters -= 1
            if self._memory:
                item: Any = self._memory.popleft()
            elif self._spilled:
                item = self._read_spill()
            else:
                item = self._final
            self._room.notify()
            return item

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def _write_spill(self, batch: Batch) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="connector-spill-")
        n = len(batch.records)
        payload = b"".join((struct.pack(f"<{n}Q", *batch.rows),
                            struct.pack(f"<{n}I", *map(len, batch.records)),
                            *batch.records))
        self._spill.seek(self._write_pos)
        self._spill.write(_HEADER.pack(batch.index, n, len(payload)))
        self._spill.write(payload)
        self._write_pos = self._spill.tell()
        self._spilled += 1
        self.spilled_batches += 1

    def _read_spill(self) -> Batch:
        assert self._spill is not None
        self._spill.seek(self._read_pos)
        index, n, size = _HEADER.unpack(self._spill.read(_HEADER.size))
        payload = self._spill.read(size)
        self._read_pos = self._spill.tell()
        self._spilled -= 1
        if self._spilled == 0:  # drained: reuse the file from its start
            self._read_pos = self._write_pos = 0
            self._spill.truncate(0)
        rows = list(struct.unpack_from(f"<{n}Q", payload, 0))
        lengths = struct.unpack_from(f"<{n}I", payload, 8 * n)
        records, pos = [], 12 * n
        for length in lengths:
            records.append(payload[pos:pos + length])
            pos += length
        return Batch(index, records, rows)
