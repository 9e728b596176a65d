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


def test_a_burst_window_bounds_a_longer_budget_too(redis):
    # Klaviyo's two fixed windows: here 5 a second and 8 a minute
    clock = FakeClock()
    clock.now = 1_000_020.0  # inside a minute window, 40 s before it ends
    limiter = RateLimiter(redis, "vendor:two", 8, 60.0, max_wait=60, burst=(5, 1.0), clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    assert clock.now == 1_000_020.0  # five in the first second
    limiter.acquire()  # the sixth waits for the next second (the minute has room)
    assert clock.now == pytest.approx(1_000_021.0)
    for _ in range(2):
        limiter.acquire()
    assert clock.now == pytest.approx(1_000_021.0)  # eight in the minute now
    limiter.acquire()  # the ninth waits for the next minute, whatever the second says
    assert clock.now >= 1_000_040.0


def test_klaviyos_default_budget_is_its_two_documented_windows_with_room_to_spare(redis):
    from connector.esps.base import rate_limiter
    from connector.vendors.klaviyo.config import KlaviyoConfig

    config = KlaviyoConfig.model_validate({"provider": "klaviyo", "api_key": "pk_test"})
    limiter = rate_limiter(config, redis, "klaviyo")
    assert (limiter.limit, limiter.period) == (3000, 60.0) and limiter.burst == (300, 1.0)  # XL: 3500/m, 350/s
    own = KlaviyoConfig.model_validate({"provider": "klaviyo", "api_key": "pk_test", "rate_limit": 20})
    chosen = rate_limiter(own, redis, "klaviyo")
    assert (chosen.limit, chosen.period, chosen.burst) == (20, 1.0, None)
