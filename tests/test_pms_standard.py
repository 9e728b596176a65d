"""Standard Webhooks stay events: schema, translation, and end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import (
    STANDARD_OLD_SECRET,
    STANDARD_SECRET,
    context,
    envelope,
    glu_activities,
    ingest_queue_empty,
    pms_toml,
    standard_headers,
)

from connector.errors import PayloadError, UnsupportedEvent
from connector.vendors.standard.source import SOURCE, StandardConfig
from connector.vendors.standard.stay_events import json_schema

SCHEMA = Path(__file__).parent.parent / "schemas" / "stay-event.schema.json"
KEY = "harbourpms:LON-1:RES-20931"
CONFIG = StandardConfig(secrets=[STANDARD_SECRET])


def translate(name: str) -> Any:
    body = json.loads(load_fixture("standard", name))
    return SOURCE.to_activities(envelope("standard", body["type"]), body, context(), CONFIG)


def test_published_schema_is_the_generated_one():
    assert json.loads(SCHEMA.read_text()) == json_schema(), (
        "run: python -m connector.vendors.standard.stay_events > schemas/stay-event.schema.json"
    )


def test_schema_names_the_stay_types():
    schema = json_schema()
    assert schema["properties"]["type"]["enum"] == [
        "stay.booked",
        "stay.updated",
        "stay.checked_in",
        "stay.checked_out",
        "stay.canceled",
    ]
    assert set(schema["$defs"]["StayData"]["required"]) == {
        "property_id",
        "reservation_id",
        "guest",
        "booked_at",
        "updated_at",
        "arrival",
        "departure",
    }


def test_booked_becomes_a_booking_with_local_dates_and_minor_units():
    [booking] = translate("stay_booked")
    assert booking.type == "Booking" and booking.business_key == KEY and booking.source == "standard"
    assert booking.person.email == "ada.lovelace@example.com"
    assert booking.happened_at.isoformat() == "2026-05-01T10:12:00+01:00"
    assert booking.booking is not None
    assert booking.booking.check_in.isoformat() == "2026-06-10T15:00:00+01:00"
    assert booking.booking.check_out.isoformat() == "2026-06-12T11:00:00+01:00"
    assert (booking.booking.total, booking.booking.currency_code) == (38000, "GBP")
    assert booking.booking.status == "Confirmed"
    assert (booking.booking.number_of_guests, booking.booking.room_type) == (2, "Deluxe Double")


def test_checked_out_implies_the_whole_stay():
    activities = translate("stay_checked_out")
    assert [a.type for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T16:06:41+01:00"
    assert activities[2].happened_at.isoformat() == "2026-06-12T10:40:12+01:00"


def test_canceled_status():
    [booking] = translate("stay_canceled")
    assert booking.booking is not None and booking.booking.status == "Canceled"


def test_status_defaults_from_type_and_timezone_from_data():
    body = json.loads(load_fixture("standard", "stay_checked_in"))
    del body["data"]["status"]
    body["data"]["timezone"] = "Asia/Tokyo"
    activities = SOURCE.to_activities(envelope("standard", "stay.checked_in"), body, context(), CONFIG)
    assert [a.type for a in activities] == ["Booking", "Checked in"]
    assert activities[0].booking is not None
    assert activities[0].booking.check_in.isoformat() == "2026-06-10T15:00:00+09:00"


def test_no_email_is_ignored_with_reason():
    with pytest.raises(UnsupportedEvent) as caught:
        translate("stay_booked_no_email")
    assert caught.value.counter == "no_email"


def test_invalid_data_names_fields_without_values():
    body = json.loads(load_fixture("standard", "stay_booked"))
    body["data"]["total"] = {"amount": 380.0, "currency": "GBP"}
    body["data"]["booked_at"] = "2026-05-01T10:12:00"
    with pytest.raises(PayloadError) as caught:
        SOURCE.to_activities(envelope("standard", "stay.booked"), body, context(), CONFIG)
    assert "booked_at" in str(caught.value) and "total.amount" in str(caught.value)
    assert "ada" not in str(caught.value).lower()


# ---------------------------------------------------------------- end to end


@pytest.fixture
def std_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


def send(client: Any, name: str, msg_id: str, **kwargs: Any) -> Any:
    body = load_fixture("standard", name)
    return client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, msg_id, **kwargs))


STAY = ("stay_booked", "stay_checked_in", "stay_checked_out")


def test_full_stay_is_three_activities_replays_reorders_duplicates_too(std_client, sandbox, work):
    for name in STAY:
        assert send(std_client, name, f"msg_{name}").status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking", "Checked in", "Checked out"]
    # replayed with the same ids: transport dedup
    for name in STAY:
        assert send(std_client, name, f"msg_{name}").json["status"] == "duplicate"
    # re-sent under new ids, reversed: the stay state
    for name in reversed(STAY):
        assert send(std_client, name, f"msg_again_{name}").status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking", "Checked in", "Checked out"]
    assert {a["externalReference"] for a in glu_activities(sandbox)} == {KEY}


def test_checkout_first_then_late_events_still_three(std_client, sandbox, work):
    for name in reversed(STAY):
        assert send(std_client, name, f"msg_{name}").status_code == 202
        work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[0]["booking"]["status"] == "Processed"


def test_rotation_accepts_old_or_new_secret(std_client, work):
    assert send(std_client, "stay_booked", "m1", secrets=(STANDARD_OLD_SECRET,)).status_code == 202
    assert send(std_client, "stay_booked", "m2", secrets=("whsec_" + "QUJD" * 8, STANDARD_SECRET)).status_code == 202


def test_bad_signature_and_stale_timestamp_are_401_and_no_job(std_client, redis):
    wrong = "whsec_" + "QUJD" * 8
    assert send(std_client, "stay_booked", "m1", secrets=(wrong,)).status_code == 401
    assert send(std_client, "stay_booked", "m2", at=time.time() - 6 * 60).status_code == 401
    assert send(std_client, "stay_booked", "m3", at=time.time() + 6 * 60).status_code == 401
    body = load_fixture("standard", "stay_booked")
    headers = standard_headers(body, "m4")
    tampered = body.replace(b"380.00", b"1.00")
    assert std_client.post("/webhooks/harbour/standard", data=tampered, headers=headers).status_code == 401
    assert ingest_queue_empty(redis)
