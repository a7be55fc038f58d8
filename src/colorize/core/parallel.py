"""Ordered, memory-bounded parallel maps, and process pools that die with their stage."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def one_blas_thread() -> None:
    """In a process this package owns (a stage, the `colorize` command), before numpy loads: numpy's
    OpenBLAS on one thread. Its products here are tiny (n x 3 colour conversions), and its spinning
    threads fight TensorFlow's and other processes' for the cores: on a busy 2-core machine one
    (262,144 x 3) @ (3 x 3) product took 260 ms with two threads, 2.5 ms with one. Results are the same
    (each row is one thread's work either way). An explicit OPENBLAS_NUM_THREADS wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def bounded_map(fn: Callable[[T], R], items: Iterable[T], executor: Executor, window: int) -> Iterator[R]:
    """`executor.map` with at most `window` calls in flight (bounded memory); results in input order."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _exit_with(pid: int) -> None:
    """Worker initializer: end this worker once process `pid` is gone. A SIGKILLed stage cannot stop its
    pool, and its workers would otherwise wait on their task queue forever."""
    def watch() -> None:
        while _alive(pid):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose workers start from a clean forkserver (not forked from a process running threads)
    and exit when this process dies."""
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_exit_with,
                               initargs=(os.getpid(),))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int = 0) -> Iterator[R]:
    """Yield fn(item) in input order; at most `window` items (default 2 per worker) are in flight,
    so a huge input is never loaded whole. One worker runs in this process, without a pool."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with process_pool(workers) as pool:
        yield from bounded_map(fn, items, pool, window or 2 * workers)


def available_cpus() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
