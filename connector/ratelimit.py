"""Rate budgets shared by every worker process, kept in Redis.

A :class:`RateLimiter` allows ``limit`` calls per ``period`` seconds for one budget name (one
per vendor account, e.g. ``loyaltylion:<program>`` or ``klaviyo:<account>``), counted in fixed
windows with ``INCR``; a second, shorter ``burst`` window can bound it too, as Klaviyo's two
windows do (a 1-second burst and a 1-minute steady limit, both fixed windows). A vendor's own
back-off signal (429 + Retry-After, X-RateLimit-Reset) pauses the whole budget with
:meth:`RateLimiter.pause`, so other workers wait too instead of hammering. When the wait would
exceed ``max_wait`` the call raises :class:`~connector.errors.RetriableDestinationError` so the
job is rescheduled instead of holding a worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connector.errors import RetriableDestinationError


class RateLimiter:
    """A shared calls-per-period budget with a shared pause."""

    def __init__(
        self,
        redis: Any,
        name: str,
        limit: int,
        period: float = 1.0,
        *,
        max_wait: float = 5.0,
        burst: tuple[int, float] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        if burst is not None and (burst[0] < 1 or burst[1] <= 0):
            raise ValueError("a burst limit must be >= 1 and its period > 0")
        self.burst = burst
        self.redis = redis
        self.name = name
        self.limit = limit
        self.period = period
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    @property
    def _pause_key(self) -> str:
        return f"connector:rate:{self.name}:paused-until"

    def pause(self, seconds: float) -> None:
        """Stop every worker from calling this budget for ``seconds`` (a vendor said so)."""
        until = self.clock() + max(0.0, seconds)
        current = self.redis.get(self._pause_key)
        if current is None or float(current) < until:
            self.redis.set(self._pause_key, repr(until), px=max(1, int(seconds * 1000) + 1000))

    def paused_for(self) -> float:
        """Seconds left in a pause (0 when none)."""
        value = self.redis.get(self._pause_key)
        return max(0.0, float(value) - self.clock()) if value is not None else 0.0

    def acquire(self) -> None:
        """Take one call from the budget, waiting up to ``max_wait``; else raise retriable."""
        deadline = self.clock() + self.max_wait
        while True:
            wait = self.paused_for()
            if wait <= 0:
                now = self.clock()
                wait = self._take(now)
                if wait <= 0:
                    return
            if self.clock() + wait > deadline:
                raise RetriableDestinationError(
                    f"rate budget {self.name} exhausted; retry in {wait:.1f}s",
                    destination=self.name.split(":", 1)[0],
                    retry_after=wait,
                )
            self.sleep(min(wait, max(0.01, deadline - self.clock())))

    def _take(self, now: float) -> float:
        """Count one call in every window (one round trip); 0 when each had room, else the seconds
        until the fullest one's window ends."""
        windows = [(self.limit, self.period, "")]
        if self.burst is not None:
            windows.append((self.burst[0], self.burst[1], f"burst{self.burst[1]:g}:"))
        keys = [f"connector:rate:{self.name}:{label}{int(now // period)}" for _, period, label in windows]
        with self.redis.pipeline() as pipe:
            for key, (_, period, _) in zip(keys, windows, strict=True):
                pipe.incr(key)
                pipe.expire(key, max(2, int(period * 2) + 1))
            answers = pipe.execute()
        wait = 0.0
        for (limit, period, _), used in zip(windows, answers[::2], strict=True):
            if int(used) > limit:
                wait = max(wait, (int(now // period) + 1) * period - now)
        if wait > 0 and len(keys) > 1:
            # A refused call must not use up the windows that had room (it is tried again later).
            with self.redis.pipeline() as pipe:
                for key in keys:
                    pipe.decr(key)
                pipe.execute()
        return wait
