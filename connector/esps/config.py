"""``[tenants.<t>.esp]``: one validated model per email provider, chosen by ``provider``.

Every table has ``provider``, the provider's credentials, ``base_url`` (overridable everywhere:
sandbox, tests, regional clusters), an optional ``events`` filter (canonical ``customer.*`` types;
others are answered ``ignored``), an optional ``names`` mapping (canonical type → ESP event name,
checked against the provider's name rules) and an optional ``rate_limit`` (calls per second for the
whole ESP account, shared by every worker). Default event names are
:data:`connector.activities.LOYALTY_EVENT_NAMES`, rendered per provider (:meth:`EspBase.event_name`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connector.activities import LOYALTY_EVENT_NAMES
from connector.sources.base import http_base_url

KLAVIYO_REVISION = "2026-10-15"
"""The default Klaviyo API ``revision`` header: the latest stable (GA) revision we could verify.

Source: Klaviyo's API changelog (developers.klaviyo.com/en/changelog, "Revision 2026-10-15 (GA)")
and its revision-changes reference (developers.klaviyo.com, "Current stable revision:
2026-10-15"), checked 2026-12-01. Klaviyo supports a revision for 2 years (stable 1, deprecated
1); 2024 revisions are retired (410 or fall forward) since October 2026. Bump this when a newer
revision is adopted; tenants may pin their own with ``esp.revision``.
"""

MAILCHIMP_NAME = re.compile(r"^[A-Za-z0-9_-]{2,30}$")


class EspBase(BaseModel):
    """Keys every ESP table shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    events: list[str] | None = None
    names: dict[str, str] = Field(default_factory=dict)
    rate_limit: int | None = Field(default=None, ge=1, description="calls per second for the account")

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_base_url(value) if value is not None else None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        for event_type in value or []:
            if event_type not in LOYALTY_EVENT_NAMES:
                raise ValueError(f"unknown event type {event_type!r} (known: {', '.join(LOYALTY_EVENT_NAMES)})")
        return value

    @field_validator("names")
    @classmethod
    def _known_names(cls, value: dict[str, str]) -> dict[str, str]:
        for event_type, name in value.items():
            if event_type not in LOYALTY_EVENT_NAMES:
                raise ValueError(f"unknown event type {event_type!r}")
            problem = cls.name_problem(name.strip())
            if problem:
                raise ValueError(f"{event_type}: {name!r} {problem}")
        return {k: v.strip() for k, v in value.items()}

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why ``name`` is not a valid event name for this provider (``None``: fine)."""
        if not name:
            return "is empty"
        if len(name) > 255:
            return "is longer than 255 characters"
        return None

    def render_default(self, slug: str) -> str:
        """How a default slug is written for this provider (snake_case unless overridden)."""
        return slug

    def event_name(self, event_type: str) -> str:
        """The ESP event name of a canonical type: the tenant's mapping, else the default."""
        if event_type in self.names:
            return self.names[event_type]
        slug = LOYALTY_EVENT_NAMES.get(event_type) or event_type.removeprefix("customer.").replace(".", "_")
        return self.render_default(slug)

    def skip_reason(self, event_type: str) -> str | None:
        """Why this ESP does not want ``event_type`` (``None``: relay it)."""
        if self.events is not None and event_type not in self.events:
            return f"event type {event_type} is not in this tenant's esp.events"
        return None

    def account_secret(self) -> str:
        """The credential that identifies the ESP account (its hash names the rate budget)."""
        raise NotImplementedError


class KlaviyoConfig(EspBase):
    """Klaviyo Events API (``POST /api/events``)."""

    provider: Literal["klaviyo"]
    api_key: SecretStr = Field(description="private API key (pk_…)")
    base_url: str = "https://a.klaviyo.com"
    revision: str = Field(default=KLAVIYO_REVISION, pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")

    def render_default(self, slug: str) -> str:
        """Klaviyo metric names are display text: ``Loyalty Tier Upgraded``."""
        return slug.replace("_", " ").title()

    def account_secret(self) -> str:
        """The private key (one key per account)."""
        return self.api_key.get_secret_value()


class MailchimpConfig(EspBase):
    """Mailchimp Marketing API member events."""

    provider: Literal["mailchimp"]
    api_key: SecretStr = Field(description="API key ending in -<dc>, e.g. …-us6")
    list_id: str = Field(min_length=1, description="audience id")
    base_url: str | None = Field(default=None, description="default https://<dc>.api.mailchimp.com/3.0")
    upsert_member: bool = True
    status_if_new: Literal["transactional", "pending", "subscribed"] = "transactional"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Mailchimp: 2 to 30 characters, letters, digits, ``_`` and ``-``."""
        if not MAILCHIMP_NAME.match(name):
            return "must be 2-30 letters, digits, '_' or '-' (Mailchimp)"
        return None

    @property
    def api_base(self) -> str:
        """``base_url`` or the datacenter URL from the key's ``-<dc>`` suffix."""
        if self.base_url:
            return self.base_url
        key = self.api_key.get_secret_value()
        dc = key.rsplit("-", 1)[-1] if "-" in key else ""
        if not re.fullmatch(r"[a-z]+[0-9]+", dc):
            raise ValueError("mailchimp api_key has no -<dc> suffix; set base_url")
        return f"https://{dc}.api.mailchimp.com/3.0"

    def account_secret(self) -> str:
        """The API key."""
        return self.api_key.get_secret_value()


class BrazeConfig(EspBase):
    """Braze ``/users/track``."""

    provider: Literal["braze"]
    api_key: SecretStr = Field(description="REST API key with users.track")
    base_url: str = Field(description="the instance's REST endpoint, e.g. https://rest.iad-01.braze.com")

    def account_secret(self) -> str:
        """Workspace = instance + key."""
        return f"{self.base_url}|{self.api_key.get_secret_value()}"


class CustomerIoConfig(EspBase):
    """Customer.io Track API (v1)."""

    provider: Literal["customerio"]
    site_id: str = Field(min_length=1)
    api_key: SecretStr
    base_url: str = Field(default="https://track.customer.io", description="EU: https://track-eu.customer.io")
    identify: bool = True

    def account_secret(self) -> str:
        """The workspace's site id."""
        return self.site_id


class ActiveCampaignConfig(EspBase):
    """ActiveCampaign Event Tracking (``POST https://trackcmp.net/event``)."""

    provider: Literal["activecampaign"]
    account_id: str = Field(min_length=1, description="actid")
    event_key: SecretStr = Field(description="Event Tracking key")
    base_url: str = "https://trackcmp.net"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """ActiveCampaign: at most 32 characters."""
        if not name:
            return "is empty"
        if len(name) > 32:
            return "is longer than 32 characters (ActiveCampaign)"
        return None

    def account_secret(self) -> str:
        """The account id (the 5 req/s limit is per account)."""
        return self.account_id


class IntercomConfig(EspBase):
    """Intercom data events (``POST /events``)."""

    provider: Literal["intercom"]
    access_token: SecretStr
    base_url: str = Field(default="https://api.intercom.io", description="EU: https://api.eu.intercom.io")
    version: str = "2.14"

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Intercom rewrites ``.`` and ``$``; refuse them so the name stays what was configured."""
        if not name:
            return "is empty"
        if "." in name or "$" in name:
            return "must not contain '.' or '$' (Intercom rewrites them)"
        return None

    def render_default(self, slug: str) -> str:
        """Intercom suggests past-tense verb-noun in kebab-case: ``loyalty-tier-upgraded``."""
        return slug.replace("_", "-")

    def account_secret(self) -> str:
        """The access token (limits are per app and workspace)."""
        return self.access_token.get_secret_value()


def relay_skip_reason(esp: EspBase | None, event_type: str) -> str | None:
    """Why a loyalty event of ``event_type`` is not relayed for this tenant (``None``: relay it)."""
    if esp is None:
        return "no ESP is configured for this tenant"
    return esp.skip_reason(event_type)
