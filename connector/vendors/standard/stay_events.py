"""The canonical stay events of the ``standard`` source (any PMS signing with Standard Webhooks).

Types: ``stay.booked``, ``stay.updated``, ``stay.checked_in``, ``stay.checked_out``,
``stay.canceled``. Every event carries the *whole* reservation as it is now (``data``, see
:class:`StayData`), so events may arrive late, twice or out of order: the stay state machine
(:mod:`connector.sources.stay`) emits each of Booking / Checked in / Checked out once and turns
status changes into booking status updates. ``status`` defaults from the event type
(``stay.checked_in`` → ``checked_in`` …) and wins when given. The JSON Schema is generated from
:class:`StayEvent` and published as ``schemas/stay-event.schema.json``.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connector.activities import Activity, BookingStatus
from connector.errors import PayloadError
from connector.sources.base import Envelope, TranslationContext
from connector.sources.stay import StaySnapshot, guest, implied_activities, stay_total

StayEventType = Literal["stay.booked", "stay.updated", "stay.checked_in", "stay.checked_out", "stay.canceled"]
StayStatus = Literal[
    "inquired", "requested", "optional", "confirmed", "checked_in", "checked_out", "canceled", "no_show"
]

GLU_STATUS: dict[str, BookingStatus] = {
    "inquired": "Inquired",
    "requested": "Requested",
    "optional": "Optional",
    "confirmed": "Confirmed",
    "checked_in": "Started",
    "checked_out": "Processed",
    "canceled": "Canceled",
    "no_show": "Canceled",
}
DEFAULT_STATUS: dict[str, StayStatus] = {
    "stay.booked": "confirmed",
    "stay.updated": "confirmed",
    "stay.checked_in": "checked_in",
    "stay.checked_out": "checked_out",
    "stay.canceled": "canceled",
}
HOUSE_CHECK_IN = time(15, 0)
HOUSE_CHECK_OUT = time(11, 0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StayGuest(_Model):
    """The guest; without an email the stay is ignored (counted as ``no_email``)."""

    email: str | None = Field(default=None, description="Guest email: the loyalty identity")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


class StayMoney(_Model):
    """An amount as a decimal string in major units, with its ISO 4217 currency."""

    amount: str = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description='Decimal string, e.g. "380.00"')
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. GBP")


class StayData(_Model):
    """The reservation as it is now (the ``data`` of every stay event)."""

    pms: str = Field(
        default="standard", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="Sender's system, first key part"
    )
    property_id: str = Field(min_length=1, max_length=128, description="Property (hotel) id at the sender")
    reservation_id: str = Field(min_length=1, max_length=128, description="Reservation id, unique per property")
    status: StayStatus | None = Field(default=None, description="Current status; defaults from the event type")
    timezone: str | None = Field(default=None, description="Property IANA timezone; default: the tenant's")
    guest: StayGuest
    booked_at: AwareDatetime = Field(description="When the reservation was made (with offset)")
    updated_at: AwareDatetime = Field(description="When the reservation last changed; orders late events")
    arrival: AwareDatetime | date = Field(description="Scheduled arrival: a local date or a timestamp with offset")
    departure: AwareDatetime | date = Field(description="Scheduled departure: a local date or a timestamp")
    checked_in_at: AwareDatetime | None = Field(default=None, description="Actual arrival")
    checked_out_at: AwareDatetime | None = Field(default=None, description="Actual departure")
    number_of_guests: int | None = Field(default=None, ge=0)
    room_type: str | None = None
    room_name: str | None = None
    total: StayMoney | None = Field(default=None, description="Booking total")
    channel: str | None = Field(default=None, description="Booking channel / origin")


class StayEvent(_Model):
    """A Standard Webhooks message carrying a stay event."""

    model_config = ConfigDict(title="Stay event", extra="ignore", frozen=True)

    type: StayEventType
    timestamp: AwareDatetime
    data: StayData


def _zone(data: StayData, context: TranslationContext) -> ZoneInfo:
    if not data.timezone:
        return context.timezone
    try:
        return ZoneInfo(data.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
        raise PayloadError(f"data.timezone {data.timezone!r} is not an IANA timezone") from exc


def _place(value: date | datetime, at: time, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(zone)
    return datetime.combine(value, at, tzinfo=zone)


def stay_snapshot(event_type: str, raw: dict[str, Any], context: TranslationContext) -> StaySnapshot:
    """Validate a stay event's ``data`` and turn it into a snapshot (pure)."""
    try:
        data = StayData.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "data" for err in exc.errors()})
        raise PayloadError(f"stay event data is invalid at: {', '.join(fields)}") from None
    zone = _zone(data, context)
    for name in ("booked_at", "updated_at", "arrival", "departure", "checked_in_at", "checked_out_at"):
        moment = getattr(data, name)
        if isinstance(moment, date) and not 2 <= moment.year <= 9998:
            raise PayloadError(f"data.{name} {moment.isoformat()} is out of range")
    person = guest(data.guest.email, data.guest.first_name, data.guest.last_name, data.guest.phone)
    status = GLU_STATUS[data.status or DEFAULT_STATUS[event_type]]
    return StaySnapshot(
        pms=data.pms,
        property_id=data.property_id,
        reservation_id=data.reservation_id,
        status=status,
        guest=person,
        booked_at=data.booked_at.astimezone(zone),
        updated_at=data.updated_at,
        check_in=_place(data.arrival, HOUSE_CHECK_IN, zone),
        check_out=_place(data.departure, HOUSE_CHECK_OUT, zone),
        checked_in_at=data.checked_in_at.astimezone(zone) if data.checked_in_at else None,
        checked_out_at=data.checked_out_at.astimezone(zone) if data.checked_out_at else None,
        number_of_guests=data.number_of_guests,
        room_type=data.room_type,
        room_name=data.room_name,
        **(stay_total(data.total.amount, data.total.currency) if data.total else {}),
        channel=data.channel,
    )


def handle_stay(data: dict[str, Any], envelope: Envelope, context: TranslationContext) -> list[Activity]:
    """``EVENT_HANDLERS`` entry for every stay type: the activities the reservation implies."""
    snapshot = stay_snapshot(envelope.event_type, data, context)
    return implied_activities(snapshot, tenant=context.tenant, source="standard")


STAY_HANDLERS = {event_type: handle_stay for event_type in DEFAULT_STATUS}


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a stay event (``schemas/stay-event.schema.json``)."""
    schema = StayEvent.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/loyalty-connector/schemas/stay-event.schema.json",
        **schema,
    }


if __name__ == "__main__":  # python -m connector.vendors.standard.stay_events > schemas/stay-event.schema.json
    import json

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
