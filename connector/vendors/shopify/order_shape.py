"""GraphQL Admin API orders → the REST webhook shape the Shopify source translates (pure).

Reconciliation and backfill read orders with the GraphQL Admin API (``orders`` query, see
:mod:`connector.vendors.shopify.orders`), but an order must become the *same* activity, with the
same business key (``shopify:<shop>:order:<id>``), as its ``orders/paid`` webhook would: the
ledger then makes an order that was already delivered a no-op. So each GraphQL ``Order`` node is
turned into the few REST/webhook fields :func:`connector.vendors.shopify.source.order_to_activity`
reads, and that one translation is used.

Field names (GraphQL Admin API, ``Order`` object, versions 2025-04 … 2026-10): ``id`` (a gid,
``gid://shopify/Order/<numeric id>``; the numeric id is the webhook's ``id``), ``name``,
``email``, ``test``, ``displayFinancialStatus`` (``OrderDisplayFinancialStatus``: ``PAID`` …),
``processedAt``, ``createdAt``, ``updatedAt`` (ISO 8601 UTC), ``currencyCode``, ``sourceName``,
``totalPriceSet { shopMoney { amount currencyCode } }`` and ``customer { firstName lastName
defaultEmailAddress { emailAddress marketingState } }`` (``Customer.email`` and
``emailMarketingConsent`` are deprecated for ``defaultEmailAddress`` since 2025-04).
"""

from __future__ import annotations

import re
from typing import Any

ORDER_FIELDS = """
      id
      name
      email
      test
      displayFinancialStatus
      processedAt
      createdAt
      updatedAt
      currencyCode
      sourceName
      totalPriceSet { shopMoney { amount currencyCode } }
      customer {
        firstName
        lastName
        defaultEmailAddress { emailAddress marketingState }
      }
"""
"""The ``Order`` fields the conversion reads (the selection of every ``orders`` page)."""

PAID_STATUSES = frozenset({"PAID"})
"""``displayFinancialStatus`` values that count as the ``orders/paid`` event (unverified choice:
an order paid and then partly refunded before the reconciliation is not counted)."""
PAID_TOPIC = "orders/paid"

ORDER_GID = re.compile(r"^gid://shopify/Order/(\d+)$")


class OrderShapeError(ValueError):
    """A GraphQL order node that cannot be converted (no object, no order gid)."""


def order_number(gid: object) -> int:
    """``123`` of ``gid://shopify/Order/123``.

    Raises:
        OrderShapeError: not an order gid.
    """
    match = ORDER_GID.match(gid) if isinstance(gid, str) else None
    if match is None:
        raise OrderShapeError(f"order id {gid!r} is not a gid://shopify/Order/<id>")
    return int(match.group(1))


def is_paid(node: dict[str, Any]) -> bool:
    """Whether the order counts as paid now (``displayFinancialStatus`` ``PAID``)."""
    return node.get("displayFinancialStatus") in PAID_STATUSES


def counts_for(node: dict[str, Any], topics: list[str]) -> bool:
    """Whether reconciliation posts this order for a tenant with these trigger ``topics``: it stands
    in for the ``orders/paid`` webhook, so only paid orders of tenants triggered by it count."""
    return PAID_TOPIC in topics and is_paid(node)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def to_webhook_order(node: object) -> dict[str, Any]:
    """The REST webhook shape of one GraphQL ``Order`` node (only what the translation reads).

    Raises:
        OrderShapeError: the node is not an object or has no order gid.
    """
    if not isinstance(node, dict):
        raise OrderShapeError("order node is not an object")
    gid = node.get("id")
    shop_money = _object(_object(node.get("totalPriceSet")).get("shopMoney"))
    order: dict[str, Any] = {
        "id": order_number(gid),
        "admin_graphql_api_id": gid,
        "name": node.get("name"),
        "email": node.get("email"),
        "test": node.get("test") is True,
        "financial_status": str(node.get("displayFinancialStatus") or "").lower() or None,
        "processed_at": node.get("processedAt"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "currency": node.get("currencyCode"),
        "source_name": node.get("sourceName"),
        "total_price": shop_money.get("amount"),
        "total_price_set": {
            "shop_money": {"amount": shop_money.get("amount"), "currency_code": shop_money.get("currencyCode")}
        },
    }
    raw_customer = node.get("customer")
    if isinstance(raw_customer, dict):
        address = _object(raw_customer.get("defaultEmailAddress"))
        state = address.get("marketingState")
        order["customer"] = {
            "email": address.get("emailAddress"),
            "first_name": raw_customer.get("firstName"),
            "last_name": raw_customer.get("lastName"),
            # CustomerEmailAddressMarketingState SUBSCRIBED/NOT_SUBSCRIBED/UNSUBSCRIBED/PENDING/INVALID
            # → the webhook's email_marketing_consent.state (subscribed, not_subscribed, …)
            "email_marketing_consent": {"state": state.lower()} if isinstance(state, str) else None,
        }
    else:
        order["customer"] = None
    return order
