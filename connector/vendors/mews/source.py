"""Mews General Webhooks → Booking / Checked in / Checked out.

Vendor docs: https://mews-systems.gitbook.io/connector-api/events/wh-general (General Webhooks),
``events/wh-faq``, ``operations/reservations`` (2023-06-06).

* Signing: none. Mews appends a shared secret token to the webhook URL agreed with the partner.
  Mews allows one General Webhook URL per integration client, not per property (``events/wh-faq``,
  "Can I set up multiple Webhooks?"), so a connector serving several properties uses its one
  shared URL ``/webhooks/_mews/<CONNECTOR_MEWS_WEBHOOK_TOKEN>`` (:mod:`connector.web.webhooks`),
  which routes each message by its ``EnterpriseId`` to the tenant with that ``enterprise_id``.
  A single-property set-up may keep its own URL ``/webhooks/<tenant>/mews/<token>`` (tenant key
  ``token``). Tokens are compared in constant time. When ``enterprise_id`` is configured, messages
  of any other enterprise are rejected too.
* Delivery id: Mews sends none, and a later change to the same reservation produces a message
  with exactly the same bytes (ids only), so transport dedup cannot tell a retry from news.
  Every message therefore gets a fresh id; repeats are harmless because the worker fetches the
  current reservation and the stay state emits each transition once.
* Body: ``{EnterpriseId, IntegrationId, Events: [{Discriminator, Value: {Id}}]}``, many events
  per message, ids only. ``ServiceOrderUpdated`` ids are reservations: the worker fetches each
  once per message (reservations, their customers, room categories, order items) and derives the
  activities from the reservation ``State``: ``Confirmed`` (booked) → ``Started`` (checked in) →
  ``Processed`` (checked out); ``Canceled`` and the other states are booking status updates.
  Customer / resource / message events are ignored: guests are read through their reservations.
* Must answer within 5 s: the web tier only checks the token and enqueues.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from pydantic import SecretStr, model_validator

from connector.activities import Activity, BookingStatus
from connector.errors import PayloadError, UnsupportedEvent
from connector.sources.base import (
    Envelope,
    HttpBaseUrl,
    InboundRequest,
    SourceAdapter,
    TranslationContext,
    as_list,
    as_object,
    require_body_value,
    require_token,
    valid_event,
)
from connector.sources.setup import SetupGuide
from connector.sources.stay import (
    PmsConfig,
    StaySnapshot,
    Translation,
    guest,
    implied_activities,
    local,
    parse_instant,
    parse_optional_instant,
    stay_total,
)

RESERVATION_EVENTS = frozenset({"ServiceOrderUpdated"})
STATES: dict[str, BookingStatus] = {
    "Inquired": "Inquired",
    "Requested": "Requested",
    "Optional": "Optional",
    "Confirmed": "Confirmed",
    "Started": "Started",
    "Processed": "Processed",
    "Canceled": "Canceled",
}


class MewsConfig(PmsConfig):
    """``[tenants.<t>.sources.mews]``."""

    credentials = ("token",)
    generated = ("token",)
    path_credential = "token"

    token: SecretStr | None = None  # this tenant's own URL; None: reached through the shared URL only
    api_url: HttpBaseUrl = "https://api.mews.com"
    client_token: SecretStr
    access_token: SecretStr
    client: str = "loyalty-connector 1.0"
    enterprise_id: str | None = None  # routes the shared URL's messages here; rejects other enterprises
    language: str = "en-US"

    @model_validator(mode="after")
    def _reachable(self) -> MewsConfig:
        if self.token is None and not self.enterprise_id:
            raise ValueError(
                "set token (this tenant's own webhook URL) or enterprise_id (the shared Mews URL routes by it)"
            )
        return self


def _message(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("Events"), list):
        raise PayloadError("body is not a Mews General Webhook message (no Events)")
    return raw


def reservation_ids(message: dict[str, Any]) -> list[str]:
    """Ids of the reservation (service order) events, each once, in order."""
    ids: list[str] = []
    for event in message["Events"]:
        discriminator = event.get("Discriminator") if isinstance(event, dict) else None
        if not isinstance(discriminator, str) or discriminator not in RESERVATION_EVENTS:
            continue
        value = event.get("Value")
        ident = value.get("Id") if isinstance(value, dict) else None
        if isinstance(ident, str) and ident and ident not in ids:
            ids.append(ident)
    return ids


class MewsSource(SourceAdapter):
    """The ``mews`` source adapter (thin events; see :mod:`connector.vendors.mews.pms`).

    ``repeats_are_duplicates`` is false: Mews sends no delivery id and a later change to the same
    reservation repeats the very same thin body (ids only), so an identical body is not a retry;
    each gets a fresh id, and the repeat makes no second activity because the worker reads the
    current reservation and the stay state emits each transition once.
    """

    name = "mews"
    config_model = MewsConfig
    setup = SetupGuide(
        title="Mews",
        group="pms",
        console="Mews Operations, and Mews Partner Success (partnersuccess@mews.com)",
        steps=(
            "In Mews Operations, connect this integration for your property and note the Access Token "
            "Mews issues for it and your Enterprise ID.",
            "Enter the Client Token your operator gave you, the Access Token and the Enterprise ID here.",
            "If your operator runs the connector's shared Mews URL, the Enterprise ID is all Mews needs: "
            "messages are routed by it, nothing else to register.",
            "Otherwise email partnersuccess@mews.com the webhook URL above and ask for General Webhooks "
            "(reservation events, ServiceOrderUpdated) to be sent to it. The token at the end of the URL "
            "is the shared secret Mews asks for: share it with Mews only.",
        ),
        docs="https://mews-systems.gitbook.io/connector-api/events/wh-faq",
        unverified="Where Mews Operations shows the Enterprise ID and the integration's Access Token.",
    )
    content_types = ("application/json",)
    repeats_are_duplicates = False

    def verify(self, request: InboundRequest, config: MewsConfig) -> None:
        """The URL token must be this tenant's (and the enterprise, when one is configured)."""
        require_token(request.path_token, config.token)
        self.verify_enterprise(request, config)

    def verify_enterprise(self, request: InboundRequest, config: MewsConfig) -> None:
        """The message must be of the configured enterprise (the shared URL's check once its token,
        which is not this tenant's, has been compared)."""
        require_body_value(
            request,
            config.enterprise_id,
            lambda body: body.get("EnterpriseId"),
            "message belongs to another enterprise",
        )

    def identify(self, request: InboundRequest, config: MewsConfig, tenant: str) -> Envelope:
        """One envelope per message; messages without reservation events are ignored."""
        message = _message(request.json())
        if not reservation_ids(message):
            raise UnsupportedEvent("no reservation events in this message", counter="no_reservation_events")
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type="general",
            delivery_id=uuid.uuid4().hex,
            received_at=request.received_at,
        )

    def references(self, envelope: Envelope, payload: Any, config: MewsConfig) -> list[str]:
        """The reservation ids to fetch (pure)."""
        return reservation_ids(_message(payload))

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: MewsConfig
    ) -> list[Activity]:
        """``{"message", "fetched"}`` → the implied activities of every reservation (pure)."""
        message = _message(payload.get("message") if isinstance(payload, dict) else None)
        fetched = as_object(payload.get("fetched"), "fetched")
        return translate(message, fetched, context, config)


def _by_id(items: Any) -> dict[str, dict[str, Any]]:
    listed = items if isinstance(items, list) else []
    return {str(i["Id"]): i for i in listed if isinstance(i, dict) and isinstance(i.get("Id"), str) and i["Id"]}


def _total(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum of the gross amounts of a reservation's order items (canceled items left out), as
    the snapshot's money fields (:func:`stay_total`)."""
    totals: dict[str, Decimal] = {}
    for item in items:
        if item.get("AccountingState") == "Canceled":
            continue
        amount = as_object(item.get("Amount"), "order item Amount")
        currency, gross = amount.get("Currency"), amount.get("GrossValue")
        if not isinstance(currency, str) or gross is None or isinstance(gross, float | bool):
            raise PayloadError("order item amount is not a decimal with a currency")
        try:
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(gross))
        except InvalidOperation as exc:
            raise PayloadError(f"order item amount {gross!r} is not a decimal") from exc
    if len(totals) != 1:
        return {}  # none, or several currencies: leave the total out rather than guess
    currency, value = next(iter(totals.items()))
    return stay_total(value, currency)


def _guests(reservation: dict[str, Any]) -> int | None:
    counts = reservation.get("PersonCounts")
    if isinstance(counts, list) and counts:
        numbers = [c.get("Count") for c in counts if isinstance(c, dict)]
        return sum(n for n in numbers if isinstance(n, int) and not isinstance(n, bool)) or None
    adults, children = reservation.get("AdultCount"), reservation.get("ChildCount")
    if isinstance(adults, int):
        return adults + (children if isinstance(children, int) else 0)
    return None


def snapshot(
    reservation: dict[str, Any],
    *,
    customers: dict[str, dict[str, Any]],
    categories: dict[str, dict[str, Any]],
    items: list[dict[str, Any]],
    enterprise_id: str,
    context: TranslationContext,
    config: MewsConfig,
) -> StaySnapshot:
    """One Mews reservation (2023-06-06 shape, older field names tolerated) as a snapshot."""
    ident = str(reservation.get("Id") or "")
    if not ident:
        raise PayloadError("reservation has no Id")
    state = STATES.get(str(reservation.get("State")))
    if state is None:
        raise UnsupportedEvent(f"reservation state {reservation.get('State')!r} is unknown", counter="unknown_state")
    property_id = str(reservation.get("EnterpriseId") or enterprise_id)
    zone = config.zone(context, property_id)
    customer = customers.get(str(reservation.get("AccountId") or reservation.get("CustomerId") or ""), {})
    person = guest(customer.get("Email"), customer.get("FirstName"), customer.get("LastName"), customer.get("Phone"))
    category = categories.get(str(reservation.get("RequestedResourceCategoryId") or ""), {})
    names = as_object(category.get("Names"), "resource category Names")
    total = _total(items)
    start = reservation.get("ScheduledStartUtc") or reservation.get("StartUtc")
    end = reservation.get("ScheduledEndUtc") or reservation.get("EndUtc")
    actual_start = parse_optional_instant(reservation.get("ActualStartUtc"), "ActualStartUtc")
    actual_end = parse_optional_instant(reservation.get("ActualEndUtc"), "ActualEndUtc")
    return StaySnapshot(
        pms="mews",
        property_id=property_id,
        reservation_id=ident,
        status=state,
        guest=person,
        booked_at=local(parse_instant(reservation.get("CreatedUtc"), "CreatedUtc"), zone),
        updated_at=parse_instant(reservation.get("UpdatedUtc") or reservation.get("CreatedUtc"), "UpdatedUtc"),
        check_in=local(parse_instant(start, "ScheduledStartUtc"), zone),
        check_out=local(parse_instant(end, "ScheduledEndUtc"), zone),
        checked_in_at=local(actual_start, zone) if actual_start else None,
        checked_out_at=local(actual_end, zone) if actual_end else None,
        number_of_guests=_guests(reservation),
        room_type=names.get(config.language) or next(iter(names.values()), None) if names else None,
        **total,
        channel=cast(str | None, reservation.get("Origin")),
    )


def translate(
    message: dict[str, Any], fetched: dict[str, Any], context: TranslationContext, config: MewsConfig
) -> Translation:
    """Every referenced reservation, in event order; guests without email are skipped, counted."""
    reservations = _by_id(fetched.get("reservations"))
    customers = _by_id(fetched.get("customers"))
    categories = _by_id(fetched.get("resource_categories"))
    items: dict[str, list[dict[str, Any]]] = {}
    for item in as_list(fetched.get("order_items"), "fetched.order_items"):
        if isinstance(item, dict):
            items.setdefault(str(item.get("ServiceOrderId")), []).append(item)
    result = Translation()
    for ident in reservation_ids(message):
        reservation = reservations.get(ident)
        if reservation is None:
            continue  # a service order that is not a reservation (or no longer exists)
        try:
            with valid_event():
                snap = snapshot(
                    reservation,
                    customers=customers,
                    categories=categories,
                    items=items.get(ident, []),
                    enterprise_id=str(message.get("EnterpriseId") or ""),
                    context=context,
                    config=config,
                )
        except UnsupportedEvent as skipped:
            result.skipped.append(skipped)
            continue
        except PayloadError as bad:  # one unusable reservation must not hold up the rest of the batch
            result.skipped.append(UnsupportedEvent(f"reservation {ident}: {bad}", counter="invalid_reservation"))
            continue
        result.extend(implied_activities(snap, tenant=context.tenant, source="mews"))
    if not result and len(result.skipped) == 1:
        raise result.skipped[0]
    return result


SOURCE = MewsSource()
