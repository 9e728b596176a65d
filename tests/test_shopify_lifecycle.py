"""The Shopify app's webhook URL (``POST /shopify/webhooks``): orders of installed shops,
``app/uninstalled`` and the three mandatory compliance topics, end to end.

The connector runs on a real HTTP port; the Shopify sandbox's ``/_sandbox/send`` signs each
webhook with the app secret and posts it there, as Shopify does; real burst workers run the jobs
against the Glu sandbox; afterwards every key and value of Redis is scanned (job data
decompressed, results decoded) for what must be gone.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from conftest import GLU_KEY, load_fixture, tenants_toml
from redis import Redis
from stack_helpers import redis_texts
from werkzeug.serving import make_server

from connector.activities import hash_identifier
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.vendors.shopify.installations import InstallationStore
from connector.web import create_app

APP = {
    "SHOPIFY_API_KEY": "sandbox-shopify-app",  # the Shopify sandbox's KEYS
    "SHOPIFY_API_SECRET": "sandbox-shopify-app-secret",
    "CONNECTOR_PUBLIC_URL": "https://connector.example",
    "CONNECTOR_SECRET_KEY": "a-stable-secret-key-of-the-operator",
}
SHOP = "lighthouse-cafe.myshopify.com"
TENANT = "lighthouse-cafe"
OTHER_SHOP = "quayside-books.myshopify.com"
NEAR_SHOP = f"old-{SHOP}"  # another shop whose domain ends with SHOP's
TOKEN = "shpat_token_of_the_lighthouse_cafe_0001"
ADA = "Ada.Lovelace@Example.com"
GRACE = "Grace.Hopper@Example.com"
ADA_PHONE = "+44 20 7946 0958"
COMPLIANCE = ("customers/redact", "shop/redact", "customers/data_request")
ORDER = json.loads(load_fixture("shopify", "orders_paid"))


def order(order_id: int, email: str | None, *, shop: str = SHOP, last_name: str = "Lovelace") -> dict[str, Any]:
    """The fixture order, as shop ``shop``'s order ``order_id`` of the customer ``email``."""
    body = copy.deepcopy(ORDER)
    body["id"] = order_id
    body["email"] = body["contact_email"] = body["customer"]["email"] = email
    body["customer"]["last_name"] = last_name
    body["order_status_url"] = f"https://{shop}/80123456789/orders/{order_id}/authenticate?key=abc"
    if email is None:
        body["phone"] = body["customer"]["phone"] = ADA_PHONE
    return body


class Lifecycle:
    """The connector on a port, the installed shop and the sandbox's sender."""

    def __init__(self, sandbox: Any, redis: Redis, url: str, store: InstallationStore) -> None:
        self.sandbox = sandbox
        self.redis = redis
        self.url = url
        self.store = store

    def send(self, topic: str, payload: dict[str, Any], *, shop: str = SHOP, hmac: str | None = None) -> Any:
        spec = {"url": f"{self.url}/shopify/webhooks", "topic": topic, "shop": shop, "payload": payload}
        if hmac:
            spec["hmac"] = hmac
        answer = requests.post(f"{self.sandbox.url}/shopify/_sandbox/send", json=spec, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def install(self, shop: str) -> None:
        self.store.install(shop, shop.split(".")[0], ["read_orders", "read_customers"], TOKEN)
        self.store.set_loyalty(shop, {"platform": "glu", "base_url": f"{self.sandbox.url}/glu", "api_key": GLU_KEY})

    def jobs(self) -> int:
        return sum(get_queue(self.redis, name).count for name in (INGEST_QUEUE, DELIVERY_QUEUE))


@pytest.fixture
def app(env: Callable[..., Any], sandbox: Any, redis: Redis) -> Iterator[Lifecycle]:
    settings = env(tenants_toml(sandbox.url), **APP, CONNECTOR_SHOPIFY_ADMIN_URL=f"{sandbox.url}/shopify/{{shop}}")
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = InstallationStore.open(redis, APP["CONNECTOR_SECRET_KEY"])
        lifecycle = Lifecycle(sandbox, redis, f"http://127.0.0.1:{server.port}", store)
        lifecycle.install(SHOP)
        yield lifecycle
    finally:
        server.shutdown()
        server.server_close()


def mentions(redis: Redis, *needles: str) -> list[str]:
    """Keys whose name or any value holds a needle (raw or lower-cased, in any stored encoding)."""
    wanted = {n for needle in needles for n in (needle, needle.lower())}
    return sorted({key for key, text in redis_texts(redis) if any(n in text for n in wanted)})


def shop_mentions(redis: Redis, shop: str) -> list[str]:
    """Keys whose name or any value names ``shop`` itself (not a longer domain ending with it)."""
    named = re.compile(rf"(?<![A-Za-z0-9.-]){re.escape(shop)}", re.IGNORECASE)
    return sorted({key for key, text in redis_texts(redis) if named.search(text)})


def job_results(redis: Redis) -> list[Any]:
    """Every finished job's return value."""
    values = []
    for key in redis.scan_iter(match="rq:results:*"):
        for _, fields in redis.xrange(key):
            raw = fields.get(b"return_value")
            if raw:
                data = base64.b64decode(raw)
                try:
                    data = zlib.decompress(data)
                except zlib.error:
                    pass
                values.append(json.loads(data))
    return values


def test_an_order_through_the_app_url_becomes_one_activity(app, work):
    first = app.send("orders/paid", order(1001, ADA))
    assert first["status"] == 202 and first["body"]["status"] == "accepted"
    again = app.send("orders/paid", order(1001, ADA))  # a new webhook of the same order
    assert again["status"] == 202
    work()
    activities = app.sandbox.sandboxes.glu.activities
    assert len(activities) == 1
    assert [s["status"] for s in app.sandbox.sandboxes.extra["shopify"].sent] == [202, 202]


def test_an_order_of_a_shop_that_never_installed_is_refused_without_a_job(app):
    answer = app.send("orders/paid", order(1002, ADA, shop=OTHER_SHOP), shop=OTHER_SHOP)
    assert answer["status"] == 401
    assert app.jobs() == 0


@pytest.mark.parametrize("topic", [*COMPLIANCE, "app/uninstalled", "orders/paid"])
@pytest.mark.parametrize("hmac", ["bad", "missing"])
def test_a_bad_or_missing_hmac_is_401_and_changes_nothing(app, topic, hmac):
    payload = {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 1, "email": ADA}, "orders_to_redact": []}
    answer = app.send(topic, payload, hmac=hmac)
    assert answer["status"] == 401
    assert answer["body"]["error"]["code"] == "invalid_signature"
    assert app.jobs() == 0
    assert app.store.token(SHOP) == TOKEN


def test_unknown_topics_are_answered_200_ignored(app):
    answer = app.send("products/update", {"id": 1})
    assert answer["status"] == 200 and answer["body"]["status"] == "ignored"


def test_uninstall_stops_the_shop_at_once_and_its_queued_jobs_end_ignored(app, redis, work):
    assert app.send("orders/paid", order(1003, ADA))["status"] == 202  # queued, not yet worked
    answer = app.send("app/uninstalled", {"id": 1, "myshopify_domain": SHOP})
    assert answer["status"] == 200 and answer["body"]["status"] == "uninstalled"
    assert app.store.token(SHOP) is None
    installation = app.store.get(SHOP)
    assert installation is not None and not installation.installed
    assert not [key for key, text in redis_texts(redis) if TOKEN in text]

    queued = app.jobs()
    later = app.send("orders/paid", order(1004, ADA))
    assert later["status"] == 401 and later["body"]["error"]["code"] == "not_installed"
    assert app.jobs() == queued  # no job for it

    work()
    assert app.sandbox.sandboxes.glu.activities == []
    ignored = [r for r in job_results(redis) if r.get("status") == "ignored"]
    assert len(ignored) == 1
    assert ignored[0]["reason"].startswith("the shop uninstalled the app at ")
    assert get_queue(redis, INGEST_QUEUE).failed_job_registry.count == 0


def test_customers_redact_erases_the_customer_everywhere_and_keeps_the_others(app, redis, work):
    glu = app.sandbox.sandboxes.glu
    app.send("orders/paid", order(2001, ADA))
    app.send("orders/paid", order(2002, GRACE, last_name="Hopper"))
    work()
    assert len(glu.activities) == 2
    # A failed delivery whose reason quotes the address (the platform echoes the request).
    glu.faults.arm({"mode": "echo", "status": 400, "count": 1, "path": "/activities"})
    app.send("orders/paid", order(2003, ADA))
    work()
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.count == 1
    # An order without an email (ignored, but its stored body names her), and one still queued.
    app.send("orders/paid", order(2004, None))
    work()
    app.send("orders/paid", order(2005, ADA))
    assert mentions(redis, ADA) and mentions(redis, "Lovelace")

    request = {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "customer": {"id": 7110987654321, "email": ADA, "phone": ADA_PHONE},
        "orders_to_redact": [2001, 2003, 2004, 2005],
    }
    answer = app.send("customers/redact", request)
    assert answer["status"] == 200 and answer["body"]["status"] == "accepted"
    work()

    assert mentions(redis, ADA, "Lovelace", ADA_PHONE, "7946 0958") == []
    assert redis.keys(f"connector:contact:{TENANT}:*:{hash_identifier(ADA)}") == []
    receipt = redis.get(f"connector:erasure:{TENANT}:{hash_identifier(ADA)}")
    assert receipt is not None and json.loads(receipt)["jobs_deleted"] >= 5
    # The other customer's jobs and cached contact are untouched.
    assert mentions(redis, GRACE)
    assert redis.keys(f"connector:contact:{TENANT}:*:{hash_identifier(GRACE)}")
    assert len(glu.activities) == 2  # the queued order of the erased customer was never posted


def test_customers_data_request_reports_that_customers_jobs_only(app, redis, work):
    app.send("orders/paid", order(3001, ADA))
    app.send("orders/paid", order(3002, ADA))
    app.send("orders/paid", order(3003, GRACE, last_name="Hopper"))
    work()
    held = {key.removeprefix("rq:job:") for key in mentions(redis, ADA) if key.startswith("rq:job:")}
    assert len(held) == 2  # two ingest jobs (each delivered its order itself, issue 16)

    request = {
        "shop_id": 954889,
        "shop_domain": SHOP,
        "orders_requested": [3001, 3002],
        "customer": {"id": 7110987654321, "email": ADA, "phone": None},
        "data_request": {"id": 9999},
    }
    assert app.send("customers/data_request", request)["status"] == 200
    work()
    raw = redis.get(f"connector:shopify:data-request:{SHOP}:9999")
    assert raw is not None
    report = json.loads(raw)
    assert {job["id"] for job in report["jobs"]} == held
    assert report["counts"]["jobs"] == 2
    assert f"connector:contact:{TENANT}:glu:{hash_identifier(ADA)}" in report["keys"]
    text = raw.decode()
    for other in (GRACE, GRACE.lower(), "Hopper", ADA, ADA.lower()):
        assert other not in text


def test_shop_redact_leaves_nothing_of_the_shop_but_its_receipt(app, redis, work):
    app.install(OTHER_SHOP)
    app.install(NEAR_SHOP)
    app.send("orders/paid", order(4001, ADA))
    app.send("orders/paid", order(4002, GRACE, last_name="Hopper"))
    turing = order(4003, "Alan.Turing@Example.com", shop=OTHER_SHOP, last_name="Turing")
    app.send("orders/paid", turing, shop=OTHER_SHOP)
    near = order(4004, "Hedy.Lamarr@Example.com", shop=NEAR_SHOP, last_name="Lamarr")
    app.send("orders/paid", near, shop=NEAR_SHOP)
    work()
    app.send(
        "customers/data_request",
        {"shop_domain": SHOP, "customer": {"id": 1, "email": ADA}, "orders_requested": [], "data_request": {"id": 7}},
    )
    work()
    redis.set(f"connector:shopify:watermark:{SHOP}", "2026-11-25T00:00:00Z")
    redis.set(f"connector:shopify:watermark:{NEAR_SHOP}", "2026-11-25T00:00:00Z")
    assert app.send("app/uninstalled", {"myshopify_domain": SHOP})["status"] == 200
    assert shop_mentions(redis, SHOP) and mentions(redis, ADA, GRACE)

    answer = app.send("shop/redact", {"shop_id": 954889, "shop_domain": SHOP})
    assert answer["status"] == 200 and answer["body"]["status"] == "accepted"
    work()

    receipt_key = f"connector:shopify:shop-redact:{SHOP}"
    assert shop_mentions(redis, SHOP) == [receipt_key]
    assert mentions(redis, ADA, GRACE, "Lovelace", "Hopper", f":{TENANT}:", f"tenant={TENANT}") == []
    receipt = json.loads(redis.get(receipt_key))
    # two ingest jobs (each delivered its order itself, issue 16) and the data request's
    assert receipt["installation_deleted"] is True and receipt["jobs_deleted"] >= 3
    assert not mentions(redis, ADA) and app.store.get(SHOP) is None
    # The other shops keep everything, the one whose domain ends with this one's too.
    assert mentions(redis, "Alan.Turing@Example.com") and mentions(redis, "Hedy.Lamarr@Example.com")
    assert redis.exists(f"connector:shopify:watermark:{NEAR_SHOP}")
    assert app.store.token(OTHER_SHOP) == TOKEN and app.store.token(NEAR_SHOP) == TOKEN
