"""LoyaltyLion facts (developers.loyaltylion.com, checked 2026-12):

* the Clickthrough/Visit built-in rules need the destination URL in ``properties.url``
  (create-activity): a mapping to ``$visit`` / ``$clickthrough`` without a configured URL is a
  start-up error, and the URL is sent;
* the order update (``PUT /v2/orders/{merchant_id}``) documents only ``payment_status``,
  ``refund_status``, ``cancellation_status``, ``total_paid``, ``total_refunded``: nothing else is sent
  (the sandbox refuses anything else with a 400);
* API-key scopes: activities need ``write_customers``, orders ``write_orders`` (+ ``read_orders`` for
  the lookup); there is no ``write_activities``.
"""

from __future__ import annotations

import textwrap
import tomllib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from redis import Redis

from connector import jobs
from connector.activities import Activity, Person
from connector.errors import ConfigError
from connector.queue import DELIVERY_QUEUE, fetch_job, get_queue
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.settings import Settings, parse_tenants
from connector.vendors.loyaltylion.config import LoyaltyLionConfig
from connector.vendors.loyaltylion.platform import activity_body, order_update_body

DOCUMENTED_UPDATE = {"payment_status", "refund_status", "cancellation_status", "total_paid", "total_refunded"}
KEY = DEFAULT_KEYS["loyaltylion"]
ADA = Person(email="ada.lovelace@example.com", first_name="Ada")
WIFI_URL = "https://harbour.example/wifi"


def lion_toml(url: str, extra: str = "") -> str:
    return textwrap.dedent(f"""
        [tenants.lion]
        timezone = "Europe/London"
        [tenants.lion.loyalty]
        platform = "loyaltylion"
        base_url = "{url}/loyaltylion"
        api_key = "{KEY}"
        skip_shopify_orders = false
        """) + textwrap.dedent(extra)


def wifi_login() -> Activity:
    return Activity(
        type="Connected to wifi",
        tenant="lion",
        source="purple",
        business_key="purple:venue-7:4f1c2a9be0d3c5a1e2f30b11:2026-11-24",
        happened_at=datetime.fromisoformat("2026-11-24T18:02:00+00:00"),
        person=ADA,
        venue="venue-7",
    )


def purchase() -> Activity:
    return Activity(
        type="Purchase",
        tenant="lion",
        source="standard",
        business_key="harbourpos:LON-1:order:5521",
        happened_at=datetime.fromisoformat("2026-11-24T19:30:00+00:00"),
        person=ADA,
        spend=4250,
        currency_code="GBP",
        attributes={"total_shipping": 350, "order_number": 5521},
    )


def lion(sandbox: SandboxServer) -> Any:
    return sandbox.sandboxes.extra["loyaltylion"]


# --- config: a Visit/Clickthrough mapping needs a URL ----------------------------------------


def parse(loyalty: str) -> Any:
    return parse_tenants(tomllib.loads(f'[tenants.acme]\n[tenants.acme.loyalty]\nplatform = "loyaltylion"\n{loyalty}'))


@pytest.mark.parametrize("rule", ["$visit", "$clickthrough"])
def test_a_url_rule_without_a_url_is_a_start_up_error_naming_the_key(rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(f'api_key = "k"\n[tenants.acme.loyalty.activity_names]\n"Connected to wifi" = "{rule}"\n')
    message = str(caught.value)
    assert "tenants.acme.loyalty" in message and "activity_urls" in message and "Connected to wifi" in message


def test_a_url_rule_with_its_url_is_accepted() -> None:
    parsed = parse(
        'api_key = "k"\n[tenants.acme.loyalty.activity_names]\n"Connected to wifi" = "$visit"\n'
        f'[tenants.acme.loyalty.activity_urls]\n"Connected to wifi" = "{WIFI_URL}"\n'
    )
    loyalty = parsed["acme"].loyalty
    assert isinstance(loyalty, LoyaltyLionConfig)
    assert loyalty.activity_urls == {"Connected to wifi": WIFI_URL}


def test_activity_urls_must_be_http_urls_of_known_types() -> None:
    with pytest.raises(ValidationError, match="http"):
        LoyaltyLionConfig(platform="loyaltylion", api_key="k", activity_urls={"Connected to wifi": "harbour.example"})
    with pytest.raises(ValidationError, match="unknown activity type"):
        LoyaltyLionConfig(platform="loyaltylion", api_key="k", activity_urls={"Wifi": WIFI_URL})


def test_activity_body_carries_properties_url_when_configured() -> None:
    config = LoyaltyLionConfig(
        platform="loyaltylion",
        api_key="k",
        activity_names={"Connected to wifi": "$visit"},
        activity_urls={"Connected to wifi": WIFI_URL},
    )
    body = activity_body(wifi_login(), config)
    assert (body["name"], body["properties"]) == ("$visit", {"url": WIFI_URL})
    plain = activity_body(wifi_login(), LoyaltyLionConfig(platform="loyaltylion", api_key="k"))
    assert "properties" not in plain


def test_visit_activity_reaches_the_sandbox_with_its_url(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    extra = f"""
        [tenants.lion.loyalty.activity_names]
        "Connected to wifi" = "$visit"
        [tenants.lion.loyalty.activity_urls]
        "Connected to wifi" = "{WIFI_URL}"
    """
    settings = env(lion_toml(sandbox.url, extra))
    [job_id] = jobs.enqueue_deliveries(settings.tenants["lion"], [wifi_login()])
    work()
    assert fetch_job(redis, job_id).return_value()["status"] == "delivered"  # type: ignore[index]
    [held] = lion(sandbox).state()["activities"]
    assert held["rule"]["name"] == "$visit"
    assert held["properties"] == {"url": WIFI_URL}


def test_sandbox_refuses_a_visit_without_url_like_the_docs_require(sandbox: SandboxServer) -> None:
    body = {"name": "$visit", "customer_id": "c-1", "customer_email": "ada@example.com"}
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = requests.post(f"{sandbox.url}/loyaltylion/v2/activities", json=body, headers=headers, timeout=5)
    assert answer.status_code == 400
    assert "properties.url" in answer.json()["error"]["details"]
    ok = requests.post(
        f"{sandbox.url}/loyaltylion/v2/activities",
        json={**body, "properties": {"url": WIFI_URL}},
        headers=headers,
        timeout=5,
    )
    assert ok.status_code == 201


# --- order update: documented fields only ------------------------------------------------------


def test_order_update_body_is_exactly_the_documented_fields() -> None:
    body = order_update_body(purchase(), LoyaltyLionConfig(platform="loyaltylion", api_key="k"))
    assert set(body) == DOCUMENTED_UPDATE
    assert body == {
        "payment_status": "paid",
        "refund_status": "not_refunded",
        "cancellation_status": "not_cancelled",
        "total_paid": "42.50",
        "total_refunded": "0.00",
    }


def test_sandbox_refuses_undocumented_order_update_fields(sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    create = {
        "merchant_id": "o-1",
        "customer_id": "c-1",
        "customer_email": "ada@example.com",
        "total": "10.00",
        "total_shipping": "0.00",
        "payment_status": "paid",
    }
    assert requests.post(f"{sandbox.url}/loyaltylion/v2/orders", json=create, headers=headers, timeout=5).ok
    update = {"payment_status": "paid", "refund_status": "not_refunded", "cancellation_status": "not_cancelled"}
    url = f"{sandbox.url}/loyaltylion/v2/orders/o-1"
    refused = requests.put(url, json={**update, "total": "10.00"}, headers=headers, timeout=5)
    assert refused.status_code == 400
    assert "total" in refused.json()["error"]["details"]
    assert requests.put(url, json=update, headers=headers, timeout=5).status_code == 204


def test_order_found_after_a_lost_answer_is_updated_with_documented_fields_only(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    settings = env(lion_toml(sandbox.url))
    lion(sandbox).lose_responses = 1  # the order is created, its answer is lost: the retry PUTs
    [job_id] = jobs.enqueue_deliveries(settings.tenants["lion"], [purchase()])
    work(wait_for_retries=15)
    result = fetch_job(redis, job_id).return_value()
    assert result is not None and result["status"] == "delivered"
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.count == 0
    state = lion(sandbox).state()
    assert state["order_posts"] == 1
    [update] = state["order_updates"]
    assert set(update) == DOCUMENTED_UPDATE
    assert state["orders"][0]["total"] == "42.50"  # the create's total stays


# --- scopes ------------------------------------------------------------------------------------


def test_403_names_the_scopes_loyaltylion_documents(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    settings = env(lion_toml(sandbox.url))
    lion(sandbox).faults.arm({"mode": "status", "status": 403, "count": 1})
    jobs.enqueue_deliveries(settings.tenants["lion"], [wifi_login()])
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    [job_id] = failed.get_job_ids()
    reason = fetch_job(redis, job_id).latest_result().exc_string  # type: ignore[union-attr]
    assert "write_customers" in reason and "write_orders" in reason
    assert "write_activities" not in reason
