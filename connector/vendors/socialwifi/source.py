"""Social WiFi user webhooks: ``Upsert`` → "Connected to wifi", ``Delete`` → erasure.

Vendor docs: https://developer.socialwifi.com/webhooks/introduction/

* Authentication: every request carries the static ``Authorization`` header value set in the
  Social WiFi panel (a token or basic credentials; tenant key ``authorization``), compared in
  constant time. There is no signature and no replay protection.
* Events: ``Upsert`` (a user was created or updated: Social WiFi upserts its user on each portal
  login) and ``Delete`` (a user was deleted, usually a GDPR request).
* Social WiFi closes the connection after **2 s** and ignores answers and errors (no retries), so
  the web tier only verifies, dedups and enqueues.
* Delivery id: none is sent. ``Upsert`` uses the login's business key (portal, venue, guest hash,
  first local date of the window): repeated upserts inside the window are answered ``duplicate``.
  ``Delete`` uses a digest of the body.
* ``Delete`` is an erasure request: the worker enqueues ``erase_guest``, which forgets what the
  connector holds for that guest (cached contact ids, stored job payloads naming the guest) and
  records the erasure under the guest's hash (no PII).
* The JSON key names of the user object could not be verified (the public page lists the event
  types only). :data:`FIELDS` holds the candidate paths per field; the event type is read from
  ``type`` / ``event`` / ``event_type`` / ``action``.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from connector.activities import Activity, hash_identifier
from connector.errors import ErasureRequested, PayloadError, UnsupportedEvent
from connector.sources.base import Envelope, InboundRequest, SourceAdapter, TranslationContext, require_token
from connector.sources.setup import SetupGuide
from connector.sources.wifi import (
    WifiConfig,
    WifiLogin,
    body_delivery_id,
    dig,
    guest_email,
    login_activity,
    login_delivery_id,
    login_from_fields,
    resolve_venue,
    text,
)

# Candidate JSON paths per field [inferred: Social WiFi documents the event types, not the body].
FIELDS: dict[str, tuple[str, ...]] = {
    "type": ("type", "event", "event_type", "action"),
    "email": ("data.email", "user.email", "email"),
    "first_name": ("data.first_name", "user.first_name", "first_name"),
    "last_name": ("data.last_name", "user.last_name", "last_name"),
    "phone": ("data.phone", "user.phone", "phone"),
    "consent": (
        "data.marketing_consent",
        "data.newsletter",
        "data.consents.marketing",
        "user.marketing_consent",
        "marketing_consent",
    ),
    "venue_id": ("data.venue_id", "data.venue.id", "venue_id", "venue.id", "data.last_venue_id"),
    "venue_name": ("data.venue_name", "data.venue.name", "venue_name", "venue.name"),
    "login_at": ("data.last_visit", "data.last_login", "data.updated_at", "timestamp", "created_at"),
}
EVENTS = {"upsert": "Upsert", "delete": "Delete"}


class SocialWifiConfig(WifiConfig):
    """``[tenants.<t>.sources.socialwifi]``: ``authorization`` plus the shared Wi-Fi settings."""

    credentials = ("authorization",)
    generated = ("authorization",)

    authorization: SecretStr


def event_type(payload: Any) -> str:
    """``Upsert`` or ``Delete``.

    Raises:
        PayloadError: not an object or no event type.
        UnsupportedEvent: another event type.
    """
    if not isinstance(payload, dict):
        raise PayloadError("Social WiFi payload is not a JSON object")
    raw = text(dig(payload, *FIELDS["type"]))
    if raw is None:
        raise PayloadError("Social WiFi payload names no event type")
    known = EVENTS.get(raw.lower())
    if known is None:
        raise UnsupportedEvent(f"Social WiFi event {raw} is not supported", counter="unsupported_type")
    return known


def parse_login(payload: Any, received_at: str, config: WifiConfig) -> WifiLogin:
    """The login an ``Upsert`` stands for (venue resolved against the config)."""
    return resolve_venue(login_from_fields("socialwifi", payload, FIELDS, received_at), config)


def erasure(payload: Any) -> ErasureRequested:
    """The erasure a ``Delete`` asks for (identifiers hashed)."""
    email = guest_email(dig(payload, *FIELDS["email"]))
    return ErasureRequested("Social WiFi deleted the user: erasing", subject_hashes=(hash_identifier(email),))


class SocialWifiSource(SourceAdapter):
    """The ``socialwifi`` source adapter."""

    name = "socialwifi"
    config_model = SocialWifiConfig
    setup = SetupGuide(
        title="Social WiFi",
        group="wifi",
        console="the Social WiFi client panel: webhooks",
        steps=(
            "In the Social WiFi client panel, open the webhook settings.",
            "URL: the webhook URL above.",
            "Authorization header value: the value the connector generated (shown once, when you add "
            "or rotate this source).",
            "Save. Upsert (a guest logged in) and Delete (a guest asked to be forgotten) are both handled.",
        ),
        docs="https://developer.socialwifi.com/webhooks/introduction/",
        unverified="The menu path to the client panel's webhook settings (the docs show the form only).",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: SocialWifiConfig) -> None:
        """The static ``Authorization`` header value, in constant time."""
        require_token(request.header("authorization"), config.authorization)

    def identify(self, request: InboundRequest, config: SocialWifiConfig, tenant: str) -> Envelope:
        """``Upsert`` (delivery id: business key) or ``Delete`` (delivery id: body digest)."""
        received_at = request.received_at
        payload = request.json()
        kind = event_type(payload)
        if kind == "Delete":
            erasure(payload)  # a Delete without an email cannot be acted on: ignored here
            delivery_id = body_delivery_id(request.raw)
        else:
            delivery_id = login_delivery_id(parse_login(payload, received_at, config), config)
        return Envelope(
            source=self.name, tenant=tenant, event_type=kind, delivery_id=delivery_id, received_at=received_at
        )

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: SocialWifiConfig
    ) -> list[Activity]:
        """``Upsert`` → one "Connected to wifi"; ``Delete`` raises :class:`ErasureRequested` (pure)."""
        if event_type(payload) == "Delete":
            raise erasure(payload)
        return [login_activity(parse_login(payload, envelope.received_at, config), config, tenant=context.tenant)]


SOURCE = SocialWifiSource()
