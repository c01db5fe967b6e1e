"""Long jobs stop between batches when their Celery worker shuts down, and never run unbounded.

Celery sends ``worker_shutting_down`` in the worker's main process (SIGTERM:
warm shutdown), but with the prefork pool the jobs run in child processes. The
flag is one byte of anonymous shared memory mapped when this module is imported
(``config.celery`` imports it before the pool forks), so the main process sets
it and every child sees it. Outside a worker it stays clear unless a test sets it.

A sweeping job loops with ``batches()``: at most ``max_batches`` per run (what
is left waits for the next run of the schedule), and no new batch once the
worker is shutting down, so a warm shutdown waits for one batch, not a backlog.
"""

import logging
import mmap
from collections.abc import Iterable, Iterator
from typing import TypeVar

from celery import signals

from core import failpoints

logger = logging.getLogger(__name__)
T = TypeVar("T")

_flag = mmap.mmap(-1, 1)  # MAP_SHARED | MAP_ANONYMOUS: shared with forked pool processes


def requested() -> bool:
    """True once this worker (or a test) asked the jobs to stop."""
    return _flag[0] == 1


def request() -> None:
    _flag[0] = 1


def clear() -> None:
    _flag[0] = 0


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**kwargs: object) -> None:
    request()


def batches(job: str, *, max_batches: int) -> Iterator[int]:
    """Batch numbers 0.. for one run of ``job``: stops at ``max_batches``, or before any batch
    after the first once shutdown is requested (the batch in hand always finishes)."""
    for number in range(max_batches):
        if number and requested():
            logger.info("%s: the worker is shutting down; stopped after %d batch(es)", job, number)
            return
        failpoints.hit(f"{job}.batch")  # lets a test hold a real worker inside a batch
        yield number
    logger.info("%s: per-run bound of %d batches reached; the next run goes on", job, max_batches)


def each(job: str, items: Iterable[T]) -> Iterator[T]:
    """The items of a bounded batch one by one, none after the first once shutdown is
    requested: for batches whose items each call the network (gateway, beacon, Redis)."""
    for number, item in enumerate(items):
        if number and requested():
            logger.info("%s: the worker is shutting down; stopped after %d item(s)", job, number)
            return
        yield item
