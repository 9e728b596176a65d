"""The ``loyaltylion`` source: LoyaltyLion webhooks, relayed to the tenant's ESP as ``customer.*`` events.

Docs: https://developers.loyaltylion.com/api-reference/v2/webhooks/overview and the event pages
(``customers/update``, ``program_events/customer.tier_upgraded`` …).

Signing: header ``x-loyaltylion-hmac-sha256`` = base64 HMAC-SHA256 of the raw body, keyed with the
OAuth client secret (OAuth-registered webhooks) or the site secret (tenant key ``secrets``,
several during rotation). No timestamp is signed.

Delivery id: the body ``id`` (unique per event, stable across LoyaltyLion's retries). LoyaltyLion
expects a 2xx within 5 s; this source answers from the web tier without I/O.

Envelope: ``{id, topic, created_at, payload}``; program events carry
``payload = {id, created_at, kind, properties: {customer, …}}`` while the documented
``customers/update`` example has ``customer`` at the top level — both shapes are read. The
envelope ``created_at`` is the *send* time; the event time is ``payload.created_at`` when present.

Topics relayed (canonical type in brackets): ``customers/update`` (customer.updated),
``program_events/customer.tier_upgraded`` (customer.loyalty.tier.upgraded), ``…tier_downgraded``
(customer.loyalty.tier.downgraded), ``…claimed_reward`` (customer.reward_redemptions.completed),
``…approaching_tier_upgrade`` (customer.loyalty.tier.approaching) and
``…reward_available_notification`` (customer.reward.available). ``rewards/store_fulfilment`` is
not relayed (a 2xx to it would tell LoyaltyLion a custom reward was fulfilled).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from connector.activities import LoyaltyEvent, normalise_email
from connector.errors import PayloadError, UnsupportedEvent
from connector.sources.base import (
    Envelope,
    InboundRequest,
    RelayOnlySource,
    SourceConfig,
    TranslationContext,
    as_object,
    decode_base64,
    json_object,
    require_any_hmac,
    valid_event,
)
from connector.sources.setup import SetupGuide

SIGNATURE_HEADER = "x-loyaltylion-hmac-sha256"
TOPIC_HEADER = "x-loyaltylion-topic"

TOPICS: dict[str, str] = {
    "customers/update": "customer.updated",
    "program_events/customer.tier_upgraded": "customer.loyalty.tier.upgraded",
    "program_events/customer.tier_downgraded": "customer.loyalty.tier.downgraded",
    "program_events/customer.claimed_reward": "customer.reward_redemptions.completed",
    "program_events/customer.approaching_tier_upgrade": "customer.loyalty.tier.approaching",
    "program_events/customer.reward_available_notification": "customer.reward.available",
}


class LoyaltyLionConfig(SourceConfig):
    """``[tenants.<t>.sources.loyaltylion]``."""

    credentials = ("secrets",)

    secrets: list[SecretStr] = Field(min_length=1)


def canonical_type(topic: str) -> str | None:
    """The canonical ``customer.*`` type of a topic (tolerates a missing ``program_events/``)."""
    if topic in TOPICS:
        return TOPICS[topic]
    for prefix in ("program_events/customer.", "program_events/", "customer."):
        candidate = "program_events/customer." + topic.removeprefix(prefix)
        if topic.startswith(prefix) and candidate in TOPICS:
            return TOPICS[candidate]
    return TOPICS.get("program_events/customer." + topic)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def _parts(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event payload, its properties) for either envelope shape."""
    inner = _obj(body.get("payload")) or body
    props = _obj(inner.get("properties")) if isinstance(inner.get("properties"), dict) else {}
    if "customer" not in props:
        props = {**props, "customer": _obj(inner.get("customer")) or _obj(body.get("customer"))}
    return inner, props


def translate(body: dict[str, Any], event_type: str, tenant: str) -> LoyaltyEvent:
    """One canonical :class:`LoyaltyEvent` from a LoyaltyLion webhook body (pure).

    Raises:
        UnsupportedEvent: the customer has no email address.
        PayloadError: no id or time.
    """
    inner, props = _parts(body)
    customer = as_object(props["customer"], "payload.properties.customer")
    raw_email = customer.get("email")
    email = normalise_email(raw_email if isinstance(raw_email, str) else None)
    if email is None:
        raise UnsupportedEvent("the customer has no email address", counter="no_email")
    delivery = _str(body.get("id"))
    event_id = _str(inner.get("id")) if inner is not body else None
    event_id = event_id or delivery
    if not event_id:
        raise PayloadError("webhook carries no id")
    if event_type == "customer.updated":
        occurred = _time(customer.get("updated_at")) or _time(body.get("created_at"))
    else:
        occurred = _time(inner.get("created_at")) or _time(body.get("created_at"))
    if occurred is None:
        raise PayloadError("webhook carries no usable created_at")
    names = _obj(customer.get("properties"))
    first = _str(names.get("first_name"))
    last = _str(names.get("last_name"))
    if not first and _str(names.get("name")):
        first, _, rest = str(names["name"]).strip().partition(" ")
        last = last or rest.strip() or None
    membership_tier = _obj(_obj(customer.get("loyalty_tier_membership")).get("loyalty_tier"))
    new_tier = _obj(props.get("new_tier")) or _obj(props.get("next_tier")) or membership_tier
    previous_tier = _obj(props.get("previous_tier"))
    balance = customer.get("points_approved")
    properties: dict[str, Any] = {"topic": body.get("topic") or "", "kind": _str(inner.get("kind")) or ""}
    for key in ("discount_type", "voucher_code", "discount_amount", "balance"):
        value = _str(props.get(key))
        if value is not None:
            properties[key] = value  # decimals stay strings: no currency is given to convert them
    properties = {k: v for k, v in properties.items() if v != ""}
    with valid_event():
        return LoyaltyEvent(
            type=event_type,
            event_id=event_id,
            tenant=tenant,
            source="loyaltylion",
            occurred_at=occurred,
            email=email,
            customer_id=_str(customer.get("id")),
            source_id=_str(customer.get("merchant_id")),
            first_name=first,
            last_name=last,
            tier=_str(new_tier.get("name")),
            previous_tier=_str(previous_tier.get("name")),
            points=None,
            balance=balance if isinstance(balance, int) and not isinstance(balance, bool) else None,
            reward=_str(props.get("title")) or _str(_obj(props.get("reward")).get("title")),
            reward_type=_str(props.get("reward_type")),
            properties=properties,
        )


class LoyaltyLionSource(RelayOnlySource):
    """The ``loyaltylion`` source adapter (produces loyalty events, not activities)."""

    name = "loyaltylion"
    config_model = LoyaltyLionConfig
    setup = SetupGuide(
        title="LoyaltyLion",
        group="loyalty",
        console="LoyaltyLion's webhooks (its API, or the app that registers them)",
        steps=(
            "Register a LoyaltyLion webhook for each topic to relay (customers/update, "
            "program_events/customer.tier_upgraded …) with the webhook URL above as its address.",
            "Enter the secret LoyaltyLion signs with in Secrets here: your site secret, or the OAuth "
            "client secret when an OAuth app registered the webhooks.",
        ),
        docs="https://developers.loyaltylion.com/api-reference/v2/webhooks/overview",
        unverified="Whether LoyaltyLion's admin has a form for webhooks (the docs use the API).",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: LoyaltyLionConfig) -> None:
        """Base64 HMAC-SHA256 of the raw body with any configured secret."""
        require_any_hmac(request.raw, decode_base64(request.header(SIGNATURE_HEADER)), config.secrets)

    def identify(self, request: InboundRequest, config: LoyaltyLionConfig, tenant: str) -> Envelope:
        """The canonical type of the body's ``topic`` (header as fallback); the body ``id``."""
        body = json_object(request)
        topic = body.get("topic") or request.header(TOPIC_HEADER)
        if not isinstance(topic, str) or not topic:
            raise PayloadError('body has no "topic"')
        event_type = canonical_type(topic)
        if event_type is None:
            raise UnsupportedEvent(f"topic {topic} is not relayed", counter="unsupported_type")
        delivery = _str(body.get("id"))
        if not delivery:
            raise PayloadError('body has no "id"')
        translate(body, event_type, tenant)  # pure and cheap: bad body 400, no email "ignored", now
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=event_type,
            delivery_id=delivery,
            received_at=request.received_at,
        )

    def loyalty_event(self, body: dict[str, Any], envelope: Envelope, context: TranslationContext) -> LoyaltyEvent:
        """The one canonical event of a stored webhook body (pure)."""
        return translate(body, envelope.event_type, context.tenant)


SOURCE = LoyaltyLionSource()
