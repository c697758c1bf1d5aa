"""Overlap two stages of a pipeline on a small machine: one produces in a background thread while
the caller consumes (rendering frames while encoding the previous ones). Both stages spend most
of their time in native code that releases the GIL (OpenCV, x264), so two cores both work."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield ``items`` in order, computed in a background thread up to ``depth`` items ahead.

    An exception in the producer is raised in the consumer at the item where it happened; a
    consumer that stops early (error, break) stops the producer within one item."""
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))

    worker = threading.Thread(target=produce, name="npcface-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
