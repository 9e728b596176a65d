"""One contract for every loyalty platform: each activity lands exactly once, in its vocabulary.

The same stream — a Shopify order, a stay (Booking, Checked in, Checked out) and a Wi-Fi login —
is enqueued twice and partly a third time, then delivered by real burst RQ workers over real HTTP
to each platform's sandbox while faults are injected (500s, a 429 with Retry-After, a dropped
connection, a fatal 4xx that sends one job to the failed registry). Support then replays: the
failed job is requeued from the registry and finished jobs are run again. Each platform must end
up holding each activity once, shaped the way that platform expects.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from redis import Redis
from rq.registry import FailedJobRegistry

from connector import jobs
from connector.activities import Activity, Booking, Person
from connector.metrics import read_counters
from connector.platforms.registry import PLATFORMS as REGISTERED
from connector.queue import DELIVERY_QUEUE, fetch_job, get_queue
from connector.sandbox.server import SandboxServer
from connector.settings import Settings

PLATFORMS = list(REGISTERED)  # every registered platform
SHOP = "contract-shop.myshopify.com"
ORDER_KEY = f"shopify:{SHOP}:order:6200407294252"
STAY_KEY = "mews:harbour-quay:RES-20261124-77"
WIFI_KEY = "purple:venue-7:4f1c2a9be0d3c5a1e2f30b11:2026-11-24"
CANCELLED_KEY = "mews:harbour-quay:RES-20261201-12"
CANCELLATION_KEY = f"{CANCELLED_KEY}:status:1"  # how PMS sources key a booking status update

ADA = Person(email="Ada.Lovelace@example.com", first_name="Ada", last_name="Lovelace", marketing_consent=True)
GRACE = Person(email="grace.hopper@example.com", first_name="Grace")


def loyalty_table(platform: str, url: str, **extra: str) -> str:
    """The ``[tenants.contract.loyalty]`` table for a platform pointed at the sandbox (its
    sandbox's ``tenant_table``; ``extra`` values are TOML as written)."""
    table = REGISTERED[platform].sandbox.load().tenant_table(url)
    lines = [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "[tenants.contract.loyalty]\n" + "\n".join(lines) + "\n"


def tenant_toml(platform: str, url: str, **extra: str) -> str:
    """One tenant on ``platform`` with a Shopify source."""
    return textwrap.dedent(f"""
        [tenants.contract]
        timezone = "Europe/London"
        [tenants.contract.sources.shopify]
        shop_domain = "{SHOP}"
        secrets = ["shpss_contract_secret"]
        """) + loyalty_table(platform, url, **extra)


def stream() -> list[Activity]:
    """What every platform must receive: an order, a whole stay, a booking and its cancellation
    (a booking status update, keyed as PMS sources key them), a Wi-Fi login."""
    stay = {
        "check_in": datetime.fromisoformat("2026-11-24T15:00:00+00:00"),
        "check_out": datetime.fromisoformat("2026-11-26T11:00:00+00:00"),
        "number_of_guests": 2,
        "room_type": "Double",
        "total": 45000,
        "currency_code": "GBP",
    }
    base = {"tenant": "contract", "person": ADA}
    return [
        Activity(
            type="Shopify order",
            source="shopify",
            business_key=ORDER_KEY,
            happened_at=datetime.fromisoformat("2026-11-23T23:10:14-05:00"),
            spend=18690,
            currency_code="HKD",
            attributes={"order_number": 1042},
            **base,
        ),
        Activity(
            type="Booking",
            source="mews",
            business_key=STAY_KEY,
            happened_at=datetime.fromisoformat("2026-11-20T09:30:00+00:00"),
            booking=Booking(status="Confirmed", **stay),
            **base,
        ),
        Activity(
            type="Checked in",
            source="mews",
            business_key=STAY_KEY,
            happened_at=datetime.fromisoformat("2026-11-24T15:42:00+00:00"),
            **base,
        ),
        Activity(
            type="Checked out",
            source="mews",
            business_key=STAY_KEY,
            happened_at=datetime.fromisoformat("2026-11-26T10:05:00+00:00"),
            **base,
        ),
        Activity(
            type="Booking",
            source="mews",
            business_key=CANCELLED_KEY,
            happened_at=datetime.fromisoformat("2026-11-21T08:00:00+00:00"),
            booking=Booking(status="Confirmed", external_reference=CANCELLED_KEY, **stay),
            **base,
        ),
        Activity(
            type="Booking",
            source="mews",
            business_key=CANCELLATION_KEY,
            happened_at=datetime.fromisoformat("2026-11-22T08:00:00+00:00"),
            booking=Booking(status="Canceled", external_reference=CANCELLED_KEY, **stay),
            **base,
        ),
        Activity(
            type="Connected to wifi",
            tenant="contract",
            source="purple",
            business_key=WIFI_KEY,
            happened_at=datetime.fromisoformat("2026-11-24T19:12:03+00:00"),
            person=GRACE,
            venue="venue-7",
        ),
    ]


def vendor(sandbox: SandboxServer, platform: str) -> Any:
    """The sandbox object of a platform."""
    return sandbox.sandboxes.glu if platform == "glu" else sandbox.sandboxes.extra[platform]


def assert_exactly_once_in_vocabulary(platform: str, state: dict[str, Any]) -> None:
    """Each of the five activities once, in the platform's own terms."""
    if platform == "glu":
        held = Counter((a["type"], a["externalReference"]) for a in state["activities"])
        assert held == Counter(
            {
                ("Shopify order", ORDER_KEY): 1,
                ("Booking", STAY_KEY): 1,
                ("Checked in", STAY_KEY): 1,
                ("Checked out", STAY_KEY): 1,
                ("Booking", CANCELLED_KEY): 1,
                ("Booking", CANCELLATION_KEY): 1,
                ("Connected to wifi", WIFI_KEY): 1,
            }
        )
        cancellation = next(a for a in state["activities"] if a["externalReference"] == CANCELLATION_KEY)
        assert cancellation["booking"]["status"] == "Canceled"
        by_type = {a["type"]: a for a in state["activities"] if a["externalReference"] != CANCELLATION_KEY}
        by_type["Booking"] = next(a for a in state["activities"] if a["externalReference"] == STAY_KEY)
        assert by_type["Shopify order"]["spend"] == 18690
        assert by_type["Shopify order"]["currencyCode"] == "HKD"
        assert by_type["Booking"]["booking"]["status"] == "Confirmed"
        assert by_type["Booking"]["booking"]["total"] == 45000
        assert by_type["Checked in"]["happenedAt"] == "2026-11-24T15:42:00+00:00"
        assert sorted(c["emailAddress"] for c in state["contacts"]) == [
            "ada.lovelace@example.com",
            "grace.hopper@example.com",
        ]
    elif platform == "loyaltylion":
        held = Counter((a["rule"]["name"], a["merchant_id"]) for a in state["activities"])
        assert held == Counter(
            {
                ("hotel_booking", STAY_KEY): 1,
                ("hotel_checked_in", STAY_KEY): 1,
                ("hotel_checked_out", STAY_KEY): 1,
                ("hotel_booking", CANCELLED_KEY): 1,
                ("wifi_login", WIFI_KEY): 1,
            }
        )
        assert state["activity_posts"] == 5  # the cancellation is a state change, not an activity
        states = {(a["rule"]["name"], a["merchant_id"]): a["state"] for a in state["activities"]}
        assert states[("hotel_booking", CANCELLED_KEY)] == "void"
        assert states[("hotel_booking", STAY_KEY)] == "approved"
        for activity in state["activities"]:
            assert activity["customer"]["guest"] is False  # set deliberately: guests earn nothing
            assert datetime.fromisoformat(activity["date"]).utcoffset() is not None
        wifi = next(a for a in state["activities"] if a["rule"]["name"] == "wifi_login")
        assert wifi["customer"] == {
            "merchant_id": "grace.hopper@example.com",
            "email": "grace.hopper@example.com",
            "guest": False,
        }
        assert wifi["date"] == "2026-11-24T19:12:03+00:00"
        # The purchase went through the Orders API, in major-unit decimal strings.
        assert state["order_posts"] == 1
        (order,) = state["orders"]
        assert order["merchant_id"] == ORDER_KEY
        assert order["total"] == "186.90"
        assert order["total_paid"] == "186.90"
        assert order["total_shipping"] == "0.00"
        assert order["payment_status"] == "paid"
        assert order["merchant_number"] == "1042"
        assert order["date"] == "2026-11-23T23:10:14-05:00"
    else:
        held = Counter((e["event"], e["metadata"]["connector_key"]) for e in state["events"])
        assert held == Counter(
            {
                ("shopify_order", ORDER_KEY): 1,
                ("hotel_booking", STAY_KEY): 1,
                ("hotel_checked_in", STAY_KEY): 1,
                ("hotel_checked_out", STAY_KEY): 1,
                ("hotel_booking", CANCELLED_KEY): 1,
                ("hotel_booking_status_changed", CANCELLATION_KEY): 1,
                ("wifi_login", WIFI_KEY): 1,
            }
        )
        assert state["event_posts"] == 7
        by_event = {e["event"]: e for e in state["events"] if e["metadata"]["connector_key"] != CANCELLED_KEY}
        assert by_event["hotel_booking_status_changed"]["metadata"]["stay_key"] == CANCELLED_KEY
        assert by_event["shopify_order"]["metadata"]["amount"] == 18690  # hundredths of HKD, an integer
        assert by_event["shopify_order"]["metadata"]["currency"] == "HKD"
        assert by_event["hotel_booking"]["metadata"]["booking_total"] == 45000
        assert by_event["hotel_booking"]["metadata"]["check_in"] == "2026-11-24T15:00:00+00:00"
        assert by_event["wifi_login"]["metadata"]["venue"] == "venue-7"
        assert sorted(c["source_id"] for c in state["customers"]) == [
            "ada.lovelace@example.com",
            "grace.hopper@example.com",
        ]
        assert by_event["wifi_login"]["source_id"] == "grace.hopper@example.com"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_stream_with_duplicates_faults_and_replays_lands_once(
    platform: str, env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    extra = {"skip_shopify_orders": "false"} if platform == "loyaltylion" else {}
    settings = env(tenant_toml(platform, sandbox.url, **extra), CONNECTOR_RETRY_SCHEDULE="0,0,0,0,0,0")
    tenant = settings.tenants["contract"]
    faults = vendor(sandbox, platform).faults
    faults.arm({"mode": "status", "status": 500, "count": 2})
    faults.arm({"mode": "status", "status": 429, "retry_after": 1, "count": 1})
    faults.arm({"mode": "drop", "count": 1})
    faults.arm({"mode": "status", "status": 400, "count": 1})  # fatal: one job ends failed

    activities = stream()
    first = jobs.enqueue_deliveries(tenant, activities)
    again = jobs.enqueue_deliveries(tenant, activities + activities[1:3])  # the senders' duplicates
    assert again == first + first[1:3]
    assert len(set(first)) == 7
    work(wait_for_retries=15)
    assert faults.take() is None, "every injected fault was hit"

    failed = FailedJobRegistry(queue=get_queue(redis, DELIVERY_QUEUE))
    reasons = [str(fetch_job(redis, job_id).latest_result().exc_string) for job_id in failed.get_job_ids()]  # type: ignore[union-attr]
    # The fatal 400 sends its job to the failed registry with the reason; with this test's
    # immediate retries, a cancellation waiting for that Booking may use up its attempts too.
    assert sum("answered 400" in reason for reason in reasons) == 1
    assert all("answered 400" in reason or "to decline yet" in reason for reason in reasons)

    # Support replays: "requeue all" on the failed registry (again, should a cancellation have run
    # before the Booking it cancels), then every finished job once more.
    for _round in range(3):
        for job_id in failed.get_job_ids():
            failed.requeue(job_id)
        work(wait_for_retries=15)
        if not failed.get_job_ids():
            break
    queue = get_queue(redis, DELIVERY_QUEUE)
    for job_id in first:
        job = fetch_job(redis, job_id)
        assert job.get_status() == "finished"
        queue.enqueue_job(job)
    jobs.enqueue_deliveries(tenant, activities)  # a redelivered webhook after the jobs finished
    work(wait_for_retries=15)

    assert not failed.get_job_ids()
    results = [fetch_job(redis, job_id).return_value() for job_id in first]
    assert [r["status"] for r in results] == ["already_delivered"] * 7  # type: ignore[index]
    assert_exactly_once_in_vocabulary(platform, vendor(sandbox, platform).state())
    counters = read_counters(redis)
    assert counters[f"deliveries|destination={platform}|outcome=delivered"] == 7
    assert len(redis.keys(f"connector:ledger:contract:{platform}:*")) == 7


def test_loyaltylion_lost_answers_are_reconciled_not_reposted(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    """The platform wrote the activity/order but the answer was lost: the retry looks it up."""
    settings = env(tenant_toml("loyaltylion", sandbox.url, skip_shopify_orders="false"))
    lion = vendor(sandbox, "loyaltylion")
    lion.lose_responses = 2  # the order create and the Booking create succeed, their answers vanish
    ids = jobs.enqueue_deliveries(settings.tenants["contract"], stream())
    work(wait_for_retries=15)

    state = lion.state()
    assert state["order_posts"] == 1 and state["activity_posts"] == 5
    assert_exactly_once_in_vocabulary("loyaltylion", state)
    assert state["orders"][0]["refund_status"] == "not_refunded"  # the full-state PUT after lookup
    statuses = [fetch_job(redis, job_id).return_value()["status"] for job_id in ids]  # type: ignore[index]
    assert statuses == ["delivered"] * 7
    receipts = [fetch_job(redis, job_id).return_value()["receipt"] for job_id in ids]  # type: ignore[index]
    assert [r["created"] for r in receipts] == [False, False, True, True, True, True, True]


def test_voucherify_resend_after_unknown_outcome_is_counted(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    """The event call's connection drops before Voucherify handled it: the outcome is unknown, the
    retry finds no such event in the customer's activity, re-sends and counts it. A refused call
    (429) is no such case."""
    settings = env(tenant_toml("voucherify", sandbox.url))
    vouch = vendor(sandbox, "voucherify")
    vouch.faults.arm({"mode": "slow", "seconds": 0, "count": 1})  # the customer upsert passes
    vouch.faults.arm({"mode": "drop", "count": 1})  # the event call loses its connection
    jobs.enqueue_deliveries(settings.tenants["contract"], stream()[-1:])
    work(wait_for_retries=15)
    assert vouch.state()["event_posts"] == 1
    counters = read_counters(redis)
    assert counters["deliveries|destination=voucherify|outcome=resent_unknown_outcome"] == 1

    vouch.faults.arm({"mode": "status", "status": 429, "retry_after": 1, "count": 1})
    jobs.enqueue_deliveries(settings.tenants["contract"], stream()[2:3])  # customer cached: event only
    work(wait_for_retries=15)
    assert vouch.state()["event_posts"] == 2
    assert read_counters(redis)["deliveries|destination=voucherify|outcome=resent_unknown_outcome"] == 1


def test_loyaltylion_tenant_answers_shopify_orders_ignored_with_the_reason(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    """Default LoyaltyLion tenants skip Shopify orders: at intake (no job) and, for activities
    already queued, at delivery — never posted, reason kept."""
    import base64
    import hashlib
    import hmac

    from connector.web import create_app

    settings = env(tenant_toml("loyaltylion", sandbox.url))
    client = create_app(settings).test_client()
    body = b'{"id": 1, "email": "ada@example.com", "total_price": "10.00", "currency": "GBP"}'
    signature = base64.b64encode(hmac.new(b"shpss_contract_secret", body, hashlib.sha256).digest()).decode()
    response = client.post(
        "/webhooks/contract/shopify",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": "0b0e7b55-1f0c-4b61-9f0a-7d7f2e1c0001",
        },
    )
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "LoyaltyLion imports Shopify orders" in response.json["reason"]
    assert get_queue(redis, "ingest").count == 0
    assert read_counters(redis)["ignored|reason=platform_imports_source|source=shopify|tenant=contract"] == 1

    # A bad signature is still a 401, skip or not.
    response = client.post(
        "/webhooks/contract/shopify",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": "bm9wZQ==",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": "0b0e7b55-1f0c-4b61-9f0a-7d7f2e1c0002",
        },
    )
    assert response.status_code == 401

    (job_id,) = jobs.enqueue_deliveries(settings.tenants["contract"], stream()[:1])
    work()
    result = fetch_job(redis, job_id).return_value()
    assert result["status"] == "ignored"  # type: ignore[index]
    assert "Shopify" in result["reason"]  # type: ignore[index]
    state = vendor(sandbox, "loyaltylion").state()
    assert state["orders"] == [] and state["order_posts"] == 0
    # Counted once at intake and once at delivery, under the same reason.
    assert read_counters(redis)["ignored|reason=platform_imports_source|source=shopify|tenant=contract"] == 2
