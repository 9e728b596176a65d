"""Shopify duplicates: ``X-Shopify-Event-Id`` marks one event across deliveries and subscriptions.

shopify.dev "Ignore duplicate webhooks": the same ``X-Shopify-Event-Id`` value across more than
one webhook indicates a duplicate (one per subscription when several subscribe to a topic).
The webhook id still marks a repeated delivery. Signed fixtures through the real app and Redis.
"""

from __future__ import annotations

import threading
from typing import Any

from conftest import load_fixture, shopify_headers

from connector.metrics import read_counters
from connector.queue import INGEST_QUEUE, get_queue
from connector.web import create_app

BODY = load_fixture("shopify", "orders_paid")
URL = "/webhooks/harbour/shopify"


def headers(webhook_id: str, event_id: str | None, *, events_style: bool = False) -> dict[str, str]:
    """Signed headers with this webhook id and event id (``None``: no event id header)."""
    signed = {k: v for k, v in shopify_headers(BODY, webhook_id=webhook_id).items() if k != "X-Shopify-Event-Id"}
    if event_id is not None:
        signed["X-Shopify-Event-Id"] = event_id
    if events_style:
        signed = {k.replace("X-Shopify-", "Shopify-"): v for k, v in signed.items()}
    return signed


def post(client: Any, webhook_id: str, event_id: str | None, **kw: Any) -> Any:
    return client.post(URL, data=BODY, headers=headers(webhook_id, event_id, **kw))


def jobs(redis: Any) -> int:
    return get_queue(redis, INGEST_QUEUE).count


def test_same_event_id_from_another_subscription_is_a_duplicate(client, redis):
    first = post(client, "webhook-a", "event-1")
    second = post(client, "webhook-b", "event-1")
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json == {"status": "duplicate", "job": first.json["job"]}
    assert jobs(redis) == 1
    counters = read_counters(redis)
    assert counters["webhooks|outcome=accepted|source=shopify|tenant=harbour"] == 1
    assert counters["webhooks|outcome=duplicate|source=shopify|tenant=harbour"] == 1


def test_same_webhook_id_is_a_duplicate_whatever_the_event_id(client, redis):
    first = post(client, "webhook-a", "event-1")
    again = post(client, "webhook-a", "event-1")
    other_event = post(client, "webhook-a", "event-2")
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    assert (other_event.status_code, other_event.json["status"]) == (200, "duplicate")
    assert again.json["job"] == other_event.json["job"] == first.json["job"]
    assert jobs(redis) == 1


def test_neither_repeated_is_accepted(client, redis):
    assert post(client, "webhook-a", "event-1").status_code == 202
    assert post(client, "webhook-b", "event-2").status_code == 202
    assert jobs(redis) == 2


def test_a_duplicate_by_event_id_leaves_its_webhook_id_free_of_markers(client, redis):
    post(client, "webhook-a", "event-1")
    assert post(client, "webhook-b", "event-1").json["status"] == "duplicate"
    # webhook-b was swallowed as a duplicate of event-1; it is not a new event under another id.
    assert post(client, "webhook-b", "event-3").json["status"] == "accepted"
    assert jobs(redis) == 2


def test_events_style_header_without_x_counts_too(client, redis):
    post(client, "webhook-a", "event-1", events_style=True)
    assert post(client, "webhook-b", "event-1", events_style=True).json["status"] == "duplicate"
    assert post(client, "webhook-c", "event-1").json["status"] == "duplicate"
    assert jobs(redis) == 1


def test_without_the_header_behaviour_is_unchanged(client, redis):
    first = post(client, "webhook-a", None)
    assert first.status_code == 202
    assert post(client, "webhook-a", None).json == {"status": "duplicate", "job": first.json["job"]}
    assert post(client, "webhook-b", None).status_code == 202
    assert jobs(redis) == 2
    assert len(list(redis.scan_iter("connector:seen:*"))) == 2  # one marker per delivery, as before


def test_both_markers_expire_with_the_dedup_ttl(env, redis):
    client = create_app(env(CONNECTOR_DEDUP_TTL="5")).test_client()
    post(client, "webhook-a", "event-1")
    markers = list(redis.scan_iter("connector:seen:*"))
    assert len(markers) == 2
    assert all(0 < redis.ttl(marker) <= 5 for marker in markers)


def test_event_id_dedup_is_per_tenant(env, redis):
    client = create_app(env()).test_client()
    post(client, "webhook-a", "event-1")
    marina_body = BODY
    marina = shopify_headers(marina_body, webhook_id="webhook-m", shop="marina-tokyo.myshopify.com")
    from conftest import MARINA_SHOPIFY_SECRET, sign_shopify

    marina["X-Shopify-Hmac-Sha256"] = sign_shopify(marina_body, MARINA_SHOPIFY_SECRET)
    marina["X-Shopify-Event-Id"] = "event-1"
    assert client.post("/webhooks/marina/shopify", data=marina_body, headers=marina).status_code == 202


def _commands_from_clients(redis: Any, action: Any) -> list[str]:
    """The commands clients sent to Redis (not those a script ran) while ``action`` ran (MONITOR)."""
    seen: list[tuple[str, str]] = []
    sentinel: list[str] = []
    with redis.monitor() as monitor:
        done = threading.Event()

        def read() -> None:
            while True:
                item = monitor.next_command()
                client = f"{item.get('client_address')}:{item.get('client_port')}"
                if item["command"] == "ECHO monitor-done":
                    sentinel.append(client)
                    done.set()
                    return
                if item.get("client_type") != "lua":
                    seen.append((client, item["command"].split(" ", 1)[0].upper()))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            action()
        finally:
            redis.echo("monitor-done")
            assert done.wait(10)
            reader.join(5)
    return [command for client, command in seen if client not in sentinel]  # not this test's own client


def test_intake_stays_one_redis_round_trip_with_an_event_id(client, redis):
    post(client, "warm-up", "event-0")  # the script is loaded now, if it was not

    def two_webhooks() -> None:
        assert post(client, "webhook-a", "event-1").status_code == 202
        assert post(client, "webhook-b", "event-1").status_code == 200

    assert _commands_from_clients(redis, two_webhooks) == ["EVALSHA", "EVALSHA"]
