"""Glu's own Shopify link creates "Shopify order" activities: ``skip_shopify_orders`` stops ours.

PRODUCT.md sends Shopify orders to Glu as "Shopify order" activities, so the default stays
``false``; a merchant whose Glu programme uses Glu's Shopify link sets it ``true``, and the
connector then answers the webhook ``ignored`` with the reason (after verifying it), without a job.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_fixture, shopify_headers, tenants_toml

from connector.errors import ConfigError
from connector.metrics import read_counters
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.settings import load_settings
from connector.vendors.glu.config import GluConfig
from connector.web import create_app


def with_flag(toml: str, value: str) -> str:
    """The test tenants with ``skip_shopify_orders = <value>`` in harbour's Glu table."""
    start = toml.index("[tenants.harbour.loyalty]")
    end = toml.index("\n", toml.index("api_key", start))
    return toml[: end + 1] + f"skip_shopify_orders = {value}\n" + toml[end + 1 :]


def post_order(client: Any, webhook_id: str = "wh-glu-1") -> Any:
    body = load_fixture("shopify", "orders_paid")
    return client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, webhook_id=webhook_id))


def glu_activities(sandbox: Any) -> list[dict[str, Any]]:
    return list(sandbox.sandboxes.glu.state()["activities"])


def test_default_is_false_shopify_orders_go_to_glu() -> None:
    config = GluConfig(platform="glu", base_url="https://api.glu.io")
    assert config.skip_shopify_orders is False
    assert config.skip_reason("shopify") is None


def test_flag_on_names_the_reason_for_shopify_only() -> None:
    config = GluConfig(platform="glu", base_url="https://api.glu.io", skip_shopify_orders=True)
    reason = config.skip_reason("shopify")
    assert reason is not None and "Glu" in reason and "skip_shopify_orders" in reason
    assert config.skip_reason("mews") is None


def test_default_tenant_delivers_the_shopify_order_to_glu(env, sandbox, work, redis):
    client = create_app(env()).test_client()
    assert post_order(client).status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Shopify order"]


def test_flag_on_answers_ignored_with_the_reason_and_enqueues_nothing(env, sandbox, work, redis):
    settings = env(with_flag(tenants_toml(sandbox.url), "true"))
    client = create_app(settings).test_client()
    response = post_order(client)
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "Glu creates Shopify order activities itself" in response.json["reason"]
    assert get_queue(redis, INGEST_QUEUE).count == 0
    work()
    assert glu_activities(sandbox) == []
    counters = read_counters(redis)
    assert counters["ignored|reason=platform_imports_source|source=shopify|tenant=harbour"] == 1


def test_flag_on_still_verifies_the_signature_first(env, sandbox):
    settings = env(with_flag(tenants_toml(sandbox.url), "true"))
    client = create_app(settings).test_client()
    body = load_fixture("shopify", "orders_paid")
    response = client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, secret="wrong"))
    assert response.status_code == 401


def test_orders_queued_before_the_flag_was_set_finish_ignored(env, sandbox, work, redis):
    client = create_app(env()).test_client()
    assert post_order(client).status_code == 202  # accepted while the flag was off
    env(with_flag(tenants_toml(sandbox.url), "true"))  # the merchant switches Glu's Shopify link on
    work()
    assert glu_activities(sandbox) == []
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.count == 0
    assert read_counters(redis)["ignored|reason=platform_imports_source|source=shopify|tenant=harbour"] == 1


def test_a_non_boolean_flag_is_a_start_up_error(env, sandbox):
    with pytest.raises(ConfigError, match="skip_shopify_orders"):
        env(with_flag(tenants_toml(sandbox.url), '"sometimes"'))
    with pytest.raises(ConfigError):
        load_settings()
