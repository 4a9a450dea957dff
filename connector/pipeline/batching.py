"""Cut the stream of (row number, encoded record) into batches, and keep strict mode's spool."""
from __future__ import annotations

from typing import IO, Iterator

from connector.records import Batch

Records = Iterator[tuple[int, bytes]]


def cut_batches(records: Records, size: int) -> Iterator[Batch]:
    """Batches of `size` records (the last may be shorter), numbered from 1, in query order."""
    index = 0
    rows: list[int] = []
    recs: list[bytes] = []
    for row_no, record in records:
        rows.append(row_no)
        recs.append(record)
        if len(recs) >= size:
            index += 1
            yield Batch(index, recs, rows)
            rows, recs = [], []
    if recs:
        yield Batch(index + 1, recs, rows)


def spool(records: Records, file: IO[bytes]) -> int:
    """Write every record to `file` (strict mode: nothing is sent until all rows proved valid)."""
    count = 0
    for row_no, record in records:
        # JSON records escape control characters, so an encoded record never holds a newline.
        file.write(b"%d\t%s\n" % (row_no, record))
        count += 1
    return count


def read_spool(file: IO[bytes], count: int) -> Records:
    for _ in range(count):
        line = file.readline()
        row, _, record = line.rstrip(b"\n").partition(b"\t")
        yield int(row), record
