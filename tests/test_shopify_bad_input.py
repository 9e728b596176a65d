"""Bad input at the Shopify app's URLs never gets a 5xx, and a signed compliance webhook with a
strange body never ends as an unclassified job failure.

Mutations of the query (install, callback), of the settings form and of signed webhook bodies
(every topic, installed shop) — the same families the fuzz run uses on the sources.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from conftest import tenants_toml
from redis import Redis
from rq.registry import FailedJobRegistry

from connector.queue import QUEUE_NAMES, fetch_job, get_queue
from connector.vendors.shopify.installations import InstallationStore
from connector.web import create_app

APP = {
    "SHOPIFY_API_KEY": "sandbox-shopify-app",
    "SHOPIFY_API_SECRET": "sandbox-shopify-app-secret",
    "CONNECTOR_PUBLIC_URL": "https://connector.example",
    "CONNECTOR_SECRET_KEY": "a-stable-secret-key-of-the-operator",
}
SHOP = "lighthouse-cafe.myshopify.com"
TOPICS = ("orders/paid", "app/uninstalled", "customers/redact", "shop/redact", "customers/data_request", "x/y")
BODIES: list[Any] = [
    None,
    [],
    "text",
    42,
    {},
    {"customer": "not an object"},
    {"customer": {"email": 5, "phone": ["x"]}, "orders_to_redact": "all"},
    {"customer": {"email": "a" * 100_000}},  # made each later erasure scan take minutes (quadratic regex)
    {"shop_domain": SHOP, "data_request": {"id": {"nested": True}}},
    {"id": "1" * 400, "total_price_set": {"shop_money": {"amount": "1e400", "currency_code": "???"}}},
    {"deep": json.loads("[" * 60 + "]" * 60)},
]
QUERIES: list[dict[str, str]] = [
    {},
    {"shop": SHOP},
    {"shop": SHOP, "hmac": "zz", "timestamp": "abc"},
    {"shop": "../../etc", "hmac": "00", "timestamp": "0"},
    {"shop": SHOP, "hmac": "0" * 64, "timestamp": "99999999999999999999", "state": "\u00ff\u2028"},
    {"code": "x" * 5000, "shop": SHOP, "hmac": "", "state": "", "timestamp": "-1"},
]


@pytest.fixture
def app_client(env, sandbox, redis):
    settings = env(tenants_toml(sandbox.url), **APP, CONNECTOR_SHOPIFY_ADMIN_URL=f"{sandbox.url}/shopify/{{shop}}")
    store = InstallationStore.open(redis, APP["CONNECTOR_SECRET_KEY"])
    store.install(SHOP, "lighthouse-cafe", ["read_orders", "read_customers"], "shpat_token_0001")
    store.set_loyalty(SHOP, {"platform": "glu", "base_url": f"{sandbox.url}/glu", "api_key": "sandbox-glu-key"})
    return create_app(settings).test_client()


def signed(body: bytes) -> str:
    return base64.b64encode(hmac.new(APP["SHOPIFY_API_SECRET"].encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("path", ["/shopify/install", "/shopify/callback", "/shopify/settings"])
@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_strange_queries_are_never_a_5xx(app_client, path, query):
    response = app_client.get(path, query_string=query)
    assert response.status_code < 500, response.data[:300]


@pytest.mark.parametrize("path", ["/shopify/install", "/shopify/callback", "/shopify/settings"])
def test_a_query_that_is_not_utf8_is_never_a_5xx(app_client, path):
    response = app_client.get(f"{path}?shop=%FF%FE&state=%ED%A0%80&hmac=%00&timestamp=%C0")
    assert response.status_code < 500, response.data[:300]


@pytest.mark.parametrize(
    "form",
    [{}, {"platform": "glu"}, {"csrf_token": "x", "platform": "nope"}, b"platform=%FF%ED%A0%80&csrf_token=%00"],
)
def test_strange_settings_posts_are_never_a_5xx(app_client, form):
    if isinstance(form, bytes):
        response = app_client.post("/shopify/settings", data=form, content_type="application/x-www-form-urlencoded")
    else:
        response = app_client.post("/shopify/settings", data=form)
    assert 400 <= response.status_code < 500


def test_strange_signed_webhooks_are_never_a_5xx_nor_an_unclassified_job_failure(app_client, redis: Redis, work):
    for n, (topic, body) in enumerate((t, b) for t in TOPICS for b in BODIES):
        raw = json.dumps(body).encode()
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Hmac-Sha256": signed(raw),
            "X-Shopify-Webhook-Id": f"bad-input-{n}",
        }
        response = app_client.post("/shopify/webhooks", data=raw, headers=headers, content_type="application/json")
        assert response.status_code < 500, (topic, body, response.data[:300])
        if topic == "app/uninstalled":  # stay installed for the next bodies
            InstallationStore.open(redis, APP["CONNECTOR_SECRET_KEY"]).install(
                SHOP, "lighthouse-cafe", ["read_orders", "read_customers"], "shpat_token_0001"
            )
    work()
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(queue=get_queue(redis, name))
        for job_id in registry.get_job_ids():
            reason = fetch_job(redis, job_id).latest_result().exc_string or ""  # type: ignore[union-attr]
            last = reason.strip().splitlines()[-1] if reason.strip() else ""
            assert last.startswith("connector.errors."), (job_id, last)
