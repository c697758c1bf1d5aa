"""Use both cores of a small machine: work on items in a thread pool while the caller consumes
the results in order (rendering frames while the encoder takes the previous ones). The work is
mostly native code that releases the GIL (OpenCV's remap, numpy, x264), so threads run at once."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def ordered_map(work: Callable[[T], U], items: Iterable[T], workers: int, ahead: int = 8) -> Iterator[U]:
    """``work(item)`` for each item on ``workers`` threads, yielded in the items' order, with at
    most ``ahead`` results computed and not yet taken (frames are 1 MB each: memory stays flat).
    An exception in ``work`` is raised at its item; a consumer that stops early cancels the rest."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="npcface-work") as pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= max(ahead, workers):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early: drop what has not started
                future.cancel()
