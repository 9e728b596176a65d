"""LoyaltyLion's ``[tenants.<t>.loyalty]`` table (``platform = "loyaltylion"``): pure pydantic, no I/O.

Our activity types map to **custom activity rule identifiers** the merchant creates in LoyaltyLion
(LoyaltyLion has no built-in rule for stays or Wi-Fi); a name starting with ``$`` selects a
built-in rule (``$visit``, ``$signup``…) instead. Purchases never use activities: they go through
the Orders API.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.activities import ActivityType
from connector.platforms.base import ACTIVITY_TYPES, PURCHASE_TYPES, PlatformConfig, known_activity_type
from connector.sources.base import HttpBaseUrl, http_base_url

DEFAULT_LOYALTYLION_ACTIVITY_NAMES: dict[str, str] = {
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
            known_activity_type(activity_type)
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
            known_activity_type(activity_type)
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
