"""HotspotSystem (also white-labelled as BEAMhotspot) webhooks → "Connected to wifi".

Vendor docs: https://www.hotspotsystem.com/apidocs/webhooks and
https://beamonboard.com/knowledge-base/manuals-guides/beam-hotspot/webhook-integration/

* One webhook per (location, event type), each with its own API key. Events:
  ``customer.create``, ``subscriber.create``, ``transaction.{paid,voucher,mac,social}.create``.
  The body does not name the event; every body with a guest email is treated as a login.
* Signing: base64 HMAC-SHA256 of the raw body with the webhook's API key (tenant key
  ``secrets``: every webhook's key; several accepted). The docs name the header
  ``HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256`` and read it in PHP with ``getallheaders()``, i.e. the header
  is sent with **underscores**. Accepted spellings: ``HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256``,
  ``X_HOTSPOTSYSTEM_HMAC_SHA256`` and the dash forms ``X-HotspotSystem-Hmac-Sha256``.
  gunicorn >= 22 and nginx drop underscore headers by default: ``config/gunicorn.conf.py`` lets
  exactly these two names through from the trusted proxy (``forwarder_headers``), and nginx needs
  ``underscores_in_headers on;`` (see the README).
* Delivery id: none is sent; HotspotSystem batches every minute and retries at least 20 times.
  The login's business key is the delivery id, so retries and repeated logins inside the window
  are answered ``duplicate``.
* ``UserName`` is usually the device MAC (``BE-72-B3-40-F9-BE``): never used as an identity.
  Body key names other than ``id``, ``UserName``, ``name``, ``email`` are inferred
  (:data:`FIELDS`). ``name`` is one free-text field and is not split into first/last
  names. The venue is the body's location id when present, else the source's ``venue``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from connector.errors import PayloadError
from connector.sources.base import (
    InboundRequest,
    decode_base64,
    require_any_hmac,
)
from connector.sources.setup import SetupGuide
from connector.sources.wifi import (
    LoginSource,
    WifiConfig,
    WifiLogin,
    login_from_fields,
    resolve_venue,
)

# Header spellings, lower-cased as the web tier presents them (werkzeug turns "_" into "-").
SIGNATURE_HEADERS = ("http-x-hotspotsystem-hmac-sha256", "x-hotspotsystem-hmac-sha256")
# Candidate JSON paths per field [verified: id, UserName, name, email; the rest inferred].
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "customer.email"),
    "venue_id": ("location_id", "locationId", "location.id"),
    "venue_name": ("location_name", "location.name"),
    "login_at": ("created_at", "date", "registered", "timestamp", "login_time"),
    "consent": ("newsletter", "subscribed", "marketing_consent"),
}


class HotspotSystemConfig(WifiConfig):
    """``[tenants.<t>.sources.hotspotsystem]``: ``secrets`` (API keys) plus the shared Wi-Fi settings."""

    credentials = ("secrets",)

    secrets: list[SecretStr] = Field(min_length=1)


def signature_header(request: InboundRequest) -> str | None:
    """The signature from whichever accepted header spelling arrived."""
    for name in SIGNATURE_HEADERS:
        value = request.header(name)
        if value:
            return value
    return None


def parse_login(payload: Any, received_at: str, config: WifiConfig) -> WifiLogin:
    """The login a HotspotSystem body stands for.

    Raises:
        PayloadError: not an object.
        UnsupportedEvent: no email (MAC-only customers).
    """
    if not isinstance(payload, dict):
        raise PayloadError("HotspotSystem payload is not a JSON object")
    return resolve_venue(login_from_fields("hotspotsystem", payload, FIELDS, received_at), config)


class HotspotSystemSource(LoginSource):
    """The ``hotspotsystem`` source adapter."""

    name = "hotspotsystem"
    config_model = HotspotSystemConfig
    setup = SetupGuide(
        title="HotspotSystem",
        group="wifi",
        console="the HotspotSystem Control Center: Manage Webhooks",
        steps=(
            "In the Control Center open Manage Webhooks.",
            "Select the Location, the Event type customer.create and, as Callback URL, the webhook URL "
            "above; create the webhook.",
            "Copy the new webhook's API key into Secrets here (one per line: each location's webhook has its own key).",
            "If your webhook bodies name no location, set Venue here to your location id.",
        ),
        docs="https://www.hotspotsystem.com/apidocs/webhooks",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: HotspotSystemConfig) -> None:
        """Base64 HMAC-SHA256 of the raw body under any configured API key."""
        require_any_hmac(request.raw, decode_base64(signature_header(request)), config.secrets)

    def logins(self, payload: Any, received_at: str, config: HotspotSystemConfig) -> tuple[str, list[WifiLogin]]:
        """Every body is one ``login`` (venue resolved; pure)."""
        return "login", [parse_login(payload, received_at, config)]


SOURCE = HotspotSystemSource()
