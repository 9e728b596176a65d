"""Shopify as a sender (see :mod:`connector.sandbox.sender`): HMAC-signed order webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, b64_hmac_sha256, derived, first_secret

WEBHOOK_FIXTURES = (
    "orders_paid",
    "orders_paid__jpy",
    "orders_paid__kwd",
    "orders_paid__guest_checkout",
    "orders_paid__bgn",
    "orders_paid__xyz",
    "orders_paid__no_email",
    "orders_paid__test",
    "orders_create",
)
IGNORED_FIXTURES = ("orders_paid__no_email", "orders_paid__test")
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""
TOPICS = ("orders/paid", "orders/create", "orders/fulfilled")


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """A shop whose app secret derives from ``secret``."""
    return {
        "shop_domain": f"{derived(secret, 'shop')}.myshopify.com",
        "secrets": [derived(secret, "shpss")],
        "topics": list(TOPICS),
    }


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """Shopify's headers: base64 HMAC-SHA256 of the body, topic, shop and webhook id."""
    topics = table.get("topics") or ["orders/paid"]
    headers = {
        "Content-Type": JSON,
        "X-Shopify-Topic": str(topics[n % len(topics)]),
        "X-Shopify-Hmac-Sha256": b64_hmac_sha256(body, first_secret(table)),
        "X-Shopify-Shop-Domain": str(table["shop_domain"]),
        "X-Shopify-Webhook-Id": f"sandbox-{n}",
    }
    return SignedRequest("", headers, body)
