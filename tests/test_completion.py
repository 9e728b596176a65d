"""Deferred writes: sent at once outside a worker, collected (and sent once) inside one."""

from __future__ import annotations

from typing import Any

from redis import Redis

from connector import completion


def test_a_write_deferred_outside_a_worker_is_sent_at_once(redis: Redis) -> None:
    completion.defer(redis, lambda pipe: pipe.set("connector:test:now", "1"))
    assert redis.get("connector:test:now") == b"1"


def test_writes_deferred_inside_a_collector_wait_for_the_flush(redis: Redis) -> None:
    with completion.collecting() as writes:
        completion.defer(redis, lambda pipe: pipe.set("connector:test:a", "1"))
        completion.defer(redis, lambda pipe: pipe.incr("connector:test:b"))
        assert redis.get("connector:test:a") is None
    assert len(writes) == 2
    completion.flush(redis, writes)
    assert redis.get("connector:test:a") == b"1" and redis.get("connector:test:b") == b"1"
    assert writes == []
    completion.flush(redis, writes)  # nothing left: nothing written twice
    assert redis.get("connector:test:b") == b"1"


def test_writes_can_ride_in_the_callers_pipeline(redis: Redis) -> None:
    with completion.collecting() as writes:
        completion.defer(redis, lambda pipe: pipe.set("connector:test:c", "1"))
    pipe: Any = redis.pipeline()
    pipe.set("connector:test:own", "1")
    completion.flush(redis, writes, pipeline=pipe)
    assert redis.get("connector:test:c") is None
    pipe.execute()
    assert redis.get("connector:test:c") == b"1" and redis.get("connector:test:own") == b"1"
