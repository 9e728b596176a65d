"""The one retry policy of every job: when to try again, and when a failure is final.

A retriable error (5xx, 429, a lost connection) reschedules the job after :func:`next_delay`
(the schedule's entry plus jitter, never before a ``Retry-After``); a fatal error or a payload error,
which no retry can fix, uses up the remaining attempts so that the job lands in the failed
registry at once, with the reason as its exception.
"""

from __future__ import annotations

import functools
import logging
import math
import random
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from rq import Retry, get_current_job

from connector.errors import FatalDestinationError, PayloadError, RetriableDestinationError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def retry_for(schedule: Sequence[int]) -> Retry:
    """RQ retry budget: one attempt per schedule entry (waits are set per attempt)."""
    return Retry(max=len(schedule), interval=list(schedule))


def next_delay(
    schedule: Sequence[int],
    attempt: int,
    retry_after: float | None,
    rng: Callable[[], float] = random.random,
) -> int:
    """Seconds before attempt ``attempt + 1``: schedule entry + up to 10% jitter, >= Retry-After."""
    base = schedule[min(attempt, len(schedule) - 1)]
    delay = base + base * 0.1 * rng()
    if retry_after is not None:
        # RQ schedules on whole seconds (truncating), so add one to never run before Retry-After.
        delay = max(delay, math.ceil(retry_after) + 1)
    return round(delay) if delay >= 1 or delay == 0 else 1


def apply_retry_policy(schedule_source: Callable[[], Sequence[int]]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an RQ job function with the connector's retry policy.

    Retriable errors reschedule the job after :func:`next_delay`; fatal errors (and payload
    errors, which no retry can fix) use up the remaining attempts so the job lands in the
    failed registry at once, with the reason as its exception.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except RetriableDestinationError as exc:
                job = get_current_job()
                if job is not None and job.retries_left:
                    schedule = schedule_source()
                    attempt = max(len(schedule) - job.retries_left, 0)
                    delay = next_delay(schedule, attempt, exc.retry_after)
                    job.retry_intervals = [delay]
                    # -- issue 15 logs: the worker logs the one line of this attempt (retrying … in N s) --
                    log.debug("job %s: retriable failure, next attempt in %ss: %s", job.id, delay, exc)
                    # -- end issue 15 logs --
                raise
            except (FatalDestinationError, PayloadError):
                job = get_current_job()
                if job is not None:
                    job.retries_left = 0
                raise

        return wrapper

    return decorate
