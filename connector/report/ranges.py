"""Compact sets of row numbers, built from increasing streams, as [first, last] ranges.

Two flat int64 arrays (16 bytes a range), not a list of lists: with invalid rows spread through a
large result there is one range per gap, and the report must stay small whatever the row count.
"""
from __future__ import annotations

import heapq
import itertools
from array import array
from typing import Iterable, Iterator


class RangeList:
    """Row numbers added in increasing order, stored as merged [first, last] ranges."""

    __slots__ = ("_firsts", "_lasts", "count")

    def __init__(self) -> None:
        self._firsts = array("q")
        self._lasts = array("q")
        self.count = 0

    def add_range(self, first: int, last: int) -> None:
        if first > last:
            return
        if self._lasts and self._lasts[-1] + 1 == first:
            self._lasts[-1] = last
        else:
            self._firsts.append(first)
            self._lasts.append(last)
        self.count += last - first + 1

    def add(self, row: int) -> None:
        self.add_range(row, row)

    def extend(self, rows: Iterable[int]) -> None:
        rows = rows if isinstance(rows, (list, tuple)) else list(rows)
        if not rows:
            return
        # Runs of consecutive numbers, found in one comprehension rather than a call per row.
        breaks = [i for i in range(1, len(rows)) if rows[i] - rows[i - 1] != 1]
        start = 0
        for end in breaks:
            self.add_range(rows[start], rows[end - 1])
            start = end
        self.add_range(rows[start], rows[-1])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._firsts, self._lasts)

    def __len__(self) -> int:
        return self.count

    @property
    def spans(self) -> int:
        """How many [first, last] ranges."""
        return len(self._firsts)

    def json(self, limit: int | None = None) -> bytes:
        """The ranges as a JSON array, written without a Python list per range."""
        pairs = zip(self._firsts, self._lasts)
        if limit is not None:
            pairs = itertools.islice(pairs, limit)
        return b"[" + b",".join(b"[%d,%d]" % p for p in pairs) + b"]"

    def as_list(self, limit: int | None = None) -> list[list[int]]:
        pairs = zip(self._firsts, self._lasts)
        return [[a, b] for a, b in (pairs if limit is None else list(pairs)[:limit])]


def complement(total: int, *parts: Iterable[tuple[int, int]]) -> RangeList:
    """Rows 1..total in none of the given range lists."""
    # Each part is already in order: merged lazily, not sorted into one list (a report of
    # millions of rows with scattered invalid ones holds hundreds of thousands of ranges).
    covered = heapq.merge(*parts)
    out = RangeList()
    nxt = 1
    for first, last in covered:
        if first > nxt:
            out.add_range(nxt, min(first - 1, total))
        nxt = max(nxt, last + 1)
    out.add_range(nxt, total)
    return out
