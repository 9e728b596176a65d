"""The ``standard`` source: any sender that signs with Standard Webhooks.

Spec: https://www.standardwebhooks.com (v1.0.0). Headers ``webhook-id`` (the delivery id, stable
across retries), ``webhook-timestamp`` (Unix seconds, ±5 minutes tolerated) and
``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; several
during rotation). Secrets are ``whsec_``-prefixed base64 (tenant key ``secrets``, several
accepted). Verification uses the ``standardwebhooks`` library (pure computation, no I/O).

The body is ``{"type": "...", "timestamp": "...", "data": {...}}``. Each canonical event type is
translated by a handler registered in :data:`EVENT_HANDLERS`; types without a handler are
answered ``ignored``. The schemas are published under ``schemas/`` and in the README.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import Field, SecretStr, field_validator
from standardwebhooks import Webhook, WebhookVerificationError

from connector.activities import Activity, LoyaltyEvent
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import Envelope, InboundRequest, SourceAdapter, SourceConfig, TranslationContext
from connector.sources.setup import SetupGuide
from connector.vendors.standard import stay_events
from connector.vendors.standard.loyalty_events import LOYALTY_EVENT_HANDLERS, check
from connector.vendors.standard.wifi_login import handle_wifi_login

WHSEC_PREFIX = "whsec_"

# event type -> pure handler(payload data, envelope, context) -> activities
EventHandler = Callable[[dict[str, Any], Envelope, TranslationContext], list[Activity]]
EVENT_HANDLERS: dict[str, EventHandler] = {}
EVENT_HANDLERS["wifi.login"] = handle_wifi_login
EVENT_HANDLERS.update(stay_events.STAY_HANDLERS)  # stay.* (hotel PMS)
# customer.* loyalty events (relayed to the ESP, not delivered as activities) are handled by
# LOYALTY_EVENT_HANDLERS from glu_events.py.

Handler = TypeVar("Handler")


def _handler(handlers: Mapping[str, Handler], event_type: str) -> Handler:
    """The handler registered for ``event_type``; none is an unsupported event."""
    handler = handlers.get(event_type)
    if handler is None:
        raise UnsupportedEvent(f"event type {event_type} is not supported", counter="unsupported_type")
    return handler


def _data(payload: Any) -> dict[str, Any]:
    """The ``data`` object of a stored body."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise PayloadError('body has no "data" object')
    return data


def _check_secret(value: str, index: int) -> None:
    """``whsec_`` (optional) then strict base64 of a non-empty key; the error never shows the secret."""
    encoded = value.removeprefix(WHSEC_PREFIX)
    try:
        # The library pads unpadded base64 itself, so padding may be left off here too.
        key = binascii.a2b_base64(encoded + "=" * (-len(encoded) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError(
            f"secret {index} is not a Standard Webhooks secret: expected {WHSEC_PREFIX} followed by the "
            "base64 of the key, as the sender shows it"
        )


class StandardConfig(SourceConfig):
    """``[tenants.<t>.sources.standard]``."""

    credentials = ("secrets",)

    secrets: list[SecretStr] = Field(min_length=1)
    events: list[str] | None = None  # accept only these types (default: every supported type)

    @field_validator("secrets")
    @classmethod
    def _secrets_decode(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        """A malformed secret fails at load, not as a 401 on every webhook (the library decodes
        base64 leniently, so a typo would otherwise just make a different key)."""
        for index, secret in enumerate(secrets):
            value = secret.get_secret_value()
            if value:  # an empty one (an unset rotation slot) is skipped at verification
                _check_secret(value, index)
        return secrets


class StandardSource(SourceAdapter):
    """The ``standard`` source adapter."""

    name = "standard"
    config_model = StandardConfig
    setup = SetupGuide(
        title="Standard Webhooks",
        group="events",
        console="the sending system's webhook settings",
        steps=(
            "In the sender's webhook settings, add an endpoint with the webhook URL above.",
            "Copy the endpoint's signing secret (it starts with whsec_) into Secrets here.",
            "Send the event types the connector knows (stay.*, wifi.login, customer.*: see the schemas); "
            "others are answered ignored.",
        ),
        docs="https://www.standardwebhooks.com",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: StandardConfig) -> None:
        """Any configured secret verifying any ``v1`` signature, inside the ±5 min window."""
        headers = {
            k: request.headers[k]
            for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
            if k in request.headers
        }
        if len(headers) < 3:
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
        last: str = "no secret configured for this source"
        for secret in config.secrets:
            value = secret.get_secret_value()
            if not value:
                continue
            try:
                Webhook(value).verify(request.raw, headers, json_parse=False)
                return
            except WebhookVerificationError as exc:
                last = str(exc)
            except Exception as exc:
                last = f"secret unusable: {type(exc).__name__}"
        raise SignatureError(last)

    def identify(self, request: InboundRequest, config: StandardConfig, tenant: str) -> Envelope:
        """``type`` from the body, ``webhook-id`` as the delivery id."""
        body = request.json()
        event_type = body.get("type") if isinstance(body, dict) else None
        if not isinstance(event_type, str) or not event_type:
            raise PayloadError('body has no "type"')
        if not isinstance(body.get("data"), dict):
            raise PayloadError('body has no "data" object')
        if event_type not in EVENT_HANDLERS and event_type not in LOYALTY_EVENT_HANDLERS:
            raise UnsupportedEvent(f"event type {event_type} is not supported", counter="unsupported_type")
        if config.events is not None and event_type not in config.events:
            raise UnsupportedEvent(
                f"event type {event_type} is not enabled for this tenant", counter="type_not_configured"
            )
        if self.is_loyalty_event(event_type):
            check(body["data"])  # a canonical loyalty body is validated now: 400 or ignored, no job
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=event_type,
            delivery_id=request.headers["webhook-id"],
            received_at=request.received_at,
        )

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: StandardConfig
    ) -> list[Activity]:
        """Dispatch to the handler of the event type (pure)."""
        return _handler(EVENT_HANDLERS, envelope.event_type)(_data(payload), envelope, context)

    def is_loyalty_event(self, event_type: str) -> bool:
        """Loyalty event types are relayed to the ESP instead of delivered as activities."""
        return event_type in LOYALTY_EVENT_HANDLERS and event_type not in EVENT_HANDLERS

    def to_loyalty_events(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: StandardConfig
    ) -> list[LoyaltyEvent]:
        """Dispatch a loyalty event type to its handler (pure)."""
        return _handler(LOYALTY_EVENT_HANDLERS, envelope.event_type)(_data(payload), envelope, context)


SOURCE = StandardSource()
