"""Canonical models in the middle of the connector: what sources produce, destinations consume.

``Activity`` is one thing a guest did (a paid order, a booking, a check-in or -out, a Wi-Fi login)
in the vocabulary of Glu's activity types; each destination maps it to its own vocabulary.
``LoyaltyEvent`` is one ``customer.*`` event coming back from a loyalty platform, to be relayed
to an email provider. Money is integer minor units; every timestamp carries its UTC offset.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

ActivityType = Literal[
    "Shopify order",
    "Purchase",
    "Booking",
    "Checked in",
    "Checked out",
    "Connected to wifi",
]

UNKNOWN_CURRENCY = "unknown_currency"
"""Activity attribute: the currency code (at most 16 characters) of an amount left out because
ISO 4217 knows it neither as current nor as withdrawn. The activity goes without spend (or
booking total) rather than failing or being dropped, and the delivery job counts it
(``connector_ignored{reason="unknown_currency"}``)."""

BookingStatus = Literal["Inquired", "Confirmed", "Started", "Processed", "Canceled", "Optional", "Requested"]


def normalise_email(value: str | None) -> str | None:
    """Trim and lower-case an email address; empty or address-less values become ``None``."""
    if value is None:
        return None
    email = value.strip().lower()
    if not email or "@" not in email:
        return None
    return email


def hash_identifier(value: str) -> str:
    """Stable, non-reversible short digest for PII that must appear in keys (emails, MACs)."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:24]


class Person(BaseModel):
    """The guest or customer an activity belongs to; ``email`` is the identity used everywhere."""

    model_config = ConfigDict(frozen=True)

    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    marketing_consent: bool | None = None  # None: the source did not say; never invented

    @field_validator("email")
    @classmethod
    def _normalise(cls, value: str) -> str:
        email = normalise_email(value)
        if email is None:
            raise ValueError("not an email address")
        return email


class Booking(BaseModel):
    """A stay, in Glu's booking-object terms (``total`` in minor units)."""

    model_config = ConfigDict(frozen=True)

    check_in: AwareDatetime
    check_out: AwareDatetime
    status: BookingStatus
    number_of_guests: int | None = None
    room_type: str | None = None
    room_name: str | None = None
    external_reference: str | None = None
    total: int | None = None
    currency_code: str | None = None
    channel: str | None = None


class Activity(BaseModel):
    """One loyalty activity, keyed by ``business_key`` (sent as the platform's idempotency key)."""

    model_config = ConfigDict(frozen=True)

    type: ActivityType
    tenant: str
    source: str
    business_key: str = Field(description="Deterministic key, e.g. shopify:<shop>:order:<id>")
    happened_at: AwareDatetime
    person: Person
    spend: int | None = Field(default=None, description="Minor units of currency_code")
    currency_code: str | None = None
    booking: Booking | None = None
    venue: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def ledger_key(self) -> str:
        """Unique per platform: Glu dedups on (type, externalReference), so do we."""
        return f"{self.type}|{self.business_key}"


class LoyaltyEvent(BaseModel):
    """A ``customer.*`` event from a loyalty platform, in Voucherify's vocabulary."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="e.g. customer.rewarded, customer.tier.upgraded")
    event_id: str
    tenant: str
    source: str
    occurred_at: AwareDatetime
    email: str
    customer_id: str | None = None
    source_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tier: str | None = None
    previous_tier: str | None = None
    points: int | None = None
    balance: int | None = None
    reward: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    phone: str | None = None
    reward_type: str | None = None

    @property
    def ledger_key(self) -> str:
        """Unique per ESP account: the loyalty platform's own event id, namespaced by source."""
        return f"{self.source}:{self.event_id}"

    @field_validator("email")
    @classmethod
    def _normalise(cls, value: str) -> str:
        email = normalise_email(value)
        if email is None:
            raise ValueError("not an email address")
        return email


# The relayed ``customer.*`` vocabulary (Voucherify's event types; the two marked ``*`` are
# LoyaltyLion notifications Voucherify has no name for) and each type's default ESP event name:
# portable slugs (letters, digits, ``_``; at most 30 characters) valid for every ESP.
LOYALTY_EVENT_NAMES: dict[str, str] = {
    "customer.created": "loyalty_member_created",
    "customer.updated": "loyalty_profile_updated",
    "customer.rewarded": "loyalty_rewarded",
    "customer.rewarded.loyalty_points": "loyalty_points_rewarded",
    "customer.voucher.loyalty_card.points_added": "loyalty_points_added",
    "customer.voucher.loyalty_card.points_expired": "loyalty_points_expired",
    "customer.voucher.gift.balance_added": "gift_balance_added",
    "customer.loyalty.tier.joined": "loyalty_tier_joined",
    "customer.loyalty.tier.left": "loyalty_tier_left",
    "customer.loyalty.tier.upgraded": "loyalty_tier_upgraded",
    "customer.loyalty.tier.downgraded": "loyalty_tier_downgraded",
    "customer.loyalty.tier.prolonged": "loyalty_tier_prolonged",
    "customer.loyalty.tier.approaching": "loyalty_tier_approaching",  # *
    "customer.reward.available": "loyalty_reward_available",  # *
    "customer.reward_redemptions.completed": "loyalty_reward_redeemed",
    "customer.redemption.succeeded": "redemption_succeeded",
    "customer.redemption.rollback.succeeded": "redemption_rolled_back",
    "customer.publication.succeeded": "code_published",
    "customer.segment.entered": "segment_entered",
    "customer.segment.left": "segment_left",
}
