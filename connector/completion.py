"""Redis writes a job defers to its worker's completion round trip.

A job's last writes (a ledger record, its activity record, counters) need not each cost a round
trip of their own: :func:`defer` hands them to the worker, which sends them in the same pipeline
as the job's outcome (success or failure; :mod:`connector.worker` collects them with
:func:`collecting`). Outside a worker (a job function called directly, a CLI command) there is
no collector and :func:`defer` writes at once, in a pipeline of its own.

A deferred write must be safe to lose in a crash exactly as the same write made at the end of the
job would be: it is sent once the job function has returned or raised, before anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from redis import Redis

Write = Callable[[Any], object]
"""Takes a redis-py pipeline and queues commands on it (its return value is ignored)."""

_pending: ContextVar[list[Write] | None] = ContextVar("connector_completion_writes", default=None)


def defer(redis: Redis, write: Write) -> None:
    """Run ``write(pipeline)`` in the current job's completion round trip, or now when no worker collects."""
    pending = _pending.get()
    if pending is not None:
        pending.append(write)
        return
    with redis.pipeline(transaction=False) as pipe:
        write(pipe)
        pipe.execute()


@contextmanager
def collecting() -> Iterator[list[Write]]:
    """Collect the writes :func:`defer` is given inside the block (the worker sends them)."""
    pending: list[Write] = []
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


# -- issue 16 jobs: a job collects its own writes when no worker does --
def collecting_here() -> bool:
    """Whether a collector (the worker's, or a job's own) takes the writes :func:`defer` is given."""
    return _pending.get() is not None


# -- end issue 16 jobs --


def flush(redis: Redis, writes: list[Write], pipeline: Any = None) -> None:
    """Queue ``writes`` on ``pipeline`` (the caller executes it), or send them now in one round trip."""
    if not writes:
        return
    if pipeline is not None:
        for write in writes:
            write(pipeline)
        writes.clear()
        return
    with redis.pipeline(transaction=False) as pipe:
        for write in writes:
            write(pipe)
        pipe.execute()
    writes.clear()
