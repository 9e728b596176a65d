"""End to end on a real Redis, real RQ workers and the Glu sandbox over HTTP."""

from __future__ import annotations

from typing import Any

from conftest import load_fixture, shopify_headers


def post_order(client: Any, body: bytes, **kwargs: Any) -> Any:
    return client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, **kwargs))


def test_signed_order_becomes_exactly_one_glu_activity(client, sandbox, work):
    body = load_fixture("shopify", "orders_paid")
    response = post_order(client, body)
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    work()
    state = sandbox.sandboxes.glu.state()
    assert len(state["activities"]) == 1
    activity = state["activities"][0]
    assert activity["type"] == "Shopify order"
    assert activity["source"] == "shopify"
    assert activity["spend"] == 18690
    assert activity["currencyCode"] == "HKD"
    assert activity["happenedAt"] == "2026-11-23T23:10:14-05:00"
    assert activity["externalReference"] == "shopify:harbour-hotels.myshopify.com:order:6200407294252"
    assert state["contacts"][0]["emailAddress"] == "ada.lovelace@example.com"
    assert activity["contact"] == f"/contacts/{state['contacts'][0]['id']}"
