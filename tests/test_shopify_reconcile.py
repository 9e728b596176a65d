"""Shopify reconciliation and backfill, on a real Redis, real burst workers and the sandbox: an
order whose webhook never came is posted once; one already delivered is not posted again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import GLU_KEY, load_fixture, tenants_toml
from test_architecture import PACKAGE_ROOT, imports, modules

from connector import cli, jobs
from connector.queue import DELIVERY_QUEUE, get_queue
from connector.settings import load_settings
from connector.vendors.shopify import orders as orders_module
from connector.vendors.shopify.installations import InstallationStore
from connector.vendors.shopify.order_shape import to_webhook_order
from connector.vendors.shopify.reconcile import (
    period_of,
    read_watermark,
    reconcile_job_id,
    translate,
    watermark_key,
)
from connector.vendors.shopify.sandbox import KEYS
from connector.vendors.shopify.source import ShopifyConfig, order_to_activity
from connector.web import create_app

SHOP = "lighthouse-cafe.myshopify.com"
TENANT = "lighthouse-cafe"
TOKEN = "shpat_reconcile_token_0123456789"
SECRET_KEY = "a-stable-secret-key-of-the-operator"
INTERVAL = 3600


def app_env(sandbox_url: str) -> dict[str, str]:
    return {
        "SHOPIFY_API_KEY": KEYS["shopify_api_key"],
        "SHOPIFY_API_SECRET": KEYS["shopify_api_secret"],
        "CONNECTOR_PUBLIC_URL": "https://connector.example",
        "CONNECTOR_SECRET_KEY": SECRET_KEY,
        "CONNECTOR_SHOPIFY_ADMIN_URL": f"{sandbox_url}/shopify/{{shop}}",
        "CONNECTOR_SHOPIFY_RECONCILE_INTERVAL": str(INTERVAL),
    }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graphql_order(number: int, updated: datetime, *, status: str = "PAID", email: str = "ada@example.com") -> dict:
    """An ``Order`` node as the GraphQL Admin API answers it (the fields the connector selects)."""
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{number}",
        "email": email,
        "test": False,
        "displayFinancialStatus": status,
        "processedAt": iso(updated - timedelta(seconds=2)),
        "createdAt": iso(updated - timedelta(seconds=3)),
        "updatedAt": iso(updated),
        "currencyCode": "EUR",
        "sourceName": "web",
        "totalPriceSet": {"shopMoney": {"amount": "12.50", "currencyCode": "EUR"}},
        "customer": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "defaultEmailAddress": {"emailAddress": email, "marketingState": "SUBSCRIBED"},
        },
    }


class Shop:
    """The installed shop, its sandbox admin, and the Glu sandbox it posts to."""

    def __init__(self, sandbox: Any, redis: Any) -> None:
        self.sandbox = sandbox
        self.redis = redis
        self.admin = sandbox.sandboxes.extra["shopify"]
        self.store = InstallationStore.open(redis, SECRET_KEY)
        self.store.install(SHOP, TENANT, ["read_customers", "read_orders"], TOKEN)
        self.store.set_loyalty(SHOP, {"platform": "glu", "base_url": f"{sandbox.url}/glu", "api_key": GLU_KEY})
        with self.admin.lock:
            self.admin.tokens[TOKEN] = {"shop": SHOP, "scopes": ["read_customers", "read_orders"]}
        self.period = 0

    def seed(self, *orders: dict) -> None:
        answer = requests.post(
            f"{self.sandbox.url}/shopify/_sandbox/orders", json={"shop": SHOP, "orders": list(orders)}, timeout=5
        )
        assert answer.status_code == 200

    def reconcile(self, work: Any) -> dict:
        """Schedule the next period's reconciliation (as the scheduler does) and run the workers."""
        self.period += 1
        now = datetime.now(UTC).timestamp() + self.period * INTERVAL
        ids = jobs.schedule_shopify_reconciliations(now=now)
        assert ids == [reconcile_job_id(SHOP, period_of(SHOP, INTERVAL, now))]
        work()
        job = get_queue(self.redis, DELIVERY_QUEUE).fetch_job(ids[0])
        assert job is not None and job.is_finished, job and job.exc_info
        result: dict = job.return_value()
        return result

    def posted(self) -> list[str]:
        return [a["externalReference"] for a in self.sandbox.sandboxes.glu.state()["activities"]]

    def posts(self) -> int:
        return int(self.sandbox.sandboxes.glu.state()["activity_posts"])


@pytest.fixture
def shop(env, sandbox, redis) -> Shop:
    env(tenants_toml(sandbox.url), **app_env(sandbox.url))
    return Shop(sandbox, redis)


@pytest.fixture
def client_for_app(shop: Shop) -> Any:
    return create_app(load_settings()).test_client()


def key(number: int) -> str:
    return f"shopify:{SHOP}:order:{number}"


def test_an_order_whose_webhook_never_came_is_posted_once(shop, work):
    now = datetime.now(UTC)
    shop.seed(graphql_order(1001, now), graphql_order(1002, now, status="PENDING"))
    result = shop.reconcile(work)
    assert result["status"] == "reconciled"
    assert (result["seen"], result["paid"], result["queued"]) == (2, 1, 1)
    assert shop.posted() == [key(1001)]

    again = shop.reconcile(work)  # a second run (next period): found again, posted nothing
    assert again["queued"] == 0 and again["already_delivered"] == 1
    assert shop.posts() == 1


def test_an_order_delivered_by_its_webhook_is_not_posted_again(shop, work, client_for_app):
    body = load_fixture("shopify", "orders_paid")
    order = json.loads(body)
    answer = client_for_app.post(
        f"/webhooks/{TENANT}/shopify",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": shop.admin.sign_webhook(body),
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": "webhook-of-order-6200407294252",
        },
    )
    assert answer.status_code == 202, answer.json
    work()
    assert shop.posted() == [key(order["id"])]
    node = graphql_from_webhook(order)
    node["updatedAt"] = iso(datetime.now(UTC))  # updated since the installation
    shop.seed(node)
    result = shop.reconcile(work)
    assert (result["paid"], result["queued"], result["already_delivered"]) == (1, 0, 1)
    assert shop.posts() == 1


def test_pagination_over_several_pages_and_the_watermark_advances(shop, work, monkeypatch):
    monkeypatch.setattr(orders_module, "PAGE_SIZE", 2)
    start = datetime.now(UTC)
    seeded = [graphql_order(2000 + n, start + timedelta(seconds=n)) for n in range(5)]
    shop.seed(*reversed(seeded))  # the sandbox sorts by updatedAt
    result = shop.reconcile(work)
    assert result["pages"] == 3 and result["queued"] == 5
    assert sorted(shop.posted()) == sorted(key(2000 + n) for n in range(5))
    assert read_watermark(shop.redis, SHOP) == seeded[-1]["updatedAt"]
    calls = [c for c in shop.admin.state()["graphql_calls"] if c["field"] == "orders"]
    assert [c["variables"]["after"] is None for c in calls] == [True, False, False]
    assert "updated_at:>=" in calls[0]["variables"]["query"]

    later = start + timedelta(minutes=30)  # beyond the overlap: the next run asks only from the watermark
    shop.seed(graphql_order(2100, later))
    again = shop.reconcile(work)
    assert again["queued"] == 1 and again["seen"] == 6  # 5 inside the 5-minute overlap, all already delivered
    assert again["already_delivered"] == 5
    assert read_watermark(shop.redis, SHOP) == iso(later)


def test_a_throttled_answer_is_waited_out(shop, work):
    shop.seed(graphql_order(3001, datetime.now(UTC)))
    answer = requests.post(
        f"{shop.sandbox.url}/shopify/_sandbox/throttle", json={"available": 0, "restore_rate": 50}, timeout=5
    )
    assert answer.status_code == 200
    result = shop.reconcile(work)
    assert result["queued"] == 1
    calls = [c for c in shop.admin.state()["graphql_calls"] if c["field"] == "orders"]
    assert [c["throttled"] for c in calls] == [True, False]
    assert shop.posted() == [key(3001)]


def test_uninstalled_shops_are_not_reconciled(shop, work, redis):
    shop.seed(graphql_order(4001, datetime.now(UTC)))
    now = datetime.now(UTC).timestamp()
    first = jobs.schedule_shopify_reconciliations(now=now)
    assert len(first) == 1
    assert jobs.schedule_shopify_reconciliations(now=now) == []  # another scheduler, same period
    shop.store.mark_uninstalled(SHOP)
    assert jobs.schedule_shopify_reconciliations(now=now + INTERVAL) == []
    work()  # the job queued before the uninstall ends ignored
    job = get_queue(redis, DELIVERY_QUEUE).fetch_job(first[0])
    assert job is not None and job.return_value()["status"] == "ignored"
    assert shop.posted() == [] and not redis.exists(watermark_key(SHOP))


def test_backfill_dry_run_lists_and_changes_nothing(shop, work, redis, capsys):
    day = datetime.now(UTC) - timedelta(days=40)  # before the installation: only a backfill finds them
    shop.seed(graphql_order(5001, day), graphql_order(5002, day + timedelta(hours=1), status="REFUNDED"))
    before = sorted(redis.keys("*"))
    cli.main(["backfill", "--tenant", TENANT, "--since", (day - timedelta(days=1)).date().isoformat(), "--dry-run"])
    out = capsys.readouterr()
    assert f"would post {key(5001)}" in out.out
    assert "2 orders seen, 1 paid, 1 would post, 0 already delivered" in out.out
    assert "page 1" in out.err
    assert sorted(redis.keys("*")) == before  # no job, no watermark, no counter
    work()
    assert shop.posted() == []


def test_backfill_posts_the_missing_ones_with_a_summary(shop, work, capsys, monkeypatch):
    monkeypatch.setattr(orders_module, "PAGE_SIZE", 2)
    day = datetime.now(UTC) - timedelta(days=40)
    shop.seed(*(graphql_order(6000 + n, day + timedelta(minutes=n)) for n in range(3)))
    since, until = (day - timedelta(days=1)).date().isoformat(), iso(day + timedelta(minutes=1, seconds=30))
    cli.main(["backfill", "--tenant", TENANT, "--since", since, "--until", until])
    out = capsys.readouterr().out
    assert "2 orders seen, 2 paid, 2 queued for posting, 0 already delivered" in out
    work()
    assert sorted(shop.posted()) == [key(6000), key(6001)]
    cli.main(["backfill", "--tenant", TENANT, "--since", since])
    assert "3 orders seen, 3 paid, 1 queued for posting, 2 already delivered" in capsys.readouterr().out
    work()
    assert shop.posts() == 3


def test_backfill_of_a_tenant_without_an_installation_says_so(shop, capsys):
    with pytest.raises(SystemExit) as ended:
        cli.main(["backfill", "--tenant", "marina", "--since", "2026-01-01", "--dry-run"])
    assert "has no installation of the Shopify app" in str(ended.value)


# -- the conversion, on its own ----------------------------------------------------------------


def graphql_from_webhook(order: dict) -> dict:
    """The GraphQL Admin API answer for the order of a REST webhook (times in UTC, as GraphQL gives)."""
    customer = order["customer"]
    return {
        "id": order["admin_graphql_api_id"],
        "name": order["name"],
        "email": order["email"],
        "test": order["test"],
        "displayFinancialStatus": order["financial_status"].upper(),
        "processedAt": iso(datetime.fromisoformat(order["processed_at"])),
        "createdAt": iso(datetime.fromisoformat(order["created_at"])),
        "updatedAt": iso(datetime.fromisoformat(order["updated_at"])),
        "currencyCode": order["currency"],
        "sourceName": order["source_name"],
        "totalPriceSet": {
            "shopMoney": {
                "amount": order["total_price_set"]["shop_money"]["amount"],
                "currencyCode": order["total_price_set"]["shop_money"]["currency_code"],
            }
        },
        "customer": {
            "firstName": customer["first_name"],
            "lastName": customer["last_name"],
            "defaultEmailAddress": {
                "emailAddress": customer["email"],
                "marketingState": customer["email_marketing_consent"]["state"].upper(),
            },
        },
    }


def test_the_graphql_order_makes_the_same_activity_as_its_webhook(settings):
    order = json.loads(load_fixture("shopify", "orders_paid"))
    shop_domain = "harbour-hotels.myshopify.com"
    from_webhook = order_to_activity(order, shop=shop_domain, tenant="harbour")
    converted = to_webhook_order(graphql_from_webhook(order))
    assert converted["id"] == 6200407294252
    assert order_to_activity(converted, shop=shop_domain, tenant="harbour") == from_webhook
    tenant = settings.tenants["harbour"]
    config = tenant.sources["shopify"]
    assert isinstance(config, ShopifyConfig)
    through_source = translate(tenant, config, graphql_from_webhook(order), datetime.now(UTC))
    assert through_source == from_webhook
    assert through_source.business_key == f"shopify:{shop_domain}:order:6200407294252"
    assert through_source.happened_at == datetime.fromisoformat(order["processed_at"])  # the same instant


def test_the_conversion_module_is_pure():
    found = modules(PACKAGE_ROOT)
    name = "connector.vendors.shopify.order_shape"
    imported = imports(name, Path(found[name]), set(found), module_level=False)
    assert imported <= {"re", "typing"}


def test_a_running_worker_reconciles_each_installed_shop_by_itself(shop, redis):
    """No one enqueues anything: the worker's scheduler starts the period's reconciliation."""
    shop.seed(graphql_order(7001, datetime.now(UTC)))
    worker = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "worker"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not shop.posted():
            time.sleep(0.1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert shop.posted() == [key(7001)]
    job_id = reconcile_job_id(SHOP, period_of(SHOP, INTERVAL, time.time()))
    assert get_queue(redis, DELIVERY_QUEUE).fetch_job(job_id) is not None
