"""Ordered, memory-bounded parallel map over chunks of work."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int = 0) -> Iterator[R]:
    """Yield fn(item) in input order; at most `window` items (default 2 per worker) are in flight,
    so a huge input is never loaded whole. One worker runs in this process, without a pool."""
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 2 * workers
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
