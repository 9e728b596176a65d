"""Voucherify's ``[tenants.<t>.loyalty]`` table (``platform = "voucherify"``): pure pydantic, no I/O.

Our activity types map to custom event names the merchant defines in Project settings → Event
schema.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.activities import ActivityType
from connector.platforms.base import PlatformConfig, known_activity_type
from connector.sources.base import HttpBaseUrl

DEFAULT_VOUCHERIFY_EVENT_NAMES: dict[str, str] = {
    "Shopify order": "shopify_order",
    "Purchase": "purchase",
    "Booking": "hotel_booking",
    "Checked in": "hotel_checked_in",
    "Checked out": "hotel_checked_out",
    "Connected to wifi": "wifi_login",
}

_EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_. :-]{0,99}$")


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
            known_activity_type(activity_type)
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
