"""Hostaway: full reservation objects, basic auth, check-in/out inferred from dates."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import HOSTAWAY_PASSWORD, context, glu_activities, ingest_queue_empty, pms_toml

from connector.errors import UnsupportedEvent
from connector.sources.base import Envelope, InboundRequest
from connector.vendors.hostaway.source import SOURCE, HostawayConfig

CONFIG = HostawayConfig(username="hostaway-harbour", password=HOSTAWAY_PASSWORD, account_id=10452)
KEY = "hostaway:40160:4521337"


def translate(name: str, received: str, **overrides: Any) -> Any:
    body = json.loads(load_fixture("hostaway", name))
    target = body["data"] if "data" in body else body
    target.update(overrides)
    env = Envelope("hostaway", "harbour", "reservation.updated", "d", received)
    return SOURCE.to_activities(env, body, context(), CONFIG)


def test_created_before_arrival_is_a_booking():
    [booking] = translate("reservation_created", "2026-05-01T09:12:05+00:00")
    assert (booking.business_key, booking.person.email) == (KEY, "ada.lovelace@example.com")
    assert booking.happened_at.isoformat() == "2026-05-01T10:12:00+01:00"
    assert booking.booking is not None
    assert (booking.booking.total, booking.booking.currency_code, booking.booking.status) == (38050, "GBP", "Confirmed")
    assert booking.booking.check_in.isoformat() == "2026-06-10T16:00:00+01:00"  # checkInTime 16
    assert booking.booking.check_out.isoformat() == "2026-06-12T10:00:00+01:00"
    assert (booking.booking.number_of_guests, booking.booking.room_type) == (2, "Harbour Loft 2B")


def test_message_received_during_the_stay_implies_check_in():
    activities = translate("reservation_updated", "2026-06-10T15:30:05+00:00")
    assert [a.type for a in activities] == ["Booking", "Checked in"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T16:00:00+01:00"


def test_message_received_after_departure_implies_check_out():
    activities = translate("reservation_updated", "2026-06-13T08:00:00+00:00")
    assert [a.type for a in activities] == ["Booking", "Checked in", "Checked out"]


def test_cancelled_after_arrival_is_not_checked_in():
    [booking] = translate("reservation_cancelled", "2026-06-13T08:00:00+00:00")
    assert booking.booking is not None and booking.booking.status == "Canceled"


def test_no_email_is_ignored():
    with pytest.raises(UnsupportedEvent) as caught:
        translate("reservation_created", "2026-05-01T09:12:05+00:00", guestEmail=None)
    assert caught.value.counter == "no_email"


def test_other_account_is_ignored():
    body = load_fixture("hostaway", "reservation_created").replace(b"10452", b"99999")
    with pytest.raises(UnsupportedEvent):
        SOURCE.identify(InboundRequest(body, {}), CONFIG, "harbour")


# ---------------------------------------------------------------- end to end


@pytest.fixture
def ha_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


def auth(password: str = HOSTAWAY_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"hostaway-harbour:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def message(arrival: date, departure: date, updated: str, status: str = "modified") -> bytes:
    """The fixture with the stay moved relative to today (check-in/out are inferred from the clock)."""
    body = json.loads(load_fixture("hostaway", "reservation_created"))
    body["data"].update(
        arrivalDate=arrival.isoformat(),
        departureDate=departure.isoformat(),
        checkInTime=0,
        checkOutTime=0,
        status=status,
        updatedOn=updated,
    )
    return json.dumps(body, indent=4).encode()


def test_full_stay_is_three_and_replays_change_nothing(ha_client, sandbox, work):
    today = datetime.now(UTC).date()
    bodies = [
        message(today + timedelta(days=30), today + timedelta(days=32), "2026-05-01 09:12:00", "new"),
        message(today - timedelta(days=1), today + timedelta(days=1), "2026-05-02 09:00:00"),
        message(today - timedelta(days=2), today, "2026-05-03 09:00:00"),
    ]
    for body in bodies:
        assert ha_client.post("/webhooks/harbour/hostaway", data=body, headers=auth()).status_code == 202
        work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking", "Checked in", "Checked out"]
    for body in bodies:  # replayed: duplicates
        assert ha_client.post("/webhooks/harbour/hostaway", data=body, headers=auth()).json["status"] == "duplicate"
    for body in reversed(bodies):  # re-sent with a new byte (a new delivery), reversed
        assert ha_client.post("/webhooks/harbour/hostaway", data=body + b"\n", headers=auth()).status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking", "Checked in", "Checked out"]
    assert {a["externalReference"] for a in glu_activities(sandbox)} == {KEY}


def test_bad_or_missing_basic_auth_is_401_and_no_job(ha_client, redis):
    body = load_fixture("hostaway", "reservation_created")
    assert ha_client.post("/webhooks/harbour/hostaway", data=body, headers=auth("wrong")).status_code == 401
    response = ha_client.post("/webhooks/harbour/hostaway", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    bad = {"Authorization": "Basic !!!", "Content-Type": "application/json"}
    assert ha_client.post("/webhooks/harbour/hostaway", data=body, headers=bad).status_code == 401
    assert ingest_queue_empty(redis)
