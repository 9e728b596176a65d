"""Mews: fixture → activities (pure), and end to end through the Connector API sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import (
    ENTERPRISE,
    MEWS_ACCESS_TOKEN,
    MEWS_TOKEN,
    RESERVATION,
    context,
    envelope,
    fixture_json,
    glu_activities,
    ingest_queue_empty,
    pms_toml,
)

from connector.errors import UnsupportedEvent
from connector.metrics import read_counters
from connector.sources.base import InboundRequest
from connector.vendors.mews.source import SOURCE, MewsConfig

CONFIG = MewsConfig(
    token=MEWS_TOKEN,
    api_url="http://mews.invalid",
    client_token="c",
    access_token="a",
    enterprise_id=ENTERPRISE,
)
KEY = f"mews:{ENTERPRISE}:{RESERVATION}"


def fetched(state: str, **overrides: Any) -> dict[str, Any]:
    reservation = fixture_json("mews", f"reservation_{state}")
    return {
        "reservations": [reservation],
        "customers": [{**fixture_json("mews", "customer"), **overrides}],
        "resource_categories": [fixture_json("mews", "resource_category")],
        "order_items": fixture_json("mews", "order_items"),
    }


def translate(state: str, **overrides: Any) -> Any:
    payload = {"message": fixture_json("mews", "general_webhook"), "fetched": fetched(state, **overrides)}
    return SOURCE.to_activities(envelope("mews"), payload, context(), CONFIG)


def test_references_each_reservation_once():
    message = fixture_json("mews", "general_webhook")
    assert SOURCE.references(envelope("mews"), message, CONFIG) == [RESERVATION]


def test_confirmed_reservation_is_a_booking_in_property_time():
    [booking] = translate("confirmed")
    assert booking.type == "Booking"
    assert booking.business_key == KEY
    assert booking.source == "mews"
    assert booking.person.email == "grace.hopper@example.com"
    assert booking.person.first_name == "Grace"
    assert booking.happened_at.isoformat() == "2026-05-01T10:12:00+01:00"
    assert booking.booking is not None
    assert booking.booking.model_dump(exclude_none=True) == {
        "check_in": booking.booking.check_in,
        "check_out": booking.booking.check_out,
        "status": "Confirmed",
        "number_of_guests": 2,
        "room_type": "Deluxe Double",
        "external_reference": KEY,
        "total": 38000,  # two nights of 190.0 GBP; the canceled breakfast is left out
        "currency_code": "GBP",
        "channel": "Distributor",
    }
    assert booking.booking.check_in.isoformat() == "2026-06-10T15:00:00+01:00"
    assert booking.booking.check_out.isoformat() == "2026-06-12T11:00:00+01:00"


def test_started_implies_check_in_at_actual_arrival():
    activities = translate("started")
    assert [a.type for a in activities] == ["Booking", "Checked in"]
    assert activities[1].happened_at.isoformat() == "2026-06-10T16:06:41+01:00"


def test_processed_implies_check_out_at_actual_departure():
    activities = translate("processed")
    assert [a.type for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[2].happened_at.isoformat() == "2026-06-12T10:40:12+01:00"
    assert {a.business_key for a in activities} == {KEY}


def test_canceled_reservation_carries_canceled_status():
    [booking] = translate("canceled")
    assert booking.booking is not None and booking.booking.status == "Canceled"


def test_property_timezone_override():
    config = CONFIG.model_copy(update={"property_timezones": {ENTERPRISE: "America/New_York"}})
    payload = {"message": fixture_json("mews", "general_webhook"), "fetched": fetched("confirmed")}
    [booking] = SOURCE.to_activities(envelope("mews"), payload, context(), config)
    assert booking.booking is not None
    assert booking.booking.check_in.isoformat() == "2026-06-10T10:00:00-04:00"


def test_guest_without_email_is_ignored_and_counted():
    with pytest.raises(UnsupportedEvent) as caught:
        translate("confirmed", Email=None)
    assert caught.value.counter == "no_email"


def test_reservation_not_returned_by_the_api_is_skipped():
    payload = {"message": fixture_json("mews", "general_webhook"), "fetched": {"reservations": []}}
    assert SOURCE.to_activities(envelope("mews"), payload, context(), CONFIG) == []


def test_identify_ignores_messages_without_reservation_events():
    request = InboundRequest(load_fixture("mews", "customers_only"), {}, path_token=MEWS_TOKEN)
    with pytest.raises(UnsupportedEvent):
        SOURCE.identify(request, CONFIG, "harbour")


# ---------------------------------------------------------------- end to end


@pytest.fixture
def mews_env(env: Any, sandbox: Any) -> Any:
    settings = env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN=MEWS_ACCESS_TOKEN)
    mews = sandbox.sandboxes.extra["mews"]
    mews.seed("customers", fixture_json("mews", "customer"))
    mews.seed("resource_categories", fixture_json("mews", "resource_category"))
    mews.seed("order_items", *fixture_json("mews", "order_items"))
    return settings


@pytest.fixture
def mews_client(mews_env: Any) -> Any:
    from connector.web import create_app

    return create_app(mews_env).test_client()


def post(client: Any, body: bytes | None = None, token: str = MEWS_TOKEN, tenant: str = "harbour") -> Any:
    body = body if body is not None else load_fixture("mews", "general_webhook")
    return client.post(f"/webhooks/{tenant}/mews/{token}", data=body, headers={"Content-Type": "application/json"})


def set_state(sandbox: Any, state: str) -> None:
    sandbox.sandboxes.extra["mews"].seed("reservations", fixture_json("mews", f"reservation_{state}"))


def assert_three(sandbox: Any) -> None:
    activities = glu_activities(sandbox)
    assert sorted(a["type"] for a in activities) == ["Booking", "Checked in", "Checked out"]
    assert {a["externalReference"] for a in activities} == {KEY}
    booking = next(a for a in activities if a["type"] == "Booking")
    assert booking["booking"]["total"] == 38000
    assert booking["booking"]["currencyCode"] == "GBP"
    assert booking["booking"]["checkIn"] == "2026-06-10T15:00:00+01:00"


def test_full_stay_in_order_is_exactly_three_activities(mews_client, sandbox, work, redis):
    for state in ("confirmed", "started", "processed"):
        set_state(sandbox, state)
        response = post(mews_client)
        assert response.status_code == 202, response.json
        work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[0]["booking"]["status"] == "Confirmed"
    assert activities[1]["happenedAt"] == "2026-06-10T16:06:41+01:00"
    assert_three(sandbox)
    # the same messages replayed and duplicated: still three
    for _ in range(3):
        assert post(mews_client).status_code == 202
    work()
    assert_three(sandbox)
    posts = sandbox.sandboxes.glu.state()["activity_posts"]
    assert posts == 3  # the stay state, not Glu's dedup, stopped the repeats
    calls = sandbox.sandboxes.extra["mews"].state()["calls"]
    reservation_calls = [c for c in calls if c["operation"].startswith("reservations/")]
    assert all(c["ids"] == [RESERVATION] for c in reservation_calls)  # each id once per message
    assert len(reservation_calls) == 6


def test_reordered_and_duplicated_messages_still_three(mews_client, sandbox, work):
    set_state(sandbox, "processed")  # the check-out is the first thing the worker sees
    for _ in range(3):
        assert post(mews_client).status_code == 202
    work()
    activities = glu_activities(sandbox)
    assert [a["type"] for a in activities] == ["Booking", "Checked in", "Checked out"]
    assert activities[0]["booking"]["status"] == "Processed"
    assert_three(sandbox)


def test_cancellation_after_booking_updates_status(mews_client, sandbox, work):
    set_state(sandbox, "confirmed")
    post(mews_client)
    work()
    set_state(sandbox, "canceled")
    post(mews_client)
    post(mews_client)
    work()
    activities = glu_activities(sandbox)
    assert [(a["type"], a["externalReference"], a["booking"]["status"]) for a in activities] == [
        ("Booking", KEY, "Confirmed"),
        ("Booking", f"{KEY}:status:1", "Canceled"),
    ]


def test_batch_of_many_reservations_gives_one_delivery_job_each(mews_client, sandbox, work, redis):
    from connector.sandbox.pms_samples import mews_batch, seed_mews_batch

    body, _path = mews_batch(5, enterprise_id=ENTERPRISE)
    seed_mews_batch(sandbox.sandboxes.extra["mews"], 5, enterprise_id=ENTERPRISE)
    assert post(mews_client, body).status_code == 202
    work()
    activities = glu_activities(sandbox)
    assert len(activities) == 5 * 3
    assert len({a["externalReference"] for a in activities}) == 5


def test_guest_without_email_is_counted(mews_client, sandbox, work, redis):
    set_state(sandbox, "confirmed")
    sandbox.sandboxes.extra["mews"].seed("customers", {**fixture_json("mews", "customer"), "Email": None})
    post(mews_client)
    work()
    assert glu_activities(sandbox) == []
    assert read_counters(redis)["ignored|reason=no_email|source=mews|tenant=harbour"] == 1


def test_mews_api_failure_is_retried(mews_client, sandbox, work):
    set_state(sandbox, "processed")
    sandbox.sandboxes.extra["mews"].faults.arm({"mode": "status", "status": 503, "count": 1})
    post(mews_client)
    work(wait_for_retries=15)
    assert_three(sandbox)


def test_wrong_or_missing_token_is_401_and_no_job(mews_client, redis):
    assert post(mews_client, token="not-the-token").status_code == 401
    assert post(mews_client, token=json.dumps("x")).status_code == 401
    response = mews_client.post(
        "/webhooks/harbour/mews", data=load_fixture("mews", "general_webhook"), content_type="application/json"
    )
    assert response.status_code == 401
    assert ingest_queue_empty(redis)


def test_one_tenants_token_does_not_open_another(mews_client, redis):
    from pms_helpers import MARINA_MEWS_TOKEN

    assert post(mews_client, token=MARINA_MEWS_TOKEN, tenant="harbour").status_code == 401
    assert post(mews_client, token=MEWS_TOKEN, tenant="marina").status_code == 401
    assert ingest_queue_empty(redis)


def test_other_enterprise_is_rejected(mews_client, redis):
    body = load_fixture("mews", "general_webhook").replace(ENTERPRISE.encode(), b"00000000-0000-0000-0000-000000000000")
    assert post(mews_client, body).status_code == 401
    assert ingest_queue_empty(redis)


def test_message_without_reservation_events_is_ignored(mews_client, redis):
    response = post(mews_client, load_fixture("mews", "customers_only"))
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert ingest_queue_empty(redis)


def test_one_unusable_reservation_does_not_hold_up_the_batch():
    broken = {**fixture_json("mews", "reservation_confirmed"), "Id": "00000000-1111-2222-3333-444444444444"}
    del broken["CreatedUtc"]
    message = fixture_json("mews", "general_webhook")
    message["Events"].insert(0, {"Discriminator": "ServiceOrderUpdated", "Value": {"Id": broken["Id"]}})
    data = fetched("confirmed")
    data["reservations"].append(broken)
    result = SOURCE.to_activities(envelope("mews"), {"message": message, "fetched": data}, context(), CONFIG)
    assert [a.business_key for a in result] == [KEY]
    assert [s.counter for s in result.skipped] == ["invalid_reservation"]


def test_mews_batch_sample_for_benchmarks():
    from connector.sandbox.pms_samples import DEMO_MEWS_TOKEN, mews_batch, mews_batch_data

    body, path = mews_batch(50)
    assert path == f"/webhooks/demo/mews/{DEMO_MEWS_TOKEN}"
    message = json.loads(body)
    assert len(message["Events"]) == 100
    assert len(SOURCE.references(envelope("mews"), message, CONFIG)) == 50
    data = mews_batch_data(50)
    assert {r["Id"] for r in data["reservations"]} == set(SOURCE.references(envelope("mews"), message, CONFIG))
    assert mews_batch(3, salt="a")[0] != mews_batch(3, salt="b")[0]


def test_rejected_credentials_fail_the_ingest_job_with_the_reason(env, sandbox, work, redis):
    from rq.registry import FailedJobRegistry

    from connector.queue import INGEST_QUEUE, fetch_job, get_queue
    from connector.web import create_app

    client = create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="revoked-token")).test_client()
    set_state(sandbox, "confirmed")
    job_id = post(client).json["job"]
    work()
    failed = FailedJobRegistry(queue=get_queue(redis, INGEST_QUEUE))
    assert job_id in failed.get_job_ids()
    job = fetch_job(redis, job_id)
    assert job.retries_left == 0  # a 401 is not retried
    result = job.latest_result()
    info = (result.exc_string if result else "") or ""
    assert "mews answered 401" in info
    assert "revoked-token" not in info and MEWS_ACCESS_TOKEN not in info
    assert glu_activities(sandbox) == []
