"""Shopify order webhooks → "Shopify order" activities.

Vendor docs: https://shopify.dev/docs/apps/build/webhooks (delivery structure, verifying,
ignoring duplicates) and the Order resource (https://shopify.dev/docs/api/admin-rest/latest/resources/order).

* Signing: HMAC-SHA256 of the raw request body with the app's client secret (or the per-store key
  of a merchant-created webhook), **base64**, in ``X-Shopify-Hmac-Sha256``. Several secrets are
  accepted during rotation. The newer "Events" deliveries use the same headers without ``X-``.
* Delivery id: ``X-Shopify-Webhook-Id`` (one per subscription delivery, kept across retries);
  dedup is on (tenant, topic, webhook id), and also on (tenant, topic, ``X-Shopify-Event-Id``)
  where sent: the same event id marks a duplicate of one event, also across subscriptions
  ("Ignore duplicate webhooks").
* ``X-Shopify-Shop-Domain`` must equal the tenant's ``shop_domain``: a public app signs every
  shop's webhooks with the same secret, so the signature alone does not name the tenant.
* Topic ``orders/paid`` triggers an activity by default (``topics`` per tenant); others are
  answered ``ignored``. Test orders and orders without any customer email are ignored in the
  worker with a reason and counted. An order in a currency ISO 4217 does not know (current or
  withdrawn) goes without spend, marked ``unknown_currency`` (the delivery job counts it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, SecretStr, field_validator

from connector.activities import UNKNOWN_CURRENCY, Activity, Person, normalise_email
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.money import known_currency, to_minor_units
from connector.sources.base import (
    Envelope,
    InboundRequest,
    SourceAdapter,
    SourceConfig,
    TranslationContext,
    as_object,
    decode_base64,
    known_topics,
    require_any_hmac,
    valid_event,
)
from connector.sources.setup import SetupGuide

ORDER_TOPICS = frozenset({"orders/paid", "orders/create", "orders/fulfilled"})


class ShopifyConfig(SourceConfig):
    """``[tenants.<t>.sources.shopify]``."""

    credentials = ("secrets",)

    shop_domain: str
    secrets: list[SecretStr] = Field(min_length=1)
    topics: list[str] = Field(default_factory=lambda: ["orders/paid"])

    @field_validator("shop_domain")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("topics")
    @classmethod
    def _order_topics(cls, value: list[str]) -> list[str]:
        return known_topics(value, ORDER_TOPICS)


def _header(request: InboundRequest, name: str) -> str | None:
    # Classic webhooks use X-Shopify-*, Shopify "Events" deliveries the same names without X-.
    return request.header(f"x-shopify-{name}") or request.header(f"shopify-{name}")


class ShopifySource(SourceAdapter):
    """The ``shopify`` source adapter."""

    name = "shopify"
    config_model = ShopifyConfig
    setup = SetupGuide(
        title="Shopify",
        group="shop",
        console="your Shopify admin: Apps",
        steps=(
            "Install the connector's app from your Shopify admin: the install registers its webhooks "
            "(orders/paid) and signs them with the app's secret. Nothing to paste.",
        ),
        docs="https://shopify.dev/docs/apps/build/webhooks",
        addable=False,
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: ShopifyConfig) -> None:
        """Check the base64 HMAC of the raw body, then that the shop is this tenant's."""
        given = decode_base64(_header(request, "hmac-sha256"))
        require_any_hmac(request.raw, given, config.secrets)
        shop = (_header(request, "shop-domain") or "").strip().lower()
        if shop != config.shop_domain:
            raise SignatureError("shop domain does not belong to this tenant")

    def identify(self, request: InboundRequest, config: ShopifyConfig, tenant: str) -> Envelope:
        """Topic and webhook id from the headers; unwanted topics raise ``UnsupportedEvent``."""
        topic = (_header(request, "topic") or "").strip()
        delivery_id = (_header(request, "webhook-id") or "").strip()
        if not topic:
            raise PayloadError("missing X-Shopify-Topic header")
        if not delivery_id:
            raise PayloadError("missing X-Shopify-Webhook-Id header")
        if topic not in config.topics:
            raise UnsupportedEvent(
                f"topic {topic} is not a trigger for this tenant (triggers: {', '.join(config.topics)})",
                counter="topic_not_configured",
            )
        event_id = (_header(request, "event-id") or "").strip()
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=topic,
            delivery_id=delivery_id,
            received_at=request.received_at,
            more_delivery_ids=(f"event-id:{event_id}",) if event_id else (),
        )

    def to_activities(
        self,
        envelope: Envelope,
        payload: Any,
        context: TranslationContext,
        config: ShopifyConfig,
    ) -> list[Activity]:
        """One order → one "Shopify order" activity (pure)."""
        return [order_to_activity(payload, shop=config.shop_domain, tenant=context.tenant)]


def _order_total(order: dict[str, Any]) -> tuple[str, str]:
    """The order total in the shop currency: ``total_price_set.shop_money`` when present."""
    money = as_object(
        as_object(order.get("total_price_set"), "total_price_set").get("shop_money"), "total_price_set.shop_money"
    )
    amount = money.get("amount", order.get("total_price"))
    currency = money.get("currency_code", order.get("currency"))
    if amount is None or not isinstance(currency, str):
        raise PayloadError("order has no total_price / currency")
    if not isinstance(amount, str | int):
        raise PayloadError(f"order total {amount!r} is not a decimal string")
    return str(amount), currency


def order_to_activity(order: Any, *, shop: str, tenant: str) -> Activity:
    """Translate one Shopify order into a "Shopify order" activity.

    Raises:
        UnsupportedEvent: test orders, orders without a customer email.
        PayloadError: the order lacks an id, a usable total or an offset-bearing timestamp.
    """
    if not isinstance(order, dict):
        raise PayloadError("order payload is not a JSON object")
    order_id = order.get("id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise PayloadError("order has no numeric id")
    if order.get("test") is True:
        raise UnsupportedEvent("test order", counter="test_order")
    raw_customer = order.get("customer")
    customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
    candidates = (customer.get("email"), order.get("email"), order.get("contact_email"))
    email = normalise_email(next((c for c in candidates if isinstance(c, str) and c), None))
    if email is None:
        raise UnsupportedEvent("order has no customer email", counter="no_email")
    amount, currency = _order_total(order)
    processed_at = order.get("processed_at") or order.get("created_at")
    try:
        happened_at = datetime.fromisoformat(str(processed_at))
    except ValueError as exc:
        raise PayloadError(f"processed_at {processed_at!r} is not an ISO 8601 timestamp") from exc
    if happened_at.utcoffset() is None:
        raise PayloadError(f"processed_at {processed_at!r} has no UTC offset")
    consent = as_object(customer.get("email_marketing_consent"), "customer.email_marketing_consent").get("state")
    if not isinstance(consent, str | None):
        raise PayloadError("customer.email_marketing_consent.state is not a string")
    with valid_event():
        return _activity(order, customer, shop, tenant, order_id, happened_at, email, consent, amount, currency)


def _activity(
    order: dict[str, Any],
    customer: dict[str, Any],
    shop: str,
    tenant: str,
    order_id: int,
    happened_at: datetime,
    email: str,
    consent: str | None,
    amount: str,
    currency: str,
) -> Activity:
    known = known_currency(currency)
    unpriced = {} if known else {UNKNOWN_CURRENCY: currency[:16]}
    return Activity(
        type="Shopify order",
        tenant=tenant,
        source="shopify",
        business_key=f"shopify:{shop}:order:{order_id}",
        happened_at=happened_at,
        person=Person(
            email=email,
            first_name=customer.get("first_name"),
            last_name=customer.get("last_name"),
            marketing_consent={"subscribed": True, "unsubscribed": False, "not_subscribed": False}.get(consent)
            if consent
            else None,
        ),
        spend=to_minor_units(amount, currency) if known else None,
        currency_code=currency if known else None,
        attributes={"order_name": order.get("name"), "source_name": order.get("source_name"), **unpriced},
    )


SOURCE = ShopifySource()
