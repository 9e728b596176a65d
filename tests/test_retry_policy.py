"""The one retry policy: schedule + jitter, never earlier than Retry-After."""

from __future__ import annotations

from connector.http import parse_retry_after
from connector.queue import make_job_id
from connector.retry import next_delay


def test_schedule_entry_with_up_to_ten_percent_jitter():
    schedule = (10, 60, 300)
    assert next_delay(schedule, 0, None, rng=lambda: 0.0) == 10
    assert next_delay(schedule, 1, None, rng=lambda: 0.999) == 66
    assert next_delay(schedule, 7, None, rng=lambda: 0.0) == 300  # past the end: the last entry


def test_retry_after_wins_when_longer():
    assert next_delay((10,), 0, 120.0, rng=lambda: 0.0) == 121
    assert next_delay((600,), 0, 5.0, rng=lambda: 0.0) == 600
    assert next_delay((0,), 0, 0.4, rng=lambda: 0.0) == 2


def test_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_job_ids_are_deterministic_and_rq_safe():
    first = make_job_id("deliver", "harbour", "glu", "Shopify order", "shopify:x:order:1")
    assert first == make_job_id("deliver", "harbour", "glu", "Shopify order", "shopify:x:order:1")
    assert first != make_job_id("deliver", "harbour", "glu", "Shopify order", "shopify:x:order:2")
    assert all(c.isalnum() or c in "-_" for c in first)
