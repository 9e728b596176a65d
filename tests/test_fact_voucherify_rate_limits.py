"""Issue 12, fact 7: Voucherify's plan limits are per minute (Business 100/min, Organization
2,000/min; documentation/guides/limits.mdx), and every answer's ``X-Rate-Limit-*`` headers say
where the project stands. The budget is configured per minute, the headers are followed, and the
sandbox enforces a per-minute limit with those headers."""

from __future__ import annotations

import time
import tomllib
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from redis import Redis
from test_loyalty_platforms import MemoryContacts, activity, booking, voucherify, voucherify_config

from connector.errors import ConfigError, RetriableDestinationError
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.settings import parse_tenants
from connector.vendors.voucherify.config import VoucherifyConfig

AUTH = {"X-App-Id": DEFAULT_KEYS["voucherify_app_id"], "X-App-Token": DEFAULT_KEYS["voucherify_app_token"]}


def fresh_minute() -> None:
    """Start a test's calls early in a clock minute, so its window does not roll over mid-test."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60.5 - into)


def set_plan(sandbox: SandboxServer, **plan: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/voucherify/_sandbox/plan", json=plan, timeout=5)


def get_customer(sandbox: SandboxServer) -> requests.Response:
    return requests.get(f"{sandbox.url}/voucherify/v1/customers/nobody", headers=AUTH, timeout=5)


def test_the_budget_is_configured_per_minute() -> None:
    assert voucherify_config(requests_per_minute=100).requests_per_minute == 100
    assert voucherify_config().requests_per_minute is None  # optional: the vendor's headers always apply


def test_hourly_limit_is_refused_with_a_pointer_to_requests_per_minute() -> None:
    with pytest.raises(ValidationError, match=r"per minute.*requests_per_minute"):
        voucherify_config(hourly_limit=1000)
    document = tomllib.loads(
        '[tenants.acme]\n[tenants.acme.loyalty]\nplatform = "voucherify"\napp_id = "a"\napp_token = "t"\n'
        "hourly_limit = 1000\n"
    )
    with pytest.raises(ConfigError, match=r"tenants\.acme\.loyalty.*hourly_limit.*requests_per_minute"):
        parse_tenants(document)
    assert "hourly_limit" not in VoucherifyConfig.model_fields


def test_sandbox_enforces_a_per_minute_limit_with_the_documented_headers(sandbox: SandboxServer) -> None:
    assert set_plan(sandbox, requests_per_minute=2).status_code == 200
    fresh_minute()
    first, second, third = (get_customer(sandbox) for _ in range(3))
    assert first.status_code == 404 and second.status_code == 404  # answered: within the plan
    assert first.headers["X-Rate-Limit-Limit"] == "2"
    assert (first.headers["X-Rate-Limit-Remaining"], second.headers["X-Rate-Limit-Remaining"]) == ("1", "0")
    assert 0 < int(second.headers["X-Rate-Limit-Retry"]) - time.time() <= 61  # the next minute, not hour
    assert third.status_code == 429
    assert third.headers["X-Rate-Limit-Type"] == "api_calls"
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert third.json()["key"] == "too_many_requests"
    assert "hourly_limit" in set_plan(sandbox, hourly_limit=5).json()["message"]  # refused, with a hint
    assert set_plan(sandbox, hourly_limit=5).status_code == 400


def test_the_client_waits_when_remaining_reaches_zero_until_the_next_minute(
    sandbox: SandboxServer, redis: Redis
) -> None:
    vendor = sandbox.sandboxes.extra["voucherify"]
    set_plan(sandbox, requests_per_minute=2)
    fresh_minute()
    client = voucherify(sandbox, redis)
    client.deliver(activity(), MemoryContacts())  # upsert + event: X-Rate-Limit-Remaining reaches 0
    assert 0 < client.limiter.paused_for() <= 61
    with pytest.raises(RetriableDestinationError) as caught:
        voucherify(sandbox, redis).deliver(booking(), MemoryContacts())
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 61
    assert vendor.state()["calls_this_minute"] == 2  # nothing sent into the 429


def test_the_configured_budget_spaces_calls_per_minute(sandbox: SandboxServer, redis: Redis) -> None:
    vendor = sandbox.sandboxes.extra["voucherify"]
    fresh_minute()
    client = voucherify(sandbox, redis, requests_per_minute=2)
    contacts = MemoryContacts()
    client.deliver(activity(), contacts)  # two calls: the minute's budget
    with pytest.raises(RetriableDestinationError) as caught:
        client.deliver(booking(), contacts)
    assert caught.value.retry_after is not None and 5 < caught.value.retry_after <= 60
    assert vendor.state()["calls_this_minute"] == 2
