"""Read an iterator ahead in a thread: the engine computes the next batches (without the GIL)
while the caller encodes the current one."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import Any, Iterator


@dataclass
class Failure:
    """An exception raised on one thread, to be raised again on another."""

    exc: BaseException


def prefetch(items: Iterator[Any], depth: int, stop: threading.Event) -> Iterator[Any]:
    """`items`, read ahead by a thread. Both sides give up once `stop` is set."""
    queue: Queue[Any] = Queue(maxsize=depth)
    end = object()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
            offer(Failure(exc))
            return
        offer(end)

    threading.Thread(target=run, name="connector-prefetch", daemon=True).start()
    while True:
        try:
            item = queue.get(timeout=0.1)
        except Empty:
            if stop.is_set():
                return
            continue
        if item is end:
            return
        if isinstance(item, Failure):
            raise item.exc
        yield item
