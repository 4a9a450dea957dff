"""Compact sets of row numbers, built from increasing streams, as [first, last] ranges."""
from __future__ import annotations

from typing import Iterable, Iterator


class RangeList:
    """Row numbers added in increasing order, stored as merged [first, last] ranges."""

    __slots__ = ("_ranges", "count")

    def __init__(self) -> None:
        self._ranges: list[list[int]] = []
        self.count = 0

    def add(self, row: int) -> None:
        if self._ranges and self._ranges[-1][1] + 1 == row:
            self._ranges[-1][1] = row
        else:
            self._ranges.append([row, row])
        self.count += 1

    def add_range(self, first: int, last: int) -> None:
        if first > last:
            return
        if self._ranges and self._ranges[-1][1] + 1 == first:
            self._ranges[-1][1] = last
        else:
            self._ranges.append([first, last])
        self.count += last - first + 1

    def extend(self, rows: Iterable[int]) -> None:
        for row in rows:
            self.add(row)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return (tuple(r) for r in self._ranges)  # type: ignore[misc]

    def __len__(self) -> int:
        return self.count

    def as_list(self) -> list[list[int]]:
        return [list(r) for r in self._ranges]


def complement(total: int, *parts: Iterable[tuple[int, int]]) -> RangeList:
    """Rows 1..total in none of the given range lists."""
    covered = sorted(r for part in parts for r in part)
    out = RangeList()
    nxt = 1
    for first, last in covered:
        if first > nxt:
            out.add_range(nxt, min(first - 1, total))
        nxt = max(nxt, last + 1)
    out.add_range(nxt, total)
    return out
