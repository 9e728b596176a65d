"""Apaleo: fixture → activities (pure), and end to end through the booking API sandbox."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import (
    APALEO_PASSWORD,
    APALEO_TOKEN,
    context,
    envelope,
    fixture_json,
    glu_activities,
    ingest_queue_empty,
    pms_toml,
)

from connector.errors import UnsupportedEvent
from connector.sources.base import InboundRequest
from connector.vendors.apaleo.pms import forget_tokens
from connector.vendors.apaleo.source import SOURCE, ApaleoConfig

CONFIG = ApaleoConfig(token=APALEO_TOKEN, client_id="c", client_secret="s", account_id="HARB")
KEY = "apaleo:LON:XPGMSXGF-1"


def translate(name: str, **overrides: Any) -> Any:
    reservation = {**fixture_json("apaleo", name), **overrides}
    payload = {"message": fixture_json("apaleo", "reservation_created"), "fetched": {"reservations": [reservation]}}
    return SOURCE.to_activities(envelope("apaleo", "reservation/created"), payload, context(), CONFIG)


def test_confirmed_reservation_is_a_booking():
    [booking] = translate("reservation_confirmed")
    assert (booking.type, booking.business_key, booking.person.email) == ("Booking", KEY, "ada.lovelace@example.com")
    assert booking.booking is not None
    assert booking.booking.status == "Confirmed"
    assert (booking.booking.total, booking.booking.currency_code) == (38000, "GBP")
    assert (booking.booking.number_of_guests, booking.booking.room_type) == (2, "Deluxe Double")
    assert booking.booking.check_in.isoformat() == "2026-06-10T15:00:00+01:00"
    assert booking.happened_at.isoformat() == "2026-05-01T10:12:00+01:00"


def test_in_house_and_checked_out():
    assert [a.type for a in translate("reservation_inhouse")] == ["Booking", "Checked in"]
    activities = translate("reservation_checkedout")
    assert [a.type for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T16:06:41+01:00"
    assert activities[2].happened_at.isoformat() == "2026-06-12T10:40:12+01:00"
    assert activities[0].booking is not None and activities[0].booking.room_name == "204"


def test_no_show_and_canceled_are_glu_canceled():
    for status in ("Canceled", "NoShow"):
        [booking] = translate("reservation_confirmed", status=status)
        assert booking.booking is not None and booking.booking.status == "Canceled"


def test_no_email_is_ignored():
    with pytest.raises(UnsupportedEvent) as caught:
        translate("reservation_confirmed", primaryGuest={"firstName": "Ada", "lastName": "Lovelace"})
    assert caught.value.counter == "no_email"


def test_identify_and_references():
    body = load_fixture("apaleo", "reservation_checked_in")
    env = SOURCE.identify(InboundRequest(body, {}, path_token=APALEO_TOKEN), CONFIG, "harbour")
    assert (env.event_type, env.delivery_id) == ("reservation/checked-in", "9a4f7c1d-1a8e-4a57-b1c9-8b7e6f5d4c02")
    assert SOURCE.references(env, fixture_json("apaleo", "reservation_checked_in"), CONFIG) == ["XPGMSXGF-1"]
    with pytest.raises(UnsupportedEvent):
        SOURCE.identify(InboundRequest(load_fixture("apaleo", "folio_created"), {}), CONFIG, "harbour")


# ---------------------------------------------------------------- end to end


@pytest.fixture
def apaleo_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    forget_tokens()
    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


def basic(user: str = "apaleo-harbour", password: str = APALEO_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def post(client: Any, name: str, *, token: str | None = APALEO_TOKEN, headers: dict[str, str] | None = None) -> Any:
    path = "/webhooks/harbour/apaleo" + (f"/{token}" if token is not None else "")
    return client.post(
        path, data=load_fixture("apaleo", name), headers={"Content-Type": "application/json", **(headers or {})}
    )


def seed(sandbox: Any, name: str) -> None:
    sandbox.sandboxes.extra["apaleo"].seed(fixture_json("apaleo", name))


def test_health_check_ping_is_answered_200_without_job(apaleo_client, redis):
    response = post(apaleo_client, "healthcheck")
    assert response.status_code == 200
    assert ingest_queue_empty(redis)
    assert post(apaleo_client, "healthcheck", token="wrong").status_code == 401


def test_full_stay_is_three_and_replays_reorders_duplicates_change_nothing(apaleo_client, sandbox, work):
    steps = [
        ("reservation_confirmed", "reservation_created"),
        ("reservation_inhouse", "reservation_checked_in"),
        ("reservation_checkedout", "reservation_checked_out"),
    ]
    for reservation, event in steps:
        seed(sandbox, reservation)
        assert post(apaleo_client, event).status_code == 202
        work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert {a["externalReference"] for a in activities} == {KEY}
    for _, event in steps:  # same ids again: transport duplicates
        assert post(apaleo_client, event, token=None, headers=basic()).json["status"] == "duplicate"
    assert len(glu_activities(sandbox)) == 3


def test_checked_out_seen_first_emits_all_three(apaleo_client, sandbox, work):
    seed(sandbox, "reservation_checkedout")
    for event in ("reservation_checked_out", "reservation_checked_in", "reservation_created"):
        assert post(apaleo_client, event).status_code == 202
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking", "Checked in", "Checked out"]


def test_check_in_reverted_and_cancellation_update_status(apaleo_client, sandbox, work):
    for reservation, event in [
        ("reservation_confirmed", "reservation_created"),
        ("reservation_inhouse", "reservation_checked_in"),
        ("reservation_reverted", "reservation_check_in_reverted"),
    ]:
        seed(sandbox, reservation)
        post(apaleo_client, event)
        work()
    activities = glu_activities(sandbox)
    assert [(a["type"], a["externalReference"], (a.get("booking") or {}).get("status")) for a in activities] == [
        ("Booking", KEY, "Confirmed"),
        ("Checked in", KEY, None),
        ("Booking", f"{KEY}:status:1", "Confirmed"),
    ]


def test_deleted_reservation_is_nothing(apaleo_client, sandbox, work):
    assert post(apaleo_client, "reservation_created").status_code == 202  # not in the sandbox: 404
    work()
    assert glu_activities(sandbox) == []


def test_api_errors_retry(apaleo_client, sandbox, work):
    seed(sandbox, "reservation_checkedout")
    sandbox.sandboxes.extra["apaleo"].faults.arm({"mode": "status", "status": 429, "retry_after": 0, "count": 1})
    post(apaleo_client, "reservation_checked_out")
    work(wait_for_retries=15)
    assert len(glu_activities(sandbox)) == 3


def test_wrong_token_or_basic_auth_is_401_and_no_job(apaleo_client, redis):
    assert post(apaleo_client, "reservation_created", token="nope").status_code == 401
    assert post(apaleo_client, "reservation_created", token=None).status_code == 401
    assert post(apaleo_client, "reservation_created", token=None, headers=basic(password="wrong")).status_code == 401
    assert (
        post(apaleo_client, "reservation_created", token=None, headers={"Authorization": "Basic %%%"}).status_code
        == 401
    )
    assert ingest_queue_empty(redis)


def test_other_account_is_rejected(apaleo_client, redis):
    body = load_fixture("apaleo", "reservation_created").replace(b'"HARB"', b'"OTHR"')
    response = apaleo_client.post(
        f"/webhooks/harbour/apaleo/{APALEO_TOKEN}", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert ingest_queue_empty(redis)
