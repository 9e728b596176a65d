"""Hotel stays: one reservation snapshot → the activities it implies, and the pure state machine.

Every PMS source turns what it knows about a reservation (a webhook body, or the reservation
fetched through the PMS API for thin events) into a :class:`StaySnapshot` in Glu's vocabulary
and then into the *implied* activities (:func:`implied_activities`):

* ``Booking`` (with the booking object and its status), always;
* ``Checked in`` when the status is ``Started`` (in house) or ``Processed`` (checked out);
* ``Checked out`` when the status is ``Processed``.

All three share the business key ``<pms>:<property>:<reservation>`` (Glu dedups per type and
``externalReference``). Which of them were already emitted, and the booking status Glu last
heard, is remembered per tenant and reservation (:class:`StayState`, kept in Redis by
:mod:`connector.stays`); :func:`reconcile` decides, purely, what to emit now:

* each of Booking / Checked in / Checked out is emitted once; a check-out seen before its
  check-in emits Booking, Checked in and Checked out, in that order;
* a status change that is not explained by a check-in or check-out just emitted (cancellation,
  reverted check-in, no-show, reinstatement…) emits a *booking status update*: a ``Booking``
  activity with the new status and the key ``<pms>:<property>:<reservation>:status:<n>`` (n = 1,
  2, … per reservation), because Glu would return the original Booking for a repeated key. The
  booking object's own ``externalReference`` stays ``<pms>:<property>:<reservation>``;
* snapshots older than the newest one applied (``updated_at``) may still fill in a missing
  Booking / Checked in / Checked out, but never change the status: late or reordered
  deliveries cannot roll a stay back.

Nothing is ever deleted: Glu has no documented way to void an activity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from connector.activities import UNKNOWN_CURRENCY, Activity, Booking, BookingStatus, Person
from connector.errors import PayloadError, UnsupportedEvent
from connector.money import known_currency, to_minor_units
from connector.sources.base import SourceConfig, TranslationContext

STAY_TYPES = ("Booking", "Checked in", "Checked out")
REVISION = "stay_revision"  # attribute carrying the snapshot's updated_at (ISO 8601)
IN_HOUSE = frozenset({"Started", "Processed"})


class Translation(list[Activity]):
    """A list of activities plus the reservations skipped on purpose (counted by the worker)."""

    def __init__(self, activities: Iterable[Activity] = (), skipped: Iterable[UnsupportedEvent] = ()) -> None:
        super().__init__(activities)
        self.skipped: list[UnsupportedEvent] = list(skipped)


class PmsConfig(SourceConfig):
    """Settings every PMS source table shares: where its properties are, and house times.

    ``timezone`` overrides the tenant's for this source; ``property_timezones`` overrides it per
    property id. ``check_in_time`` / ``check_out_time`` place date-only arrivals and departures
    (Cloudbeds, Hostaway) on the property's clock.
    """

    timezone: str | None = None
    property_timezones: dict[str, str] = Field(default_factory=dict)
    check_in_time: time = time(15, 0)
    check_out_time: time = time(11, 0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            _zone_of(value)
        return value

    @field_validator("property_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            _zone_of(zone)
        return value

    def zone(self, context: TranslationContext, property_id: str) -> ZoneInfo:
        """The property's timezone: per-property map, then this source's, then the tenant's."""
        name = self.property_timezones.get(property_id) or self.timezone
        return ZoneInfo(name) if name else context.timezone


def _zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
        raise ValueError(f"unknown timezone {name!r}") from exc


class StaySnapshot(BaseModel):
    """What a PMS says about one reservation right now, in Glu's vocabulary."""

    model_config = ConfigDict(frozen=True)

    pms: str
    property_id: str
    reservation_id: str
    status: BookingStatus
    guest: Person
    booked_at: AwareDatetime
    updated_at: AwareDatetime
    check_in: AwareDatetime  # scheduled arrival, property time
    check_out: AwareDatetime  # scheduled departure, property time
    checked_in_at: AwareDatetime | None = None  # actual arrival
    checked_out_at: AwareDatetime | None = None  # actual departure
    number_of_guests: int | None = None
    room_type: str | None = None
    room_name: str | None = None
    total: int | None = None  # minor units of currency_code
    currency_code: str | None = None
    unknown_currency: str | None = None  # the total's code ISO 4217 does not know (total left out)
    channel: str | None = None

    @property
    def business_key(self) -> str:
        """``<pms>:<property>:<reservation>``."""
        return f"{self.pms}:{self.property_id}:{self.reservation_id}"


def implied_activities(snapshot: StaySnapshot, *, tenant: str, source: str) -> list[Activity]:
    """Booking, then Checked in / Checked out as far as the status implies (see module doc)."""
    key = snapshot.business_key
    revision = {REVISION: snapshot.updated_at.isoformat()}
    booking = Booking(
        check_in=snapshot.check_in,
        check_out=snapshot.check_out,
        status=snapshot.status,
        number_of_guests=snapshot.number_of_guests,
        room_type=snapshot.room_type,
        room_name=snapshot.room_name,
        external_reference=key,
        total=snapshot.total,
        currency_code=snapshot.currency_code if snapshot.total is not None else None,
        channel=snapshot.channel,
    )
    common: dict[str, Any] = {"tenant": tenant, "source": source, "business_key": key, "person": snapshot.guest}
    marks = {**revision, UNKNOWN_CURRENCY: snapshot.unknown_currency} if snapshot.unknown_currency else revision
    activities = [Activity(type="Booking", happened_at=snapshot.booked_at, booking=booking, attributes=marks, **common)]
    if snapshot.status in IN_HOUSE:
        arrived = snapshot.checked_in_at or snapshot.check_in
        activities.append(Activity(type="Checked in", happened_at=arrived, attributes=revision, **common))
    if snapshot.status == "Processed":
        departed = snapshot.checked_out_at or snapshot.check_out
        activities.append(Activity(type="Checked out", happened_at=departed, attributes=revision, **common))
    return activities


@dataclass(frozen=True)
class StayState:
    """What Glu has been told about one reservation."""

    booked: bool = False
    checked_in: bool = False
    checked_out: bool = False
    status: str | None = None  # the booking status Glu last heard (or implied by a check-in/out)
    updates: int = 0  # booking status updates sent so far
    revision: str | None = None  # updated_at of the newest snapshot applied

    def to_json(self) -> str:
        """Compact JSON for Redis."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> StayState:
        """Inverse of :meth:`to_json`; ``None`` is the state of a reservation never seen."""
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _revision(activity: Activity) -> datetime:
    value = activity.attributes.get(REVISION)
    if not isinstance(value, str):
        raise PayloadError(f"stay activity {activity.business_key} carries no {REVISION}")
    return datetime.fromisoformat(value)


def reconcile(state: StayState, implied: list[Activity]) -> tuple[list[Activity], StayState]:
    """Given what Glu knows and the activities one snapshot implies, what to send now (pure).

    ``implied`` is the output of :func:`implied_activities` for one reservation.
    """
    by_type = {a.type: a for a in implied}
    booking = by_type.get("Booking")
    if booking is None or booking.booking is None:
        raise PayloadError("a stay snapshot must imply a Booking with its booking object")
    revision = _revision(booking)
    newer = state.revision is None or revision >= datetime.fromisoformat(state.revision)
    emit: list[Activity] = []
    new = state
    if not new.booked:
        emit.append(booking)
        new = replace(new, booked=True, status=booking.booking.status)
    check_in = by_type.get("Checked in")
    if check_in is not None and not new.checked_in:
        emit.append(check_in)
        new = replace(new, checked_in=True, status="Started" if newer else new.status)
    check_out = by_type.get("Checked out")
    if check_out is not None and not new.checked_out:
        emit.append(check_out)
        new = replace(new, checked_out=True, status="Processed" if newer else new.status)
    if newer and booking.booking.status != new.status:
        number = new.updates + 1
        emit.append(
            booking.model_copy(
                update={"business_key": f"{booking.business_key}:status:{number}", "happened_at": revision}
            )
        )
        new = replace(new, status=booking.booking.status, updates=number)
    if newer:
        new = replace(new, revision=revision.isoformat())
    return emit, new


def group_stays(activities: Iterable[Activity]) -> tuple[dict[str, list[Activity]], list[Activity]]:
    """Split activities into stay groups (by business key, order kept) and the rest."""
    groups: dict[str, list[Activity]] = {}
    others: list[Activity] = []
    for activity in activities:
        if activity.type in STAY_TYPES and REVISION in activity.attributes:
            groups.setdefault(activity.business_key, []).append(activity)
        else:
            others.append(activity)
    return groups, others


# --- small parsing helpers shared by the PMS adapters -------------------------------------


def stay_total(amount: Any, currency: Any) -> dict[str, Any]:
    """A snapshot's money fields: ``total`` (minor units) and ``currency_code``; nothing without an
    amount or a code; only ``unknown_currency`` for a code ISO 4217 does not know (current or
    withdrawn), so that the stay still goes, without its total, instead of failing.

    Raises:
        PayloadError: the amount is malformed for a known currency (e.g. too many decimals).
    """
    if amount is None or not isinstance(currency, str):
        return {}
    if not known_currency(currency):
        return {"unknown_currency": currency[:16]}
    return {"total": to_minor_units(amount, currency), "currency_code": currency}


def parse_instant(value: Any, what: str) -> datetime:
    """An ISO 8601 timestamp that must carry an offset (``Z`` accepted)."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"{what} {value!r} is not an ISO 8601 timestamp") from exc
    if parsed.utcoffset() is None:
        raise PayloadError(f"{what} {value!r} has no UTC offset")
    return in_range(parsed, what)


def in_range(moment: datetime, what: str) -> datetime:
    """``moment`` when it can be shown in any timezone (years 2 to 9998; no stay is outside).

    Raises:
        PayloadError: the year is so far off that converting between timezones would overflow.
    """
    if not 2 <= moment.year <= 9998:
        raise PayloadError(f"{what} {moment.isoformat()} is out of range")
    return moment


def parse_optional_instant(value: Any, what: str) -> datetime | None:
    """Like :func:`parse_instant`, but ``None``/empty is allowed."""
    return None if value in (None, "") else parse_instant(value, what)


def local(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant shown on the property's clock."""
    return value.astimezone(zone)


def local_date(value: Any, at: time, zone: ZoneInfo, what: str) -> datetime:
    """A PMS date (``YYYY-MM-DD``) at a house time, placed in the property's timezone."""
    if not isinstance(value, str):
        raise PayloadError(f"{what} is missing")
    try:
        day = date.fromisoformat(value[:10])
    except ValueError as exc:
        raise PayloadError(f"{what} {value!r} is not a date") from exc
    return in_range(datetime.combine(day, at, tzinfo=zone), what)


def local_naive(value: Any, zone: ZoneInfo, what: str) -> datetime:
    """A naive PMS timestamp (``YYYY-MM-DD HH:MM:SS``, property time) placed in its timezone."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"{what} {value!r} is not a timestamp") from exc
    return in_range(parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=zone), what)


def guest(email: Any, first_name: Any = None, last_name: Any = None, phone: Any = None) -> Person:
    """The guest as a :class:`Person`; no usable email is an ignored event (``no_email``)."""
    text = email.strip().lower() if isinstance(email, str) else ""
    if "@" not in text:
        raise UnsupportedEvent("the guest has no email address", counter="no_email")
    return Person(
        email=text,
        first_name=first_name if isinstance(first_name, str) and first_name else None,
        last_name=last_name if isinstance(last_name, str) and last_name else None,
        phone=phone if isinstance(phone, str) and phone else None,
    )
