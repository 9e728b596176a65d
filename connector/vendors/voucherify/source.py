"""The ``voucherify`` source: ``customer.*`` webhooks from Voucherify, relayed to the tenant's ESP.

Docs: https://docs.voucherify.io/docs/webhooks (v2024-01-01; migration guide for v2018-08-01) and
voucherifyio/voucherify-openapi ``docs/custom-webhook-sites/introduction-to-webhook.md``.

Signing: header ``x-voucherify-signature`` = hex HMAC-SHA256 with the webhook secret from Project
settings → Webhooks (tenant key ``secrets``, several during rotation). The vendor's sample
(``verifySignature`` of the Node SDK) hashes ``JSON.stringify(parsedBody)``, i.e. compact JSON, so
the raw bytes are checked first and the compact re-serialisation second (see
:func:`compact_json`). No timestamp is signed, so there is no replay window; replays are caught by
the event-id dedup and the relay ledger.

Delivery id: the **event** id — ``event.id`` (``evcus_…``) in v2024-01-01, the top-level ``id``
in v2018-08-01. The v2024 top-level ``id`` is the *sendout* (``whs_…``) and changes on a resend,
so it is never the dedup key. Voucherify gives up after 10 s; this source answers from the web
tier without I/O.

Only the ``customer.*`` types of :data:`connector.activities.LOYALTY_EVENT_NAMES` are relayed;
other types (vouchers, campaigns, redemptions without a customer…) are answered ``ignored``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from connector.activities import LOYALTY_EVENT_NAMES, LoyaltyEvent, normalise_email
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import (
    Envelope,
    InboundRequest,
    RelayOnlySource,
    SourceConfig,
    TranslationContext,
    decode_hex,
    json_object,
    require_any_hmac,
    valid_event,
)
from connector.sources.setup import SetupGuide

SIGNATURE_HEADER = "x-voucherify-signature"


class VoucherifyConfig(SourceConfig):
    """``[tenants.<t>.sources.voucherify]``."""

    credentials = ("secrets",)

    secrets: list[SecretStr] = Field(min_length=1)


def _js_number(text: str) -> int | float:
    """Parse a JSON number the way JavaScript keeps it (``1.0`` is the integer ``1``)."""
    value = float(text)
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def compact_json(raw: bytes) -> bytes:
    """``JSON.stringify(JSON.parse(raw))`` as closely as Python can: no whitespace, non-ASCII
    kept, key order kept, integral floats written as integers. Float formatting of non-integral
    numbers can still differ from JavaScript in rare cases (exponents)."""
    parsed = json.loads(raw, parse_float=_js_number)
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def envelope_version(body: dict[str, Any]) -> str:
    """``v2024-01-01`` when the body carries an ``event`` object, else ``v2018-08-01``."""
    if isinstance(body.get("event"), dict) and body.get("object") != "event":
        return "v2024-01-01"
    return "v2018-08-01"


def event_id(body: dict[str, Any]) -> str:
    """The event id (not the sendout id) of either envelope version."""
    if envelope_version(body) == "v2024-01-01":
        value = body["event"].get("id")
    else:
        value = body.get("id")
    if not isinstance(value, str) or not value:
        raise PayloadError("webhook carries no event id")
    return value


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _name(value: Any) -> str | None:
    name = _obj(value).get("name")
    return name if isinstance(name, str) and name else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def translate(body: dict[str, Any], tenant: str) -> LoyaltyEvent:
    """One canonical :class:`LoyaltyEvent` from either envelope version (pure).

    Raises:
        UnsupportedEvent: not a relayed type, or the customer has no email address.
        PayloadError: no event id or time.
    """
    event_type = body.get("type")
    if not isinstance(event_type, str) or event_type not in LOYALTY_EVENT_NAMES:
        raise UnsupportedEvent(f"event type {str(event_type)[:80]} is not relayed", counter="unsupported_type")
    data = _obj(body.get("data"))
    v2024 = envelope_version(body) == "v2024-01-01"
    meta = _obj(body.get("event"))
    customer = _obj(data.get("customer"))
    if not customer and _obj(data.get("object")).get("object") == "customer":
        customer = _obj(data.get("object"))  # v2018 customer.created / updated
    if not customer:
        customer = _obj(data.get("holder"))
    email = normalise_email(customer.get("email") if isinstance(customer.get("email"), str) else None)
    if email is None:
        raise UnsupportedEvent("the customer has no email address", counter="no_email")
    occurred = _time(meta.get("created_at")) if v2024 else None
    occurred = occurred or _time(body.get("created_at"))
    if occurred is None:
        raise PayloadError("webhook carries no usable created_at")
    name = customer.get("name") if isinstance(customer.get("name"), str) else None
    first, _, last = (name or "").strip().partition(" ")
    voucher = _obj(data.get("voucher"))
    card = _obj(voucher.get("loyalty_card"))
    balance = _obj(data.get("balance"))
    tier_to = data.get("loyalty_tier_to") or data.get("loyalty_tier")
    reward = _obj(data.get("reward"))
    properties: dict[str, Any] = {"webhook_version": "v2024-01-01" if v2024 else "v2018-08-01"}
    for key, value in (
        ("campaign", _name(data.get("campaign"))),
        ("voucher_code", voucher.get("code")),
        ("segment", _name(data.get("segment"))),
        ("order_id", _obj(data.get("order")).get("id")),
    ):
        if isinstance(value, str) and value:
            properties[key] = value
    with valid_event():
        return LoyaltyEvent(
            type=event_type,
            event_id=event_id(body),
            tenant=tenant,
            source="voucherify",
            occurred_at=occurred,
            email=email,
            customer_id=customer.get("id") if isinstance(customer.get("id"), str) else None,
            source_id=customer.get("source_id") if isinstance(customer.get("source_id"), str) else None,
            first_name=first or None,
            last_name=last.strip() or None,
            phone=customer.get("phone") if isinstance(customer.get("phone"), str) else None,
            tier=_name(tier_to),
            previous_tier=_name(data.get("loyalty_tier_from")),
            points=_int(balance.get("points")),
            balance=_int(balance.get("balance")) if balance.get("balance") is not None else _int(card.get("balance")),
            reward=_name(reward),
            reward_type=reward.get("type") if isinstance(reward.get("type"), str) else None,
            properties=properties,
        )


class VoucherifySource(RelayOnlySource):
    """The ``voucherify`` source adapter (produces loyalty events, not activities)."""

    name = "voucherify"
    config_model = VoucherifyConfig
    setup = SetupGuide(
        title="Voucherify",
        group="loyalty",
        console="the Voucherify dashboard: Project settings > Webhooks",
        steps=(
            "In Voucherify open Project settings > Webhooks and add a webhook with the webhook URL above.",
            "Tick the customer events to relay to your email provider.",
            "Copy the webhook secret into Secrets here.",
        ),
        docs="https://docs.voucherify.io/docs/webhooks",
        unverified="The labels of Voucherify's webhook form.",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: VoucherifyConfig) -> None:
        """Hex HMAC-SHA256 over the raw bytes, else over the compact re-serialisation."""
        given = decode_hex(request.header(SIGNATURE_HEADER))
        try:
            require_any_hmac(request.raw, given, config.secrets)
            return
        except SignatureError as first:
            try:
                compact = compact_json(request.raw)
            except (ValueError, RecursionError):
                raise first from None
            if compact == request.raw:
                raise
            require_any_hmac(compact, given, config.secrets)

    def identify(self, request: InboundRequest, config: VoucherifyConfig, tenant: str) -> Envelope:
        """``type`` from the body; the event id (not the sendout id) as the delivery id."""
        body = json_object(request)
        event_type = body.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise PayloadError('body has no "type"')
        if event_type not in LOYALTY_EVENT_NAMES:
            raise UnsupportedEvent(f"event type {event_type} is not relayed", counter="unsupported_type")
        translate(body, tenant)  # pure and cheap: a bad body is a 400 and no email is "ignored", now
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=event_type,
            delivery_id=event_id(body),
            received_at=request.received_at,
        )

    def loyalty_event(self, body: dict[str, Any], envelope: Envelope, context: TranslationContext) -> LoyaltyEvent:
        """The one canonical event of a stored webhook body (pure)."""
        return translate(body, context.tenant)


SOURCE = VoucherifySource()
