"""Shared, pure pieces of the guest Wi-Fi sources: one "Connected to wifi" per guest, venue and window.

Every Wi-Fi portal adapter (``purple``, ``socialwifi``, ``meraki``, ``mist``, ``hotspotsystem`` and
the ``standard`` source's ``wifi.login`` event) normalises a portal login into a :class:`WifiLogin`
and turns it into an activity with :func:`login_activity`:

* business key ``<portal>:<venue>:<guest>:<period>`` where ``guest`` is
  :func:`~connector.activities.hash_identifier` of the normalised email (never a MAC, never the
  email itself) and ``period`` is the first local date of the window the login falls in, in the
  venue's timezone (per-venue ``timezone``, else the source's ``timezone``, else the tenant's);
* ``window`` (source setting, default ``"day"``; ``"week"`` = ISO week starting Monday,
  ``"month"``) decides how many logins count: one activity per guest, venue and window;
* ``happened_at`` is the login time with its offset, converted to the venue's timezone;
* ``person.marketing_consent`` is set only when the portal reported it explicitly.

Portals that send no delivery id use :func:`login_delivery_id` (the business key itself) as the
transport delivery id, so repeated logins inside the window are answered ``duplicate`` by the
web tier before any job is created.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from connector.activities import Activity, Person, hash_identifier, normalise_email
from connector.errors import PayloadError, UnsupportedEvent
from connector.sources.base import Envelope, InboundRequest, SourceAdapter, SourceConfig, TranslationContext

Window = Literal["day", "week", "month"]
ACTIVITY_TYPE: Final = "Connected to wifi"
MAC_PATTERN = re.compile(r"^[0-9a-f]{2}([-:]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.IGNORECASE)
# Epoch values above this are milliseconds (year 2286 in seconds).
_EPOCH_MS_THRESHOLD = 10_000_000_000


def _check_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
        raise ValueError(f"unknown timezone {value!r}") from exc
    return value


class VenueConfig(BaseModel):
    """``[tenants.<t>.sources.<portal>.venues.<venue id>]``: display name and timezone of one venue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)


class WifiConfig(SourceConfig):
    """Settings every Wi-Fi source shares.

    ``timezone`` defaults to the tenant's timezone (passed as validation context by the settings
    loader); ``venues`` maps a portal's venue/location/site id to a name and a timezone; ``venue``
    is the venue id used for payloads that name none (one webhook per venue).
    """

    timezone: str = "UTC"
    window: Window = "day"
    venues: dict[str, VenueConfig] = {}
    venue: str | None = None  # venue id to use when a payload names none

    @model_validator(mode="before")
    @classmethod
    def _tenant_timezone(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and "timezone" not in data:
            context = info.context if isinstance(info.context, Mapping) else {}
            zone = context.get("tenant_timezone")
            if isinstance(zone, str):
                return {**data, "timezone": zone}
        return data

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        _check_zone(value)
        return value

    def venue_id(self, reported: Any) -> str:
        """The payload's venue id, else the configured ``venue``.

        Raises:
            PayloadError: neither is available.
        """
        venue = text(reported) or self.venue
        if not venue:
            raise PayloadError("login names no venue and the source has no default `venue` configured")
        return venue

    def venue_zone(self, venue_id: str) -> ZoneInfo:
        """The timezone a venue's local dates are counted in."""
        venue = self.venues.get(venue_id)
        return ZoneInfo(venue.timezone if venue is not None and venue.timezone else self.timezone)

    def venue_name(self, venue_id: str, reported: str | None = None) -> str:
        """Configured name, else the portal's name, else the id."""
        venue = self.venues.get(venue_id)
        if venue is not None and venue.name:
            return venue.name
        return reported or venue_id


@dataclass(frozen=True)
class WifiLogin:
    """One portal login, normalised (no MAC addresses: they are never needed downstream)."""

    portal: str
    venue_id: str
    email: str
    login_at: datetime
    venue_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    marketing_consent: bool | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def dig(data: Any, *paths: str) -> Any:
    """First non-empty value among dotted ``paths`` of nested dicts (``"user.email"``), else ``None``.

    The vendors' key names that could not be verified are listed per adapter as candidate paths,
    so correcting one is a one-line change.
    """
    for path in paths:
        node = data
        for part in path.split("."):
            if not isinstance(node, Mapping):
                node = None
                break
            node = node.get(part)
        if node is not None and node != "":
            return node
    return None


def login_from_fields(
    portal: str,
    payload: Any,
    fields: Mapping[str, tuple[str, ...]],
    received_at: str,
    attributes: dict[str, Any] | None = None,
) -> WifiLogin:
    """The login read from candidate JSON paths per field (an adapter's ``FIELDS``).

    Keys: ``email``, ``venue_id``, ``venue_name``, ``login_at``, ``first_name``, ``last_name``,
    ``phone``, ``consent``; a key the portal has no paths for stays empty. The venue id may be
    ``""`` (resolved against the config with :func:`resolve_venue`).

    Raises:
        UnsupportedEvent: no email (MAC-only or anonymous login).
        PayloadError: an unparseable timestamp.
    """

    def pick(name: str) -> Any:
        return dig(payload, *fields.get(name, ()))

    return WifiLogin(
        portal=portal,
        venue_id=text(pick("venue_id")) or "",
        venue_name=text(pick("venue_name")),
        email=guest_email(pick("email")),
        login_at=login_time(pick("login_at"), received_at),
        first_name=text(pick("first_name")),
        last_name=text(pick("last_name")),
        phone=text(pick("phone")),
        marketing_consent=consent(pick("consent")),
        attributes=attributes or {},
    )


def text(value: Any) -> str | None:
    """A scalar as a stripped string; ``None`` for missing, empty or structured values."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


def consent(value: Any) -> bool | None:
    """An explicit opt-in/opt-out flag as a boolean; anything unclear is ``None`` (never invented)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "yes", "1", "subscribed", "opted_in", "opt-in", "granted"}:
            return True
        if lowered in {"false", "no", "0", "unsubscribed", "not_subscribed", "opted_out", "opt-out", "denied"}:
            return False
    return None


def is_mac(value: str | None) -> bool:
    """Whether a string looks like a MAC address (``aa:bb:…``, ``AA-BB-…`` or ``aabbcc…``)."""
    return bool(value) and bool(MAC_PATTERN.match(str(value).strip()))


def guest_email(*candidates: Any) -> str:
    """The first candidate that is an email address.

    Raises:
        UnsupportedEvent: (counter ``no_email``) none is; MAC-only guests end here. The reason
            never repeats the identifiers.
    """
    for candidate in candidates:
        if isinstance(candidate, str) and not is_mac(candidate):
            email = normalise_email(candidate)
            if email is not None:
                return email
    raise UnsupportedEvent("guest has no email address (MAC-only or anonymous login)", counter="no_email")


def parse_time(value: Any, *, field_name: str = "timestamp") -> datetime:
    """A login timestamp: ISO 8601 (with offset; naive values are read as UTC) or epoch s / ms.

    Raises:
        PayloadError: unparseable value.
    """
    if isinstance(value, bool):
        raise PayloadError(f"{field_name} {value!r} is not a timestamp")
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if value > _EPOCH_MS_THRESHOLD else value
            return _plausible(datetime.fromtimestamp(seconds, tz=UTC), value, field_name)
        except (OverflowError, OSError, ValueError) as exc:
            raise PayloadError(f"{field_name} {value!r} is out of range") from exc
    if isinstance(value, str):
        raw = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            return parse_time(float(raw), field_name=field_name)
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
        except ValueError as exc:
            raise PayloadError(f"{field_name} {value!r} is not an ISO 8601 timestamp") from exc
        return _plausible(parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC), value, field_name)
    raise PayloadError(f"{field_name} {value!r} is not a timestamp")


def _plausible(moment: datetime, value: Any, field_name: str) -> datetime:
    # Far-off years overflow when converted between timezones; no login happens outside this range.
    if not 1970 <= moment.year <= 9998:
        raise PayloadError(f"{field_name} {value!r} is out of range")
    return moment


def login_time(value: Any, received_at: str, *, field_name: str = "timestamp") -> datetime:
    """The portal's login time, or the moment the connector received it when the portal sent none."""
    if value is None:
        return parse_time(received_at, field_name="received_at")
    return parse_time(value, field_name=field_name)


def period_start(local: date, window: Window) -> date:
    """First local date of the window ``local`` falls in."""
    if window == "week":
        return local - timedelta(days=local.weekday())
    if window == "month":
        return local.replace(day=1)
    return local


def business_key(portal: str, venue_id: str, email: str, login_at: datetime, zone: ZoneInfo, window: Window) -> str:
    """``<portal>:<venue>:<guest hash>:<first local date of the window>``."""
    local = login_at.astimezone(zone).date()
    return f"{portal}:{venue_id}:{hash_identifier(email)}:{period_start(local, window).isoformat()}"


def login_delivery_id(login: WifiLogin, config: WifiConfig) -> str:
    """Transport delivery id for portals without one: the login's business key (no PII in it)."""
    return business_key(
        login.portal, login.venue_id, login.email, login.login_at, config.venue_zone(login.venue_id), config.window
    )


def logins_delivery_id(logins: Iterable[WifiLogin], config: WifiConfig) -> str:
    """Delivery id of a batch of logins: the business key of a single login, else a digest of the
    sorted set of keys, so a batch repeating the same guests inside the window is a duplicate."""
    keys = sorted({login_delivery_id(login, config) for login in logins})
    if len(keys) == 1:
        return keys[0]
    return "logins-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]


def body_delivery_id(raw: bytes) -> str:
    """Delivery id of a batch without a sender id: a digest of its exact bytes (dedups retries)."""
    return "body-" + hashlib.sha256(raw).hexdigest()[:40]


def login_activity(login: WifiLogin, config: WifiConfig, *, tenant: str, source: str | None = None) -> Activity:
    """The "Connected to wifi" activity of one login (pure)."""
    zone = config.venue_zone(login.venue_id)
    return Activity(
        type=ACTIVITY_TYPE,
        tenant=tenant,
        source=source or login.portal,
        business_key=business_key(login.portal, login.venue_id, login.email, login.login_at, zone, config.window),
        happened_at=login.login_at.astimezone(zone),
        person=Person(
            email=login.email,
            first_name=login.first_name,
            last_name=login.last_name,
            phone=login.phone,
            marketing_consent=login.marketing_consent,
        ),
        venue=config.venue_name(login.venue_id, login.venue_name),
        attributes={
            "venue_id": login.venue_id,
            "window": config.window,
            **{k: v for k, v in login.attributes.items() if v is not None},
        },
    )


def resolve_venue(login: WifiLogin, config: WifiConfig) -> WifiLogin:
    """The login with its venue id resolved against the config (payload id, else ``venue``)."""
    venue = config.venue_id(login.venue_id)
    return login if venue == login.venue_id else replace(login, venue_id=venue)


def unique_activities(activities: Iterable[Activity]) -> list[Activity]:
    """Drop activities repeating a business key already in the list (batches with reconnects)."""
    seen: set[str] = set()
    result = []
    for activity in activities:
        if activity.business_key not in seen:
            seen.add(activity.business_key)
            result.append(activity)
    return result


class LoginSource(SourceAdapter):
    """Base of the portal adapters: a body is a batch of logins (often exactly one).

    The delivery id comes from the logins' business keys (:func:`logins_delivery_id`: a single
    login's business key itself), and each guest gets one "Connected to wifi" per window. A
    subclass sets ``name`` and reads ``(event type, logins)`` from a body in :meth:`logins`.
    """

    name: str

    def logins(self, payload: Any, received_at: str, config: Any) -> tuple[str, list[WifiLogin]]:
        """The event type and the logins (venues resolved) of a body (pure)."""
        raise NotImplementedError

    def payload(self, request: InboundRequest) -> Any:
        """The body as parsed for :meth:`logins` (the body rules, :meth:`InboundRequest.json`)."""
        return request.json()

    def identify(self, request: InboundRequest, config: Any, tenant: str) -> Envelope:
        """The event type of the body; its logins' business keys make the delivery id."""
        received_at = request.received_at
        event_type, logins = self.logins(self.payload(request), received_at, config)
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=event_type,
            delivery_id=logins_delivery_id(logins, config),
            received_at=received_at,
        )

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[Activity]:
        """One "Connected to wifi" per guest (and window) in the body (pure)."""
        _, logins = self.logins(payload, envelope.received_at, config)
        return unique_activities(login_activity(login, config, tenant=context.tenant) for login in logins)
