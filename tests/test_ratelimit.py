"""The shared rate budget, on a real Redis."""

from __future__ import annotations

import pytest

from connector.errors import RetriableDestinationError
from connector.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_budget_allows_limit_per_window_then_waits_for_next_window(redis):
    clock = FakeClock()
    limiter = RateLimiter(redis, "vendor:acct", 3, 1.0, max_wait=5, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    assert clock.now == 1_000_000.0
    limiter.acquire()  # fourth call waits for the next one-second window
    assert clock.now == pytest.approx(1_000_001.0)


def test_budget_is_shared_between_limiters_of_the_same_name(redis):
    clock = FakeClock()
    first = RateLimiter(redis, "vendor:shared", 2, 1.0, max_wait=0, clock=clock, sleep=clock.sleep)
    second = RateLimiter(redis, "vendor:shared", 2, 1.0, max_wait=0, clock=clock, sleep=clock.sleep)
    first.acquire()
    second.acquire()
    with pytest.raises(RetriableDestinationError) as caught:
        second.acquire()
    assert caught.value.retry_after == pytest.approx(1.0)


def test_pause_stops_everyone_and_raises_when_longer_than_max_wait(redis):
    clock = FakeClock()
    limiter = RateLimiter(redis, "vendor:paused", 100, 1.0, max_wait=2, clock=clock, sleep=clock.sleep)
    limiter.pause(30)
    with pytest.raises(RetriableDestinationError) as caught:
        limiter.acquire()
    assert caught.value.retry_after == pytest.approx(30)
    limiter.pause(1)  # a shorter pause never shortens the longer one
    assert limiter.paused_for() == pytest.approx(30)
