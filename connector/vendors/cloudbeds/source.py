"""Cloudbeds reservation webhooks → Booking / Checked in / Checked out.

Vendor docs: https://developers.cloudbeds.com (webhooks: ``postWebhook`` subscriptions per
object/action; API v1.2 ``getReservation``).

* Signing: none documented. The subscription's ``endpointUrl`` carries a secret token,
  ``/webhooks/<tenant>/cloudbeds/<token>`` (tenant key ``token``), and the worker re-reads the
  reservation through the authenticated API, which is the source of truth. ``property_id``, when
  set, must equal the message's ``propertyID``.
* Delivery id: none sent; the body carries a float ``timestamp`` per event, so the SHA-256 of the
  raw body identifies a delivery (a retry has the same bytes).
* Events: ``reservation/created``, ``reservation/status_changed`` (``status`` = ``confirmed``,
  ``not_confirmed``, ``checked_in``, ``checked_out``, ``canceled``, ``no_show``) and
  ``reservation/dates_changed``; others are ignored. The status of the *fetched* reservation
  decides; a ``status_changed`` message's timestamp is used as the actual check-in/out time.
* API credentials (PMS v1.2 OpenAPI security schemes, cloudbeds/openapi-specs): exactly one of
  ``api_key`` (sent as ``x-api-key``) or ``access_token`` (an OAuth 2.0 access token, sent as
  ``Authorization: Bearer``).
* Cloudbeds dates are property-local dates: arrival and departure are placed at the tenant's
  ``check_in_time`` / ``check_out_time`` in the property timezone. The booking ``total`` needs the
  property ``currency`` (tenant key), as ``getReservation`` does not name it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

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
    json_object,
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
    in_range,
    local_date,
    local_naive,
    stay_total,
)

EVENTS = frozenset({"reservation/created", "reservation/status_changed", "reservation/dates_changed"})
STATUSES: dict[str, BookingStatus] = {
    "not_confirmed": "Requested",
    "confirmed": "Confirmed",
    "checked_in": "Started",
    "checked_out": "Processed",
    "canceled": "Canceled",
    "no_show": "Canceled",
}


class CloudbedsConfig(PmsConfig):
    """``[tenants.<t>.sources.cloudbeds]``."""

    credentials = ("token",)
    generated = ("token",)
    path_credential = "token"

    token: SecretStr
    api_url: HttpBaseUrl = "https://api.cloudbeds.com/api/v1.2"
    api_key: SecretStr | None = None
    access_token: SecretStr | None = None
    property_id: str | None = None
    currency: str | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> CloudbedsConfig:
        if (self.api_key is None) == (self.access_token is None):
            raise ValueError(
                "set exactly one of api_key (a Cloudbeds API key, sent as x-api-key) "
                "or access_token (an OAuth access token, sent as Authorization: Bearer)"
            )
        return self

    def auth_header(self) -> tuple[str, str]:
        """``(header name, value)`` carrying this source's API credential."""
        if self.api_key is not None:
            return "x-api-key", self.api_key.get_secret_value()
        token = self.access_token.get_secret_value() if self.access_token is not None else ""
        return "Authorization", f"Bearer {token}"


def _body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PayloadError("body is not a JSON object")
    return raw


class CloudbedsSource(SourceAdapter):
    """The ``cloudbeds`` source adapter (thin events; see :mod:`connector.vendors.cloudbeds.pms`)."""

    name = "cloudbeds"
    config_model = CloudbedsConfig
    setup = SetupGuide(
        title="Cloudbeds",
        group="pms",
        console="the Cloudbeds API (postWebhook), with your API key or OAuth access token",
        steps=(
            "Enter your Cloudbeds API key (or an OAuth access token: one of the two) and your "
            "property's currency here.",
            "Subscribe the webhook URL above with postWebhook (endpointUrl = the URL) for object "
            "reservation and the actions created, status_changed and dates_changed (one call each).",
            "Optionally set the property id here: messages of other properties are then refused.",
        ),
        docs="https://developers.cloudbeds.com/docs/webhooks",
        unverified="Whether Cloudbeds' own settings screens can subscribe a webhook (the docs use the API).",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: CloudbedsConfig) -> None:
        """The URL token must be this tenant's (and the property, when configured)."""
        require_token(request.path_token, config.token)
        require_body_value(
            request,
            config.property_id,
            lambda body: str(body.get("propertyID_str") or body.get("propertyID") or ""),
            "message belongs to another property",
        )

    def identify(self, request: InboundRequest, config: CloudbedsConfig, tenant: str) -> Envelope:
        """``event`` from the body; the body digest is the delivery id."""
        body = json_object(request)
        event = body.get("event")
        if not isinstance(event, str) or event not in EVENTS:
            raise UnsupportedEvent(f"event {event} does not change a stay", counter="unsupported_type")
        if not str(body.get("reservationID") or ""):
            raise PayloadError('body has no "reservationID"')
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=str(event),
            delivery_id=hashlib.sha256(request.raw).hexdigest(),
            received_at=request.received_at,
        )

    def references(self, envelope: Envelope, payload: Any, config: CloudbedsConfig) -> list[str]:
        """The reservation id to fetch (pure)."""
        ident = _body(payload).get("reservationID")
        if not isinstance(ident, str | int) or isinstance(ident, bool) or not str(ident):
            raise PayloadError('body has no "reservationID"')
        return [str(ident)]

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: CloudbedsConfig
    ) -> list[Activity]:
        """``{"message", "fetched"}`` → the implied activities (pure)."""
        message = _body(as_object(payload, "payload").get("message"))
        fetched = as_object(payload.get("fetched"), "fetched")
        result = Translation()
        for index, reservation in enumerate(as_list(fetched.get("reservations"), "fetched.reservations")):
            with valid_event():
                snap = snapshot(as_object(reservation, f"reservations[{index}]"), message, context, config)
            result.extend(implied_activities(snap, tenant=context.tenant, source="cloudbeds"))
        return result


def _event_time(message: dict[str, Any]) -> datetime | None:
    stamp = message.get("timestamp")
    try:
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return in_range(datetime.fromtimestamp(stamp, tz=UTC), "timestamp")
        if isinstance(stamp, str):
            return in_range(datetime.fromtimestamp(float(stamp), tz=UTC), "timestamp")
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"timestamp {str(stamp)[:40]} is not a usable epoch time") from exc
    return None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def snapshot(
    reservation: dict[str, Any], message: dict[str, Any], context: TranslationContext, config: CloudbedsConfig
) -> StaySnapshot:
    """One ``getReservation`` answer as a snapshot (the message only dates a check-in/out)."""
    ident = str(reservation.get("reservationID") or "")
    if not ident:
        raise PayloadError("reservation has no reservationID")
    status = STATUSES.get(str(reservation.get("status")))
    if status is None:
        raise UnsupportedEvent(f"reservation status {reservation.get('status')!r} is unknown", counter="unknown_state")
    property_id = str(reservation.get("propertyID") or message.get("propertyID_str") or message.get("propertyID") or "")
    zone = config.zone(context, property_id)
    person = guest(
        reservation.get("guestEmail"),
        reservation.get("guestFirstName") or _first(reservation.get("guestName")),
        reservation.get("guestLastName") or _last(reservation.get("guestName")),
        reservation.get("guestPhone"),
    )
    rooms = [
        r
        for r in as_list(reservation.get("assigned"), "assigned") + as_list(reservation.get("unassigned"), "unassigned")
        if isinstance(r, dict)
    ]
    guests = sum(_int(r.get("adults")) + _int(r.get("children")) for r in rooms) or None
    moment = _event_time(message)
    message_status = message.get("status") if message.get("event") == "reservation/status_changed" else None
    created = _stamp(reservation, "dateCreated", zone)
    modified = _stamp(reservation, "dateModified", zone) if reservation.get("dateModified") else created
    total = reservation.get("total")
    has_total = total is not None and config.currency is not None
    return StaySnapshot(
        pms="cloudbeds",
        property_id=property_id,
        reservation_id=ident,
        status=status,
        guest=person,
        booked_at=created.astimezone(zone),
        updated_at=modified,
        check_in=local_date(reservation.get("startDate"), config.check_in_time, zone, "startDate"),
        check_out=local_date(reservation.get("endDate"), config.check_out_time, zone, "endDate"),
        checked_in_at=moment.astimezone(zone) if moment and message_status == "checked_in" else None,
        checked_out_at=moment.astimezone(zone) if moment and message_status == "checked_out" else None,
        number_of_guests=guests,
        room_type=rooms[0].get("roomTypeName") if rooms else None,
        room_name=rooms[0].get("roomName") if rooms else None,
        **(stay_total(str(total), config.currency) if has_total else {}),
        channel=reservation.get("sourceName") or reservation.get("source"),
    )


def _stamp(reservation: dict[str, Any], name: str, zone: ZoneInfo) -> datetime:
    """``<name>UTC`` when Cloudbeds sends it, else ``<name>`` on the property's clock."""
    utc = reservation.get(f"{name}UTC")
    if utc:
        return local_naive(utc, ZoneInfo("UTC"), f"{name}UTC")
    return local_naive(reservation.get(name), zone, name)


def _first(name: Any) -> str | None:
    return name.split(" ", 1)[0] if isinstance(name, str) and name.strip() else None


def _last(name: Any) -> str | None:
    return name.split(" ", 1)[1] if isinstance(name, str) and " " in name.strip() else None


SOURCE = CloudbedsSource()
