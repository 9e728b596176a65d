"""What every loyalty platform provides: its ``[loyalty]`` model's base, its client's interface,
and the contact cache a client may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, get_args

from pydantic import BaseModel, ConfigDict

from connector.activities import Activity, ActivityType


class PlatformConfig(BaseModel):
    """Base of every ``[tenants.<t>.loyalty]`` model: ``platform`` names the registration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str
    base_url: str = ""  # each platform's model validates its own (http(s), its default)

    def skip_reason(self, source: str) -> str | None:
        """Why activities from ``source`` are not sent to this platform (``None``: send them)."""
        return None


class ContactCache(Protocol):
    """Per-tenant email → platform contact id memo (backed by Redis in the worker)."""

    def get(self, email: str) -> str | None: ...

    def set(self, email: str, contact_id: str) -> None: ...

    def forget(self, email: str) -> None:
        """Drop the cached id (the platform answered that it no longer knows it)."""
        ...


@dataclass(frozen=True)
class Receipt:
    """What the platform answered for one delivered activity (kept in the ledger)."""

    platform: str
    remote_id: str
    created: bool  # False when the platform returned an existing record (its own dedup)


class UnconfiguredPlatform(PlatformConfig):
    """The platform of a shop that installed the Shopify app but has not chosen its loyalty
    platform yet: its webhooks are answered ``ignored`` with this reason (never registered)."""

    platform: str = "unconfigured"

    def skip_reason(self, source: str) -> str | None:
        """Nothing is sent until the merchant chooses a platform on the connector's settings page."""
        return "this shop has not chosen its loyalty platform yet (the connector's Shopify settings page)"


class LoyaltyDestination(Protocol):
    """A loyalty platform client: deliver one activity, idempotently where the platform allows."""

    platform: str

    @classmethod
    def from_config(cls, config: Any, *, tenant: str, redis: Any, timeout: float) -> LoyaltyDestination:
        """The client for one tenant's ``[loyalty]`` table (``redis``: shared budgets and markers).

        Raises:
            FatalDestinationError: the table cannot make a working client (e.g. no key).
        """
        ...

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Deliver one activity in the platform's vocabulary.

        Raises:
            RetriableDestinationError / FatalDestinationError: see ``connector.http``.
            StaleContactError: the platform answered that a cached contact id is unknown to it
                (deleted or merged there); the caller forgets it and delivers once more.
            UnsupportedEvent: the platform deliberately does not take this activity (e.g.
                LoyaltyLion imports Shopify orders itself); the job ends ``ignored`` with the reason.
        """
        ...


ACTIVITY_TYPES: tuple[str, ...] = get_args(ActivityType)

PURCHASE_TYPES: frozenset[str] = frozenset({"Shopify order", "Purchase"})


def is_status_update(activity: Activity) -> bool:
    """A booking status update: a Booking whose key differs from its booking's own reference.

    PMS sources send a stay's later status changes (cancellation, reverted check-in…) as Booking
    activities keyed ``<pms>:<property>:<reservation>:status:<n>`` while the booking object keeps
    ``external_reference = <pms>:<property>:<reservation>``, the key of the stay's activities.
    """
    booking = activity.booking
    return (
        activity.type == "Booking"
        and booking is not None
        and booking.external_reference is not None
        and booking.external_reference != activity.business_key
    )


def reversed_key(activity: Activity) -> str:
    """The business key of the stay a status update refers to (its own key otherwise)."""
    booking = activity.booking
    if booking is not None and booking.external_reference:
        return booking.external_reference
    return activity.business_key


def known_activity_type(activity_type: str) -> None:
    if activity_type not in ACTIVITY_TYPES:
        raise ValueError(f"unknown activity type {activity_type!r} (known: {', '.join(ACTIVITY_TYPES)})")
