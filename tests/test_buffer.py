"""The pipeline's hand-off from reader to sender (connector/pipeline/buffer.py, prefetch.py).

BatchBuffer keeps order across memory and the spill file, waits for a busy sender before spilling,
hands a batch straight to a waiting sender, caps the spill file and ends with the final item;
prefetch stops with the job.
"""
from __future__ import annotations

import threading
import time

import pytest

from connector.pipeline.buffer import BatchBuffer
from connector.records import Batch


def batch(i: int, n: int = 3) -> Batch:
    rows = list(range(i * 10, i * 10 + n))
    return Batch(i, [f'{{"r":{r},"x":"{"é" * (r % 4)}"}}'.encode() for r in rows], rows)


def test_order_is_kept_across_memory_and_spill():
    buf, stop = BatchBuffer(memory_batches=2, spill_after=0), threading.Event()
    for i in range(1, 8):
        assert buf.put(batch(i), stop)
    buf.finish("done")
    out = [buf.get(timeout=1) for _ in range(8)]
    assert out[:-1] == [batch(i) for i in range(1, 8)] and out[-1] == "done"
    assert buf.spilled_batches == 5


def test_interleaved_put_and_get_with_spill_reuse():
    buf, stop = BatchBuffer(memory_batches=1, spill_after=0), threading.Event()
    got = []
    for i in range(1, 30):
        buf.put(batch(i, n=i % 5 + 1), stop)
        if i % 3 == 0:
            got.append(buf.get(timeout=1))
    buf.finish("done")
    while (item := buf.get(timeout=1)) != "done":
        got.append(item)
    assert [b.index for b in got] == list(range(1, 30))
    assert got == [batch(i, n=i % 5 + 1) for i in range(1, 30)]


def test_spill_cap_makes_the_producer_wait_until_stop():
    buf, stop = BatchBuffer(memory_batches=1, spill_max_bytes=1, spill_after=0), threading.Event()
    assert buf.put(batch(1), stop) and buf.put(batch(2), stop)  # memory, then the spill file
    result = []
    t = threading.Thread(target=lambda: result.append(buf.put(batch(3), stop)))
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # full: waiting
    stop.set()
    t.join(2)
    assert result == [False]


def test_a_busy_sender_makes_the_producer_wait_before_it_spills():
    buf, stop = BatchBuffer(memory_batches=1, spill_after=0.5), threading.Event()
    assert buf.put(batch(1), stop)
    t0 = time.monotonic()
    threading.Timer(0.2, lambda: buf.get(timeout=1)).start()  # the sender takes batch 1
    assert buf.put(batch(2), stop)  # waited for the sender, into memory
    assert 0.1 < time.monotonic() - t0 < 0.45 and buf.spilled_batches == 0
    t0 = time.monotonic()
    assert buf.put(batch(3), stop)  # nobody takes batch 2: spilled after spill_after
    assert time.monotonic() - t0 >= 0.45 and buf.spilled_batches == 1
    assert [buf.get(timeout=1).index for _ in range(2)] == [2, 3]


def test_get_times_out_when_empty():
    with pytest.raises(TimeoutError):
        BatchBuffer().get(timeout=0.05)


def test_without_memory_slots_a_batch_is_handed_straight_to_a_waiting_sender():
    buf, stop = BatchBuffer(memory_batches=0, spill_after=5), threading.Event()
    got = []
    taker = threading.Thread(target=lambda: got.append(buf.get(timeout=2)))
    taker.start()
    t0 = time.monotonic()
    assert buf.put(batch(1), stop)  # the sender is waiting: no spill, no 5 s wait
    taker.join(2)
    assert time.monotonic() - t0 < 1 and got == [batch(1)] and buf.spilled_batches == 0


def test_prefetch_reader_gives_up_on_stop_even_when_the_source_thread_left():
    """The consumer must not wait forever once the job stops (the reading thread returns
    without an end marker when it sees the stop flag)."""
    from connector.pipeline.prefetch import prefetch

    stop = threading.Event()

    def slow():
        yield 1
        stop.set()  # the job stops while the engine computes the next batch
        time.sleep(0.3)
        yield 2

    t0 = time.monotonic()
    assert list(prefetch(slow(), 2, stop)) == [1]
    assert time.monotonic() - t0 < 2

    def failing():
        yield 1
        raise RuntimeError("engine error")

    out = []
    with pytest.raises(RuntimeError):
        for item in prefetch(failing(), 2, threading.Event()):
            out.append(item)
    assert out == [1]
