"""Canonical loyalty events sent through the ``standard`` source (Glu workflows and any other platform).

Glu documents no outbound webhook; a Glu workflow (or any sender) calls
``POST /webhooks/<tenant>/standard`` signed with Standard Webhooks and this body::

    {"type": "customer.loyalty.tier.upgraded",
     "timestamp": "2026-11-25T10:00:00+00:00",
     "data": {"event_id": "glu-wf-81723", "occurred_at": "2026-11-25T09:59:58+00:00",
              "customer": {"email": "ada@example.com", "id": "1042", "first_name": "Ada"},
              "tier": "Gold", "previous_tier": "Silver", "points": 250, "balance": 1200}}

``type`` is one of :data:`connector.activities.LOYALTY_EVENT_NAMES`; ``data.event_id`` is the
sender's stable id of the event (the relay's dedup key: a resend with a new ``webhook-id`` but the
same ``event_id`` reaches the ESP once). The JSON Schema is :class:`CanonicalLoyaltyWebhook`,
committed as ``schemas/standard-loyalty-event.schema.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connector.activities import LOYALTY_EVENT_NAMES, LoyaltyEvent, normalise_email
from connector.errors import PayloadError, UnsupportedEvent
from connector.sources.base import Envelope, TranslationContext

LoyaltyEventType = Literal[tuple(LOYALTY_EVENT_NAMES)]  # type: ignore[valid-type]
Scalar = str | int | float | bool | None


class CanonicalCustomer(BaseModel):
    """Who the event is about; ``email`` is the identity every ESP uses."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(description="Email address (trimmed and lower-cased by the connector)")
    id: str | None = Field(default=None, description="The platform's customer id")
    source_id: str | None = Field(default=None, description="The merchant's own customer id")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


class CanonicalLoyaltyEventData(BaseModel):
    """The ``data`` object of a canonical loyalty event."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200, description="Stable id of the event (dedup key)")
    occurred_at: AwareDatetime = Field(description="When it happened, ISO 8601 with a UTC offset")
    customer: CanonicalCustomer
    tier: str | None = Field(default=None, description="Tier after the event")
    previous_tier: str | None = None
    points: int | None = Field(default=None, description="Points gained (negative: spent or expired)")
    balance: int | None = Field(default=None, description="Points balance after the event")
    reward: str | None = Field(default=None, description="Name of the reward")
    reward_type: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict, description="Extra flat properties for the ESP")


class CanonicalLoyaltyWebhook(BaseModel):
    """The whole Standard Webhooks body of a canonical loyalty event."""

    model_config = ConfigDict(extra="forbid", title="Canonical loyalty event (standard source)")

    type: LoyaltyEventType  # type: ignore[valid-type]
    timestamp: AwareDatetime = Field(description="When the webhook was sent")
    data: CanonicalLoyaltyEventData


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of :class:`CanonicalLoyaltyWebhook`."""
    schema = CanonicalLoyaltyWebhook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def check(data: dict[str, Any]) -> CanonicalLoyaltyEventData:
    """Validate a canonical ``data`` object (cheap: the web tier runs it before enqueueing).

    Raises:
        UnsupportedEvent: the email address is unusable (ignored, not retried).
        PayloadError: the body does not follow the schema (names the field).
    """
    try:
        parsed = CanonicalLoyaltyEventData.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PayloadError(f"data.{where}: {err['msg']}") from exc
    if normalise_email(parsed.customer.email) is None:
        raise UnsupportedEvent("the customer has no usable email address", counter="no_email")
    return parsed


def translate(data: dict[str, Any], envelope: Envelope, context: TranslationContext) -> list[LoyaltyEvent]:
    """One :class:`LoyaltyEvent` from a canonical ``data`` object (pure; see :func:`check`)."""
    parsed = check(data)
    customer = parsed.customer
    return [
        LoyaltyEvent(
            type=envelope.event_type,
            event_id=parsed.event_id,
            tenant=context.tenant,
            source=envelope.source,
            occurred_at=parsed.occurred_at,
            email=customer.email,
            customer_id=customer.id,
            source_id=customer.source_id,
            first_name=customer.first_name,
            last_name=customer.last_name,
            phone=customer.phone,
            tier=parsed.tier,
            previous_tier=parsed.previous_tier,
            points=parsed.points,
            balance=parsed.balance,
            reward=parsed.reward,
            reward_type=parsed.reward_type,
            properties=dict(parsed.properties),
        )
    ]


LoyaltyEventHandler = Callable[[dict[str, Any], Envelope, TranslationContext], list[LoyaltyEvent]]
LOYALTY_EVENT_HANDLERS: dict[str, LoyaltyEventHandler] = {event_type: translate for event_type in LOYALTY_EVENT_NAMES}

__all__ = ["LOYALTY_EVENT_HANDLERS", "CanonicalLoyaltyWebhook", "UnsupportedEvent", "check", "json_schema", "translate"]
