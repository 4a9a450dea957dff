"""A request body made of already encoded JSON records: one JSON array, produced in slices."""
from __future__ import annotations

from typing import Iterator, Sequence


class JsonArrayBody:
    """The records as one JSON array, produced in slices as it is sent.

    A joined body would be a second copy of the whole batch (65 MB at 100,000 events). Iterating
    again starts over, so a retry resends the same bytes.
    """

    SLICE_BYTES = 256 * 1024

    def __init__(self, records: Sequence[bytes]) -> None:
        self.records = records
        self.length = sum(map(len, records)) + max(len(records) - 1, 0) + 2

    def __iter__(self) -> Iterator[bytes]:
        records = self.records
        n = len(records)
        # Slices of about SLICE_BYTES by the average record size, each joined in one C call.
        step = max(1, self.SLICE_BYTES * n // max(self.length, 1))
        opener = b"["
        for start in range(0, n, step):
            yield opener + b",".join(records[start:start + step])
            opener = b","
        yield b"]" if n else b"[]"

    def __bytes__(self) -> bytes:
        return b"".join(self)
