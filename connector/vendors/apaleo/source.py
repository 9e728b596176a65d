"""Apaleo reservation webhooks → Booking / Checked in / Checked out.

Vendor docs: https://apaleo.dev/guides/start/webhooks (configuration, payload, best practices).

* Signing: none. Apaleo recommends HTTPS plus basic auth or a unique token in the URL: the
  tenant configures ``token`` (URL ``/webhooks/<tenant>/apaleo/<token>``) and/or
  ``username`` + ``password`` (``Authorization: Basic``); either, when it matches, authenticates.
  ``account_id`` / ``property_ids``, when set, must match the message too.
* Delivery id: the envelope ``id`` (unique per event; Apaleo may deliver an event twice).
* The subscription health check (``{"topic": "system", "type": "healthcheck"}``) is answered 200
  without a job, so subscribing succeeds.
* Events are id-only (``data.entityId``): the worker fetches ``GET /booking/v1/reservations/{id}``
  and derives the activities from its ``status``: ``Confirmed`` → ``InHouse`` (checked in) →
  ``CheckedOut``; ``Canceled`` and ``NoShow`` become a booking status update (Glu ``Canceled``);
  ``check-in-reverted`` brings ``Confirmed`` back, also a status update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from connector.activities import Activity, BookingStatus
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.sources.base import (
    BodyError,
    Envelope,
    HttpBaseUrl,
    ImmediateAnswer,
    InboundRequest,
    SourceAdapter,
    TranslationContext,
    as_list,
    as_object,
    json_object,
    require_basic_auth,
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

RESERVATION_EVENTS = frozenset(
    {"created", "changed", "amended", "canceled", "checked-in", "check-in-reverted", "checked-out", "set-to-no-show"}
)
STATUSES: dict[str, BookingStatus] = {
    "Confirmed": "Confirmed",
    "InHouse": "Started",
    "CheckedOut": "Processed",
    "Canceled": "Canceled",
    "NoShow": "Canceled",
}


class ApaleoConfig(PmsConfig):
    """``[tenants.<t>.sources.apaleo]``."""

    credentials = ("token", "username", "password")
    generated = ("token",)
    path_credential = "token"

    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    client_id: str
    client_secret: SecretStr
    api_url: HttpBaseUrl = "https://api.apaleo.com"
    identity_url: HttpBaseUrl = "https://identity.apaleo.com"
    account_id: str | None = None
    property_ids: list[str] | None = None


def _passes(check: Callable[[], None]) -> bool:
    """Whether an authentication check passes (it raises ``SignatureError`` when not)."""
    try:
        check()
    except SignatureError:
        return False
    return True


class ApaleoSource(SourceAdapter):
    """The ``apaleo`` source adapter (thin events; see :mod:`connector.vendors.apaleo.pms`)."""

    name = "apaleo"
    config_model = ApaleoConfig
    setup = SetupGuide(
        title="Apaleo",
        group="pms",
        console="Apaleo (your app's client credentials) and the Apaleo Webhook API",
        steps=(
            "In Apaleo, create client credentials for the connector and enter the Client ID and Client "
            "secret here (the worker reads each reservation with them).",
            "Create a webhook subscription (POST https://webhook.apaleo.com/v1/subscriptions) with "
            "endpointUrl = the webhook URL above and events reservation/*; leave propertyIds out for "
            "every property, or list yours.",
            "Apaleo sends a health check when subscribing: the connector answers it, so the subscription is created.",
        ),
        docs="https://apaleo.dev/guides/webhook/create-subscription.html",
        unverified="Where Apaleo's console creates client credentials; subscriptions are made with the "
        "Webhook API (no console form for them was found).",
    )
    content_types = ("application/json",)

    def verify(self, request: InboundRequest, config: ApaleoConfig) -> None:
        """URL token or basic auth (whichever is configured and matches); then account/property."""
        token_ok = _passes(lambda: require_token(request.path_token, config.token))
        basic_ok = _passes(
            lambda: require_basic_auth(request.header("authorization"), config.username, config.password)
        )
        if not (token_ok or basic_ok):
            if config.token is None and config.password is None:
                raise SignatureError("no token or basic auth configured for this source")
            raise SignatureError("token or basic auth does not match")
        try:
            body = request.json()
        except BodyError:
            return  # answered 400 by the web tier
        if not isinstance(body, dict):
            return
        if config.account_id and body.get("accountId") != config.account_id:
            raise SignatureError("message belongs to another Apaleo account")
        property_id = body.get("propertyId")
        if config.property_ids is not None and property_id and property_id not in config.property_ids:
            raise SignatureError("message belongs to a property of another tenant")

    def answer_ping(self, request: InboundRequest, config: ApaleoConfig) -> ImmediateAnswer | None:
        """The subscription health check gets a 200 (and no job)."""
        try:
            body = json_object(request)
        except PayloadError:
            return None  # identify answers 400
        if str(body.get("topic", "")).lower() == "system" and body.get("type") == "healthcheck":
            return ImmediateAnswer(200, {"status": "ok"})
        return None

    def identify(self, request: InboundRequest, config: ApaleoConfig, tenant: str) -> Envelope:
        """``reservation/<type>`` and the envelope ``id``; other topics and types are ignored."""
        body = json_object(request)
        topic, kind, ident = str(body.get("topic", "")).lower(), body.get("type"), body.get("id")
        if not isinstance(ident, str) or not ident:
            raise PayloadError('body has no "id"')
        if not isinstance(kind, str):
            raise PayloadError('"type" is not a string')
        if topic != "reservation" or kind not in RESERVATION_EVENTS:
            raise UnsupportedEvent(f"event {topic}/{kind} does not change a stay", counter="unsupported_type")
        entity_id(body)
        return Envelope(
            source=self.name,
            tenant=tenant,
            event_type=f"reservation/{kind}",
            delivery_id=ident,
            received_at=request.received_at,
        )

    def references(self, envelope: Envelope, payload: Any, config: ApaleoConfig) -> list[str]:
        """The reservation id to fetch (pure)."""
        return [entity_id(payload)]

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: ApaleoConfig
    ) -> list[Activity]:
        """``{"message", "fetched"}`` → the implied activities (pure)."""
        result = Translation()
        fetched = as_object(as_object(payload, "payload").get("fetched"), "fetched")
        for index, reservation in enumerate(as_list(fetched.get("reservations"), "fetched.reservations")):
            reservation = as_object(reservation, f"reservations[{index}]")
            result.extend(
                implied_activities(snapshot(reservation, context, config), tenant=context.tenant, source="apaleo")
            )
        return result


def entity_id(body: Any) -> str:
    """The reservation id of an event, ``data.entityId``."""
    value = as_object(as_object(body, "body").get("data"), "data").get("entityId")
    if not isinstance(value, str) or not value:
        raise PayloadError('body has no "data.entityId"')
    return value


def snapshot(reservation: dict[str, Any], context: TranslationContext, config: ApaleoConfig) -> StaySnapshot:
    """One Apaleo reservation as a snapshot (a field of the wrong type is a ``PayloadError`` naming it)."""
    with valid_event():
        return _snapshot(reservation, context, config)


def _snapshot(reservation: dict[str, Any], context: TranslationContext, config: ApaleoConfig) -> StaySnapshot:
    ident = reservation.get("id")
    if not isinstance(ident, str) or not ident:
        raise PayloadError("reservation has no id")
    status = STATUSES.get(str(reservation.get("status")))
    if status is None:
        raise UnsupportedEvent(f"reservation status {reservation.get('status')!r} is unknown", counter="unknown_state")
    prop = as_object(reservation.get("property"), "property")
    property_id = str(prop.get("id") or "")
    if not property_id:
        raise PayloadError("reservation has no property.id")
    zone = config.zone(context, property_id)
    primary = as_object(reservation.get("primaryGuest"), "primaryGuest")
    person = guest(primary.get("email"), primary.get("firstName"), primary.get("lastName"), primary.get("phone"))
    total = as_object(reservation.get("totalGrossAmount"), "totalGrossAmount")
    amount, currency = total.get("amount"), total.get("currency")
    adults = reservation.get("adults")
    children = as_list(reservation.get("childrenAges"), "childrenAges")
    checked_in = parse_optional_instant(reservation.get("checkInTime"), "checkInTime")
    checked_out = parse_optional_instant(reservation.get("checkOutTime"), "checkOutTime")
    unit_group = as_object(reservation.get("unitGroup"), "unitGroup")
    unit = as_object(reservation.get("unit"), "unit")
    return StaySnapshot(
        pms="apaleo",
        property_id=property_id,
        reservation_id=ident,
        status=status,
        guest=person,
        booked_at=local(parse_instant(reservation.get("created"), "created"), zone),
        updated_at=parse_instant(reservation.get("modified") or reservation.get("created"), "modified"),
        check_in=local(parse_instant(reservation.get("arrival"), "arrival"), zone),
        check_out=local(parse_instant(reservation.get("departure"), "departure"), zone),
        checked_in_at=local(checked_in, zone) if checked_in else None,
        checked_out_at=local(checked_out, zone) if checked_out else None,
        number_of_guests=adults + len(children) if isinstance(adults, int) else None,
        room_type=unit_group.get("name") or unit_group.get("code"),
        room_name=unit.get("name"),
        **stay_total(amount, currency),
        channel=reservation.get("channelCode"),
    )


SOURCE = ApaleoSource()
