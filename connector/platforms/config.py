"""Per-platform ``[tenants.<t>.loyalty]`` tables, one model per ``platform`` value.

``connector.settings`` joins them into a union discriminated on ``platform``; every model
forbids unknown keys, so a typo is a start-up error naming the key. Pure pydantic: no I/O.

Defaults (documented in the README):

* LoyaltyLion activity names: our activity types map to **custom activity rule identifiers**
  the merchant creates in LoyaltyLion (LoyaltyLion has no built-in rule for stays or Wi-Fi);
  a name starting with ``$`` selects a built-in rule (``$visit``, ``$signup``…) instead. The
  Clickthrough/Visit rules (:data:`LOYALTYLION_URL_RULES`) need the destination URL, sent as
  ``properties.url``: a mapping to one needs ``activity_urls`` for that activity type.
  Purchases never use activities: they go through the Orders API.
* Voucherify event names: our activity types map to custom event names the merchant defines
  in Project settings → Event schema.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.activities import Activity, ActivityType
from connector.platforms.base import PlatformConfig
from connector.sources.base import HttpBaseUrl, http_base_url

ACTIVITY_TYPES: tuple[str, ...] = get_args(ActivityType)
PURCHASE_TYPES: frozenset[str] = frozenset({"Shopify order", "Purchase"})

DEFAULT_LOYALTYLION_ACTIVITY_NAMES: dict[str, str] = {
    "Booking": "hotel_booking",
    "Checked in": "hotel_checked_in",
    "Checked out": "hotel_checked_out",
    "Connected to wifi": "wifi_login",
}
DEFAULT_VOUCHERIFY_EVENT_NAMES: dict[str, str] = {
    "Shopify order": "shopify_order",
    "Purchase": "purchase",
    "Booking": "hotel_booking",
    "Checked in": "hotel_checked_in",
    "Checked out": "hotel_checked_out",
    "Connected to wifi": "wifi_login",
}

# LoyaltyLion create-activity: "For the Clickthrough/Visit rule, you also need to specify the
# destination URL in the properties" (properties.url). The built-in identifiers of those two rules
# are taken as "$clickthrough" and "$visit" (not spelled out on that page).
LOYALTYLION_URL_RULES: frozenset[str] = frozenset({"$clickthrough", "$visit"})

# A rule name goes into a URL path segment (PUT /v2/activities/{name}/{merchant_id}).
_RULE_NAME = re.compile(r"^\$?[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_. :-]{0,99}$")


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


def _known_type(activity_type: str) -> None:
    if activity_type not in ACTIVITY_TYPES:
        raise ValueError(f"unknown activity type {activity_type!r} (known: {', '.join(ACTIVITY_TYPES)})")


class GluConfig(PlatformConfig):
    """``platform = "glu"``: base URL and ``x-api-key`` (the shape in PRODUCT.md).

    ``skip_shopify_orders``: Glu's own Shopify link creates "Shopify order" activities itself; a
    tenant using it sets ``true`` so that the connector does not send them too. Default ``false``:
    PRODUCT.md sends Shopify orders to Glu.
    """

    platform: Literal["glu"]
    base_url: HttpBaseUrl
    api_key: SecretStr | None = None
    skip_shopify_orders: bool = False

    def skip_reason(self, source: str) -> str | None:
        """Why activities from ``source`` are not sent to Glu, or ``None`` (every source by default)."""
        if source == "shopify" and self.skip_shopify_orders:
            return (
                "Glu creates Shopify order activities itself through its Shopify link; sending them "
                "again would award points twice (set loyalty.skip_shopify_orders = false to send them)"
            )
        return None


class LoyaltyLionConfig(PlatformConfig):
    """``platform = "loyaltylion"``: programme API key, rule names, purchase and guest policy."""

    platform: Literal["loyaltylion"]
    base_url: HttpBaseUrl = "https://api.loyaltylion.com"
    api_key: SecretStr = Field(description="Programme API key, sent as Authorization: Bearer")
    site_id: str | None = Field(default=None, description="Only for multi-site programmes")
    activity_names: dict[str, str] = Field(default_factory=dict)
    activity_urls: dict[str, str] = Field(
        default_factory=dict, description="Activity type -> URL sent as properties.url (Clickthrough/Visit rules)"
    )
    skip_activities: list[ActivityType] = Field(default_factory=list)
    skip_shopify_orders: bool = True
    guest: Literal["never", "always", "without_consent"] = "never"
    customer_id: Literal["email", "email_hash"] = "email"
    requests_per_second: int = Field(default=20, ge=1, le=20)

    @field_validator("activity_names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for activity_type, name in value.items():
            _known_type(activity_type)
            if activity_type in PURCHASE_TYPES:
                raise ValueError(f"{activity_type!r} goes through the Orders API, not an activity rule")
            if not _RULE_NAME.match(name):
                raise ValueError(
                    f"{name!r} (for {activity_type!r}) is not a rule identifier: letters, digits, '_', '-', '.', "
                    "optionally prefixed '$' for a built-in rule"
                )
        return value

    @field_validator("activity_urls")
    @classmethod
    def _urls(cls, value: dict[str, str]) -> dict[str, str]:
        for activity_type, url in value.items():
            _known_type(activity_type)
            http_base_url(url)
        return value

    @model_validator(mode="after")
    def _url_rules_have_urls(self) -> LoyaltyLionConfig:
        missing = sorted(t for t in ACTIVITY_TYPES if t not in PURCHASE_TYPES and self.needs_url(t))
        if missing:
            raise ValueError(
                f"the Clickthrough/Visit rules need the destination URL (properties.url): set activity_urls for "
                f"{', '.join(repr(t) for t in missing)}"
            )
        return self

    def needs_url(self, activity_type: str) -> bool:
        """Whether the type maps to a Clickthrough/Visit rule with no ``activity_urls`` entry."""
        return self.rule_name(activity_type) in LOYALTYLION_URL_RULES and activity_type not in self.activity_urls

    def rule_name(self, activity_type: str) -> str:
        """The LoyaltyLion rule name for one of our activity types (tenant mapping over defaults)."""
        names = dict(DEFAULT_LOYALTYLION_ACTIVITY_NAMES)
        names.update(self.activity_names)
        return names[activity_type]

    def skip_reason(self, source: str) -> str | None:
        """Why activities from ``source`` are not sent to this programme, or ``None``."""
        if source == "shopify" and self.skip_shopify_orders:
            return (
                "LoyaltyLion imports Shopify orders itself through its Shopify integration; sending them "
                "again would award points twice (set loyalty.skip_shopify_orders = false to send them)"
            )
        return None


class VoucherifyConfig(PlatformConfig):
    """``platform = "voucherify"``: regional base URL, application keys, event names."""

    platform: Literal["voucherify"]
    base_url: HttpBaseUrl = "https://api.voucherify.io"
    app_id: str = Field(min_length=1)
    app_token: SecretStr
    event_names: dict[str, str] = Field(default_factory=dict)
    skip_activities: list[ActivityType] = Field(default_factory=list)
    booking_status_event: str = "hotel_booking_status_changed"
    customer_source_id: Literal["email", "email_hash"] = "email"
    # Voucherify's plan limits are per minute (Business 100, Organization 2,000: limits.mdx).
    requests_per_minute: int | None = Field(default=None, ge=1, description="The plan's API calls per minute")
    # The event-metadata key that carries our business key: it must be in each event's metadata
    # schema, and it is how a retry after an unknown outcome finds the event in the customer's
    # activity (see VoucherifyClient.find_event).
    business_key_metadata: str = Field(default="connector_key", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    @model_validator(mode="before")
    @classmethod
    def _no_hourly_limit(cls, data: object) -> object:
        if isinstance(data, dict) and "hourly_limit" in data:
            raise ValueError(
                "hourly_limit is no longer read: Voucherify's plan limits are per minute; set requests_per_minute "
                "instead (Business 100, Organization 2000)"
            )
        return data

    @field_validator("event_names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for activity_type, name in value.items():
            _known_type(activity_type)
            if not _EVENT_NAME.match(name):
                raise ValueError(f"{name!r} (for {activity_type!r}) is not a usable event name")
        return value

    @field_validator("booking_status_event")
    @classmethod
    def _status_event(cls, value: str) -> str:
        if not _EVENT_NAME.match(value):
            raise ValueError(f"{value!r} is not a usable event name")
        return value

    def event_name(self, activity_type: str) -> str:
        """The Voucherify custom event name for one of our activity types."""
        names = dict(DEFAULT_VOUCHERIFY_EVENT_NAMES)
        names.update(self.event_names)
        return names[activity_type]

    def skip_reason(self, source: str) -> str | None:
        """Voucherify takes activities from every source."""
        return None
