"""Hostaway reservation webhooks → Booking / Checked in / Checked out.

Vendor docs: https://api.hostaway.com/documentation (Webhooks: ``/v1/webhooks/reservations``
with ``url``, ``login``, ``password``; Reservation object).

* Signing: none. When the webhook has a ``login`` and ``password``, Hostaway sends them as HTTP
  basic auth; the tenant configures the same ``username`` / ``password`` (required: without
  them this source rejects everything).
* Delivery id: none sent. Every change carries a new ``updatedOn``, and a retry repeats the same
  bytes, so the SHA-256 of the raw body is the delivery id.
* Body: the full reservation, either bare (reservation webhooks) or under ``data`` with an
  ``event`` name (``reservation.created`` / ``reservation.updated``, unified webhooks) [inferred:
  both shapes are accepted]. No fetch is needed.
* Hostaway has no check-in/out events or states (vacation rentals): a ``new`` / ``modified`` /
  ``confirmed`` reservation counts as checked in once its arrival (``arrivalDate`` at
  ``checkInTime`` o'clock, else the tenant's ``check_in_time``, property time) has passed when
  the message was received, and as checked out once its departure has. So check-in/out reach
  Glu with the first message received after those moments.
  ``cancelled`` / ``declined`` / ``expired`` → Glu ``Canceled``; ``pending`` /
  ``awaitingPayment`` → ``Requested``; ``inquiry*`` → ``Inquired``.
* Saving a webhook sends a test ping ``{"data": "test"}`` (PipedreamHQ/pipedream
  components/hostaway answers it 200): answered 200 ``ignored`` without a job. Whether the ping
  carries the login/password is not documented, so it is authenticated like any message.
* Hostaway's naive timestamps (``reservationDate``, ``updatedOn``) are read as UTC [inferred].
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connector.activities import Activity, BookingStatus
from connector.errors import PayloadError, UnsupportedEvent
from connector.sources.base import (
    Envelope,
    InboundRequest,
    SourceAdapter,
    TranslationContext,
    require_basic_auth,
    valid_event,
)
from connector.sources.setup import SetupGuide
from connector.sources.stay import (
    PmsConfig,
    StaySnapshot,
    guest,
    implied_activities,
    local_date,
    local_naive,
    stay_total,
)

ACTIVE = frozenset({"new", "modified", "confirmed"})
STATUSES: dict[str, BookingStatus] = {
    "new": "Confirmed",
    "modified": "Confirmed",
    "confirmed": "Confirmed",
    "cancelled": "Canceled",
    "declined": "Canceled",
    "expired": "Canceled",
    "pending": "Requested",
    "awaitingPayment": "Requested",
    "inquiry": "Inquired",
    "inquiryPreapproved": "Inquired",
    "inquiryDenied": "Canceled",
    "inquiryTimedout": "Canceled",
    "inquiryNotPossible": "Canceled",
}
UTC_ZONE = ZoneInfo("UTC")


class HostawayConfig(PmsConfig):
    """``[tenants.<t>.sources.hostaway]``."""

    credentials = ("username", "password")
    generated = ("username", "password")

    username: str
    password: SecretStr
    account_id: int | None = None


def is_test_ping(body: Any) -> bool:
    """Hostaway's test ping on saving a webhook: ``{"data": "test"}`` [third-party integration code]."""
    return isinstance(body, dict) and body.get("data") == "test"


def reservation_of(body: Any) -> tuple[str, dict[str, Any]]:
    """``(event, reservation)`` from either webhook shape."""
    if not isinstance(body, dict):
        raise PayloadError("body is not a JSON object")
    data = body.get("data") if isinstance(body.get("data"), dict) else body.get("payload")
    if isinstance(data, dict):
        return str(body.get("event") or "reservation.updated"), data
    if "arrivalDate" in body:
        return "reservation.updated", body
    raise PayloadError("body carries no reservation")


class HostawaySource(SourceAdapter):
    """The ``hostaway`` source adapter (full reservation objects)."""

    name = "hostaway"
    config_model = HostawayConfig
    setup = SetupGuide(
        title="Hostaway",
        group="pms",
        console="the Hostaway dashboard: Settings > Integrations (account owner only)",
        steps=(
            "Sign in to Hostaway as the account owner (only the owner can open Settings) and open "
            "Settings > Integrations.",
            "Add a webhook (the unified webhook) with the webhook URL above as its URL.",
            "Protect it with a user name and password: enter the login and password the connector "
            "generated (the password is shown once, when you add or rotate this source).",
            "Save. Hostaway's test message is answered without a job; a test reservation arrives about "
            "10 minutes after it is made.",
        ),
        docs="https://support.hostaway.com/hc/en-us/articles/360009022653-Using-Hostaway-Web-hooks",
        unverified="The labels of the webhook form's user name and password fields.",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: HostawayConfig) -> None:
        """HTTP basic auth with the webhook's login and password (constant time)."""
        require_basic_auth(request.header("authorization"), config.username, config.password)

    def identify(self, request: InboundRequest, config: HostawayConfig, tenant: str) -> Envelope:
        """Reservation events only; the body digest is the delivery id."""
        body = request.json()
        if is_test_ping(body):
            raise UnsupportedEvent("Hostaway test ping: nothing to do", counter="test_ping")
        event, reservation = reservation_of(body)
        if not event.startswith("reservation."):
            raise UnsupportedEvent(f"event {event} does not change a stay", counter="unsupported_type")
        account = reservation.get("accountId", body.get("accountId"))
        if config.account_id is not None and account is not None and account != config.account_id:
            raise UnsupportedEvent("reservation of another Hostaway account", counter="other_account")
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=event,
            delivery_id=hashlib.sha256(request.raw).hexdigest(),
            received_at=request.received_at,
        )

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: HostawayConfig
    ) -> list[Activity]:
        """The reservation → the activities it implies at the time the message was received (pure)."""
        _, reservation = reservation_of(payload)
        received = datetime.fromisoformat(envelope.received_at)
        with valid_event():
            snap = snapshot(reservation, received, context, config)
        return implied_activities(snap, tenant=context.tenant, source="hostaway")


def _amount(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return repr(value)  # the shortest decimal that round-trips: what the JSON said
    return str(value)


def _hour(value: Any, default: time) -> time:
    return time(value, 0) if isinstance(value, int) and 0 <= value <= 23 else default


def snapshot(
    reservation: dict[str, Any], received: datetime, context: TranslationContext, config: HostawayConfig
) -> StaySnapshot:
    """One Hostaway reservation, as of ``received``."""
    ident = reservation.get("id")
    if not isinstance(ident, int | str) or isinstance(ident, bool) or not str(ident):
        raise PayloadError("reservation has no id")
    raw_status = str(reservation.get("status"))
    status = STATUSES.get(raw_status)
    if status is None:
        raise UnsupportedEvent(f"reservation status {raw_status!r} is not a guest stay", counter="unknown_state")
    property_id = str(reservation.get("listingMapId") or "")
    if not property_id:
        raise PayloadError("reservation has no listingMapId")
    zone = config.zone(context, property_id)
    person = guest(
        reservation.get("guestEmail"),
        reservation.get("guestFirstName"),
        reservation.get("guestLastName"),
        reservation.get("phone"),
    )
    arrival = local_date(
        reservation.get("arrivalDate"), _hour(reservation.get("checkInTime"), config.check_in_time), zone, "arrivalDate"
    )
    departure = local_date(
        reservation.get("departureDate"),
        _hour(reservation.get("checkOutTime"), config.check_out_time),
        zone,
        "departureDate",
    )
    if raw_status in ACTIVE and departure <= received:
        status = "Processed"
    elif raw_status in ACTIVE and arrival <= received:
        status = "Started"
    booked = local_naive(
        reservation.get("reservationDate") or reservation.get("insertedOn"), UTC_ZONE, "reservationDate"
    )
    updated_raw = reservation.get("updatedOn")
    updated = local_naive(updated_raw, UTC_ZONE, "updatedOn") if updated_raw else booked
    amount, currency = _amount(reservation.get("totalPrice")), reservation.get("currency")
    has_total = amount is not None and isinstance(currency, str)
    guests = reservation.get("numberOfGuests")
    return StaySnapshot(
        pms="hostaway",
        property_id=property_id,
        reservation_id=str(ident),
        status=status,
        guest=person,
        booked_at=booked.astimezone(zone),
        updated_at=updated,
        check_in=arrival,
        check_out=departure,
        checked_in_at=arrival if status in {"Started", "Processed"} else None,
        checked_out_at=departure if status == "Processed" else None,
        number_of_guests=guests if isinstance(guests, int) and not isinstance(guests, bool) else None,
        room_type=reservation.get("listingName"),
        **(stay_total(amount or None, currency) if has_total else {}),
        channel=reservation.get("channelName"),
    )


SOURCE = HostawaySource()
