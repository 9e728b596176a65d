"""Cloudbeds: fixture → activities (pure), and end to end through the API sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import (
    CLOUDBEDS_TOKEN,
    context,
    envelope,
    fixture_json,
    glu_activities,
    ingest_queue_empty,
    pms_toml,
)

from connector.errors import UnsupportedEvent
from connector.sources.base import InboundRequest
from connector.vendors.cloudbeds.source import SOURCE, CloudbedsConfig

CONFIG = CloudbedsConfig(token=CLOUDBEDS_TOKEN, api_key="k", property_id="318267", currency="GBP")
KEY = "cloudbeds:318267:7061304407766"


def translate(reservation: str, message: str = "reservation_created", **overrides: Any) -> Any:
    payload = {
        "message": fixture_json("cloudbeds", message),
        "fetched": {"reservations": [{**fixture_json("cloudbeds", reservation), **overrides}]},
    }
    return SOURCE.to_activities(envelope("cloudbeds", "reservation/created"), payload, context(), CONFIG)


def test_confirmed_is_a_booking_with_dates_at_house_times():
    [booking] = translate("reservation_confirmed")
    assert (booking.business_key, booking.person.email, booking.person.first_name) == (
        KEY,
        "ada.lovelace@example.com",
        "Ada",
    )
    assert booking.happened_at.isoformat() == "2026-05-01T10:12:00+01:00"
    assert booking.booking is not None
    assert booking.booking.check_in.isoformat() == "2026-06-10T15:00:00+01:00"
    assert booking.booking.check_out.isoformat() == "2026-06-12T11:00:00+01:00"
    assert (booking.booking.total, booking.booking.currency_code, booking.booking.status) == (38000, "GBP", "Confirmed")
    assert (booking.booking.number_of_guests, booking.booking.room_type, booking.booking.room_name) == (
        2,
        "Deluxe Double",
        "204",
    )


def test_status_changed_timestamp_dates_the_check_in():
    activities = translate("reservation_checked_in", "status_checked_in")
    assert [a.type for a in activities] == ["Booking", "Checked in"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T16:06:41.816514+01:00"


def test_checked_out_reservation_seen_from_an_older_message():
    activities = translate("reservation_checked_out", "reservation_created")
    assert [a.type for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T15:00:00+01:00"  # scheduled: no event time


def test_no_currency_configured_means_no_total():
    payload = {
        "message": fixture_json("cloudbeds", "reservation_created"),
        "fetched": {"reservations": [fixture_json("cloudbeds", "reservation_confirmed")]},
    }
    config = CONFIG.model_copy(update={"currency": None})
    [booking] = SOURCE.to_activities(envelope("cloudbeds"), payload, context(), config)
    assert booking.booking is not None and booking.booking.total is None


def test_no_email_is_ignored():
    with pytest.raises(UnsupportedEvent) as caught:
        translate("reservation_confirmed", guestEmail="")
    assert caught.value.counter == "no_email"


def test_other_events_are_ignored_at_the_door():
    with pytest.raises(UnsupportedEvent):
        SOURCE.identify(InboundRequest(load_fixture("cloudbeds", "guest_created"), {}), CONFIG, "harbour")


# ---------------------------------------------------------------- end to end


@pytest.fixture
def cb_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


def post(client: Any, name: str, token: str = CLOUDBEDS_TOKEN) -> Any:
    return client.post(
        f"/webhooks/harbour/cloudbeds/{token}",
        data=load_fixture("cloudbeds", name),
        headers={"Content-Type": "application/json"},
    )


def seed(sandbox: Any, name: str) -> None:
    sandbox.sandboxes.extra["cloudbeds"].seed(fixture_json("cloudbeds", name))


STEPS = [
    ("reservation_confirmed", "reservation_created"),
    ("reservation_checked_in", "status_checked_in"),
    ("reservation_checked_out", "status_checked_out"),
]


def test_full_stay_is_three_and_replays_change_nothing(cb_client, sandbox, work):
    for reservation, event in STEPS:
        seed(sandbox, reservation)
        assert post(cb_client, event).status_code == 202
        work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[1]["happenedAt"] == "2026-06-10T16:06:41.816514+01:00"
    for _, event in STEPS:
        assert post(cb_client, event).json["status"] == "duplicate"
    assert len(glu_activities(sandbox)) == 3


def test_reordered_messages_still_three(cb_client, sandbox, work):
    seed(sandbox, "reservation_checked_out")
    for _, event in reversed(STEPS):
        assert post(cb_client, event).status_code == 202
    work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[2]["happenedAt"] == "2026-06-12T10:40:12.402113+01:00"


def test_api_failure_is_retried(cb_client, sandbox, work):
    seed(sandbox, "reservation_checked_out")
    sandbox.sandboxes.extra["cloudbeds"].faults.arm({"mode": "status", "status": 502, "count": 1})
    post(cb_client, "status_checked_out")
    work(wait_for_retries=15)
    assert len(glu_activities(sandbox)) == 3


def test_wrong_token_is_401_and_no_job(cb_client, redis):
    assert post(cb_client, "reservation_created", token="guess").status_code == 401
    response = cb_client.post(
        "/webhooks/harbour/cloudbeds",
        data=load_fixture("cloudbeds", "reservation_created"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    other = load_fixture("cloudbeds", "reservation_created").replace(b"318267", b"999999")
    response = cb_client.post(
        f"/webhooks/harbour/cloudbeds/{CLOUDBEDS_TOKEN}", data=other, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert ingest_queue_empty(redis)
