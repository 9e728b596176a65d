"""``[tenants.<t>.esp]``: what every email provider's table shares (each provider's own model is
``connector/vendors/<provider>/config.py``, found through :mod:`connector.esps.registry`).

Every table has ``provider``, the provider's credentials, ``base_url`` (overridable everywhere:
sandbox, tests, regional clusters), an optional ``events`` filter (canonical ``customer.*`` types;
others are answered ``ignored``), an optional ``names`` mapping (canonical type → ESP event name,
checked against the provider's name rules) and an optional ``rate_limit`` (calls per second for the
whole ESP account, shared by every worker). Default event names are
:data:`connector.activities.LOYALTY_EVENT_NAMES`, rendered per provider (:meth:`EspBase.event_name`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.activities import LOYALTY_EVENT_NAMES
from connector.sources.base import http_base_url


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


def relay_skip_reason(esp: EspBase | None, event_type: str) -> str | None:
    """Why a loyalty event of ``event_type`` is not relayed for this tenant (``None``: relay it)."""
    if esp is None:
        return "no ESP is configured for this tenant"
    return esp.skip_reason(event_type)
