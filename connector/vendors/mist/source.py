"""Juniper Mist webhooks (guest authorizations, client joins) → "Connected to wifi".

Vendor docs: https://www.juniper.net/documentation/us/en/software/mist/automation-integration/
(topics "Webhook Messages" and "Webhook Topics"); API reference "Webhooks samples".

* Signing: with a secret configured on the Mist webhook, ``X-Mist-Signature-v2`` is the **hex**
  HMAC-SHA256 of the raw body (the legacy ``X-Mist-Signature`` is HMAC-SHA1 and is not accepted).
  Tenant key ``secrets`` (several during rotation).
* Body: ``{"topic": "<topic>", "events": [{…}, …]}``. Topics used (tenant key ``topics``):
  ``guest-authorizations`` (a guest passed the captive portal: ``email``, ``name``, ``site_id``,
  ``site_name``, ``authorized_time``, ``mac``…) and ``client-join`` (a client associated; no
  email is normally known, so those are counted ``no_email`` and ignored). Other topics:
  ``ignored``.
* Delivery id: Mist sends none. The set of the batch's login business keys is used, so repeated
  authorizations of the same guests inside the window are answered ``duplicate``.
* Event field names come from Mist's guest-authorization object (``authorized_time`` epoch
  seconds, ``email``, ``site_id``) [verified for the API object; inferred for the webhook event].
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import (
    InboundRequest,
    decode_hex,
    known_topics,
    require_any_hmac,
)
from connector.sources.setup import SetupGuide
from connector.sources.wifi import (
    LoginSource,
    WifiConfig,
    WifiLogin,
    dig,
    guest_email,
    login_time,
    resolve_venue,
    text,
)

TOPICS = frozenset({"guest-authorizations", "client-join"})


class MistConfig(WifiConfig):
    """``[tenants.<t>.sources.mist]``: ``secrets``, ``topics`` and the shared Wi-Fi settings."""

    credentials = ("secrets",)
    generated = ("secrets",)

    secrets: list[SecretStr] = Field(min_length=1)
    topics: list[str] = Field(default_factory=lambda: ["guest-authorizations", "client-join"])

    @field_validator("topics")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return known_topics(value, TOPICS)


def parse_logins(payload: Any, received_at: str, config: MistConfig) -> tuple[str, list[WifiLogin]]:
    """The topic and the logins with an email in a Mist batch.

    Raises:
        PayloadError: no topic / events.
        UnsupportedEvent: topic not configured, or no event with an email (``no_email``).
    """
    if not isinstance(payload, dict):
        raise PayloadError("Mist payload is not a JSON object")
    topic = text(payload.get("topic"))
    events = payload.get("events")
    if not topic or not isinstance(events, list):
        raise PayloadError('Mist payload has no "topic" / "events"')
    if topic not in config.topics:
        raise UnsupportedEvent(f"topic {topic} is not a trigger for this tenant", counter="topic_not_configured")
    logins = []
    for event in events:
        if not isinstance(event, dict):
            continue
        try:
            email = guest_email(event.get("email"), dig(event, "guest.email"))
        except UnsupportedEvent:
            continue
        logins.append(
            resolve_venue(
                WifiLogin(
                    portal="mist",
                    venue_id=text(event.get("site_id")) or "",
                    venue_name=text(event.get("site_name")),
                    email=email,
                    login_at=login_time(
                        event.get("authorized_time") or event.get("timestamp"), received_at, field_name="timestamp"
                    ),
                    attributes={"ssid": text(event.get("ssid")), "topic": topic},
                ),
                config,
            )
        )
    if not logins:
        raise UnsupportedEvent(
            f"{len(events)} {topic} event(s), none with a guest email (MAC-only clients)", counter="no_email"
        )
    return topic, logins


class MistSource(LoginSource):
    """The ``mist`` source adapter."""

    name = "mist"
    config_model = MistConfig
    setup = SetupGuide(
        title="Juniper Mist",
        group="wifi",
        console="the Juniper Mist portal: Organization > Site Configuration > (site) > Webhooks",
        steps=(
            "In the Mist portal select Organization > Site Configuration, then the site.",
            "Scroll to Webhooks and click Add Webhook: a Name, Webhook Type HTTP Post, and URL = the "
            "webhook URL above.",
            "Topics: tick guest authorizations (client join too if you like: joins without an e-mail are ignored).",
            "Advanced Settings > Secret: the secret the connector generated (shown once, when you add or "
            "rotate this source). Save.",
        ),
        docs="https://www.juniper.net/documentation/us/en/software/mist/automation-integration/topics/task/"
        "webhooks-add-portal.html",
        unverified="The portal's label for the guest-authorizations topic.",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: MistConfig) -> None:
        """Hex HMAC-SHA256 of the raw body in ``X-Mist-Signature-v2`` under any configured secret."""
        signature = request.header("x-mist-signature-v2")
        if not signature and request.header("x-mist-signature"):
            raise SignatureError("only X-Mist-Signature-v2 (HMAC-SHA256) is accepted, not the SHA1 X-Mist-Signature")
        require_any_hmac(request.raw, decode_hex(signature), config.secrets)

    def logins(self, payload: Any, received_at: str, config: MistConfig) -> tuple[str, list[WifiLogin]]:
        """Event type = topic; the logins with an email in the batch (pure)."""
        return parse_logins(payload, received_at, config)


SOURCE = MistSource()
