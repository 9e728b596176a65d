"""A shop's webhook subscriptions, made idempotently through the GraphQL Admin API.

The app-specific subscriptions (the same for every shop, the compliance topics among them) are
declared in ``shopify.app.toml``; these are the shop-specific ones the connector makes at install:
it lists the shop's subscriptions first (``webhookSubscriptions``) and creates only the missing
ones (``webhookSubscriptionCreate``), so a second install creates none.

Docs checked (shopify.dev GraphQL Admin, 2025-10 and later: ``webhookSubscriptionCreate(topic:
WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!)`` returning
``webhookSubscription`` and ``userErrors { field message }``; the changelog "webhookSubscriptionCreate
and webhookSubscriptionUpdate support all URI types", effective 2025-10: the unified ``uri`` field
of ``WebhookSubscriptionInput`` and of the ``WebhookSubscription`` object replaces the deprecated
``callbackUrl`` / ``endpoint``). This module uses ``uri`` only, so it needs API version 2025-10 or
later (the settings default).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

CONNECTOR_TOPICS = ("ORDERS_PAID", "APP_UNINSTALLED")
"""The shop-specific topics the connector subscribes to (``WebhookSubscriptionTopic`` values)."""
PAGE_SIZE = 100

LIST_QUERY = """
query webhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    edges { node { id topic uri } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREATE_MUTATION = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""


class GraphqlClient(Protocol):
    """What this module needs of :class:`~connector.vendors.shopify.admin.ShopifyAdminClient`."""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]: ...


class SubscriptionError(Exception):
    """Shopify refused to create a subscription (its ``userErrors``, no secrets in them)."""


def existing_subscriptions(client: GraphqlClient) -> list[dict[str, Any]]:
    """Every webhook subscription of the shop (``id``, ``topic``, ``uri``), all pages."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        data = client.graphql(LIST_QUERY, {"first": PAGE_SIZE, "after": after})
        page = data.get("webhookSubscriptions") or {}
        found += [edge["node"] for edge in page.get("edges") or [] if isinstance(edge, dict) and edge.get("node")]
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return found
        after = str(info["endCursor"])


def ensure_subscriptions(
    client: GraphqlClient, callback_url: str, topics: Iterable[str] = CONNECTOR_TOPICS
) -> list[str]:
    """Subscribe the shop to each of ``topics`` at ``callback_url`` unless it already is; returns
    the topics created now (empty when every one existed).

    Raises:
        SubscriptionError: Shopify answered ``userErrors``.
        RetriableDestinationError / FatalDestinationError: from the client (throttling, HTTP).
    """
    have = {(str(s.get("topic")), str(s.get("uri") or "").rstrip("/")) for s in existing_subscriptions(client)}
    created: list[str] = []
    for topic in topics:
        if (topic, callback_url.rstrip("/")) in have:
            continue
        variables = {"topic": topic, "webhookSubscription": {"uri": callback_url, "format": "JSON"}}
        data = client.graphql(CREATE_MUTATION, variables)
        answer = data.get("webhookSubscriptionCreate") or {}
        errors = answer.get("userErrors") or []
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise SubscriptionError(f"shopify: webhookSubscriptionCreate {topic}: {messages}")
        created.append(topic)
    return created
