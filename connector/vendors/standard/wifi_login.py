"""The canonical ``wifi.login`` event of the ``standard`` source (any portal that signs Standard Webhooks).

Body (JSON Schema: ``schemas/wifi.login.schema.json``, generated from :class:`WifiLoginWebhook`)::

    {"type": "wifi.login", "timestamp": "2026-11-25T09:12:41Z",
     "data": {"portal": "unifi", "logged_in_at": "2026-11-25T09:12:41+00:00",
              "venue": {"id": "harbour-lobby", "name": "Harbour lobby", "timezone": "Europe/London"},
              "guest": {"email": "ada@example.com", "first_name": "Ada", "marketing_consent": true}}}

It becomes one "Connected to wifi" per guest, venue and local day, keyed
``<portal>:<venue id>:<guest hash>:<local date>`` in the venue's timezone (else the tenant's).
``webhook-id`` stays the delivery id (the sender chooses it); repeated logins inside the day
produce the same business key, so the delivery job id and the ledger let the platform see one.
Guests without an email (MAC-only) may be sent without ``guest.email``: they are ignored and
counted (``no_email``). Never send MAC addresses: the schema has no field for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connector.activities import Activity
from connector.errors import PayloadError
from connector.sources.base import Envelope, TranslationContext
from connector.sources.wifi import VenueConfig, WifiConfig, WifiLogin, guest_email, login_activity

EVENT_TYPE = "wifi.login"
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "wifi.login.schema.json"


class WifiVenue(BaseModel):
    """Where the guest logged in."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="Stable venue id (part of the business key)")
    name: str | None = Field(default=None, description="Display name of the venue")
    timezone: str | None = Field(
        default=None, description="IANA timezone of the venue (default: the tenant's timezone)"
    )


class WifiGuest(BaseModel):
    """Who logged in. Omit ``email`` for guests without one: the login is then ignored and counted."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, description="The guest's email address (the identity)")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    marketing_consent: bool | None = Field(
        default=None, description="Only when the portal recorded an explicit opt-in (true) or opt-out (false)"
    )


class WifiLoginData(BaseModel):
    """The ``data`` of a ``wifi.login`` event."""

    model_config = ConfigDict(extra="forbid")

    portal: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="The portal's slug, first part of the business key"
    )
    logged_in_at: AwareDatetime = Field(description="Login time, ISO 8601 with a UTC offset")
    venue: WifiVenue
    guest: WifiGuest


class WifiLoginWebhook(BaseModel):
    """A whole ``wifi.login`` Standard Webhooks body."""

    model_config = ConfigDict(extra="forbid", title="wifi.login")

    type: Literal["wifi.login"]
    timestamp: str = Field(description="When the sender emitted the event (ISO 8601)")
    data: WifiLoginData


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a ``wifi.login`` body."""
    schema = WifiLoginWebhook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/loyalty-connector/schemas/wifi.login.schema.json"
    return schema


def handle_wifi_login(data: dict[str, Any], envelope: Envelope, context: TranslationContext) -> list[Activity]:
    """Pure handler of ``wifi.login`` (registered in ``standard.EVENT_HANDLERS``).

    Raises:
        PayloadError: ``data`` does not match the schema.
        UnsupportedEvent: the guest has no email.
    """
    try:
        event = WifiLoginData.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PayloadError(f"wifi.login data is invalid: {problems}") from None
    try:
        config = WifiConfig(
            timezone=context.timezone.key,
            venues={event.venue.id: VenueConfig(name=event.venue.name, timezone=event.venue.timezone)},
        )
    except ValidationError:
        raise PayloadError(f"venue.timezone {event.venue.timezone!r} is not an IANA timezone") from None
    if not 1970 <= event.logged_in_at.year <= 9998:  # as for every portal (wifi.parse_time)
        raise PayloadError(f"logged_in_at {event.logged_in_at.isoformat()} is out of range")
    login = WifiLogin(
        portal=event.portal,
        venue_id=event.venue.id,
        venue_name=event.venue.name,
        email=guest_email(event.guest.email),
        login_at=event.logged_in_at,
        first_name=event.guest.first_name,
        last_name=event.guest.last_name,
        phone=event.guest.phone,
        marketing_consent=event.guest.marketing_consent,
    )
    return [login_activity(login, config, tenant=context.tenant, source=event.portal)]


if __name__ == "__main__":  # pragma: no cover - regenerate the committed schema
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
