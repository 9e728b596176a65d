"""LoyaltyLion and Voucherify clients: request shapes, money, auth, rate limits, reversals.

Shape tests are pure; the rest talk real HTTP to the sandboxes with a real Redis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from redis import Redis

from connector.activities import Activity, Booking, Person
from connector.errors import FatalDestinationError, RetriableDestinationError, UnsupportedEvent
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.vendors.loyaltylion.config import LoyaltyLionConfig
from connector.vendors.loyaltylion.platform import LoyaltyLionClient, activity_body, budget_name, order_body
from connector.vendors.voucherify.config import VoucherifyConfig
from connector.vendors.voucherify.platform import VoucherifyClient, event_body, voucherify_amount

LION_KEY = DEFAULT_KEYS["loyaltylion"]


class MemoryContacts:
    """A plain dict standing in for the per-tenant contact cache (no I/O involved)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, email: str) -> str | None:
        return self.data.get(email)

    def set(self, email: str, contact_id: str) -> None:
        self.data[email] = contact_id


def activity(type_: str = "Connected to wifi", **overrides: Any) -> Activity:
    values: dict[str, Any] = {
        "type": type_,
        "tenant": "acme",
        "source": "purple",
        "business_key": "purple:venue-7:abc:2026-11-24",
        "happened_at": datetime.fromisoformat("2026-11-24T19:12:03+01:00"),
        "person": Person(email="grace@example.com", first_name="Grace", marketing_consent=False),
    }
    values.update(overrides)
    return Activity(**values)


def booking(status: str = "Confirmed", update: int = 0) -> Activity:
    """A stay's Booking, or (``update`` > 0) its n-th booking status update, as PMS sources send them."""
    key = "mews:quay:RES-1"
    return activity(
        "Booking",
        source="mews",
        business_key=f"{key}:status:{update}" if update else key,
        booking=Booking(
            check_in=datetime.fromisoformat("2026-12-01T15:00:00+00:00"),
            check_out=datetime.fromisoformat("2026-12-03T11:00:00+00:00"),
            status=status,  # type: ignore[arg-type]
            external_reference=key,
        ),
    )


def lion_config(base_url: str = "https://api.loyaltylion.com", **extra: Any) -> LoyaltyLionConfig:
    return LoyaltyLionConfig.model_validate(
        {"platform": "loyaltylion", "base_url": base_url, "api_key": LION_KEY, **extra}
    )


def voucherify_config(base_url: str = "https://api.voucherify.io", **extra: Any) -> VoucherifyConfig:
    return VoucherifyConfig.model_validate(
        {
            "platform": "voucherify",
            "base_url": base_url,
            "app_id": DEFAULT_KEYS["voucherify_app_id"],
            "app_token": DEFAULT_KEYS["voucherify_app_token"],
            **extra,
        }
    )


# -- pure shapes ----------------------------------------------------------------------------


def test_loyaltylion_activity_body_sets_date_guest_and_merchant_id() -> None:
    body = activity_body(activity(), lion_config())
    assert body == {
        "name": "wifi_login",
        "customer_id": "grace@example.com",
        "customer_email": "grace@example.com",
        "guest": False,
        "merchant_id": "purple:venue-7:abc:2026-11-24",
        "date": "2026-11-24T19:12:03+01:00",
    }
    assert activity_body(activity(), lion_config(guest="always"))["guest"] is True
    assert activity_body(activity(), lion_config(guest="without_consent"))["guest"] is True  # consent False
    hashed = activity_body(activity(), lion_config(customer_id="email_hash"))
    assert hashed["customer_id"] != "grace@example.com" and len(hashed["customer_id"]) == 24


@pytest.mark.parametrize(
    ("spend", "currency", "total"),
    [(18690, "HKD", "186.90"), (1500, "JPY", "1500"), (1250, "KWD", "1.250"), (5, "GBP", "0.05")],
)
def test_loyaltylion_orders_use_major_unit_decimal_strings(spend: int, currency: str, total: str) -> None:
    order = activity("Purchase", source="standard", spend=spend, currency_code=currency)
    body = order_body(order, lion_config())
    assert body["total"] == total
    assert body["total_paid"] == total
    assert body["payment_status"] == "paid"
    assert body["date"] == "2026-11-24T19:12:03+01:00"


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [(18690, "HKD", 18690), (1500, "JPY", 150000), (1250, "KWD", 125), (0, "USD", 0)],
)
def test_voucherify_amounts_are_integer_hundredths(minor: int, currency: str, expected: int) -> None:
    assert voucherify_amount(minor, currency) == expected


def test_voucherify_booking_status_updates_are_their_own_event() -> None:
    body = event_body(booking("Canceled", update=1), voucherify_config())
    assert body["event"] == "hotel_booking_status_changed"
    assert body["metadata"]["connector_key"] == "mews:quay:RES-1:status:1"
    assert body["metadata"]["stay_key"] == "mews:quay:RES-1"
    assert body["metadata"]["booking_status"] == "Canceled"


def test_voucherify_event_body_shape() -> None:
    body = event_body(booking(), voucherify_config(event_names={"Booking": "stay_booked"}))
    assert body["event"] == "stay_booked"
    assert body["customer"] == {"source_id": "grace@example.com"}
    assert body["metadata"]["connector_key"] == "mews:quay:RES-1"
    assert body["metadata"]["booking_status"] == "Confirmed"
    assert body["metadata"]["check_in"] == "2026-12-01T15:00:00+00:00"


# -- LoyaltyLion over HTTP ------------------------------------------------------------------


def lion(sandbox: SandboxServer, redis: Redis, **extra: Any) -> LoyaltyLionClient:
    return LoyaltyLionClient(lion_config(f"{sandbox.url}/loyaltylion", **extra), tenant="acme", redis=redis, timeout=5)


def test_loyaltylion_bad_key_is_fatal_with_a_clear_reason(sandbox: SandboxServer, redis: Redis) -> None:
    config = lion_config(f"{sandbox.url}/loyaltylion", api_key="wrong-key-123")
    client = LoyaltyLionClient(config, tenant="acme", redis=redis)
    with pytest.raises(FatalDestinationError, match=r"API key was rejected \(401\).*tenants.acme.loyalty.api_key"):
        client.deliver(activity(), MemoryContacts())
    sandbox.sandboxes.extra["loyaltylion"].faults.arm({"status": 403})
    with pytest.raises(FatalDestinationError, match="lacks a scope"):
        lion(sandbox, redis).deliver(activity(), MemoryContacts())
    assert sandbox.sandboxes.extra["loyaltylion"].state()["activities"] == []


def test_loyaltylion_429_pauses_the_programme_budget_for_every_worker(sandbox: SandboxServer, redis: Redis) -> None:
    sandbox.sandboxes.extra["loyaltylion"].faults.arm({"status": 429, "retry_after": 2})
    client = lion(sandbox, redis)
    with pytest.raises(RetriableDestinationError) as caught:
        client.deliver(activity(), MemoryContacts())
    assert caught.value.retry_after == 2
    other_worker = lion(sandbox, redis)
    assert other_worker.limiter.name == client.limiter.name == budget_name(LION_KEY)
    assert LION_KEY not in client.limiter.name
    assert 0.0 < other_worker.limiter.paused_for() <= 2.0
    assert other_worker.limiter.limit == 20 and other_worker.limiter.period == 1.0


def test_loyaltylion_site_id_is_sent_for_multi_site_programmes(sandbox: SandboxServer, redis: Redis) -> None:
    lion(sandbox, redis, site_id="site_42").deliver(activity(), MemoryContacts())
    (held,) = sandbox.sandboxes.extra["loyaltylion"].state()["activities"]
    assert held["site_id"] == "site_42"


def test_loyaltylion_cancellation_and_reverted_check_in_decline_the_stay_activities(
    sandbox: SandboxServer, redis: Redis
) -> None:
    client = lion(sandbox, redis)
    client.deliver(booking(), MemoryContacts())
    client.deliver(activity("Checked in", source="mews", business_key="mews:quay:RES-1"), MemoryContacts())
    client.deliver(booking("Confirmed", update=1), MemoryContacts())  # check-in reverted
    state = sandbox.sandboxes.extra["loyaltylion"].state()
    assert {a["rule"]["name"]: a["state"] for a in state["activities"]} == {
        "hotel_booking": "approved",
        "hotel_checked_in": "void",
    }
    receipt = client.deliver(booking("Canceled", update=2), MemoryContacts())
    assert receipt.remote_id == "hotel_booking/mews:quay:RES-1:declined"
    state = sandbox.sandboxes.extra["loyaltylion"].state()
    assert {a["rule"]["name"]: a["state"] for a in state["activities"]} == {
        "hotel_booking": "void",
        "hotel_checked_in": "void",
    }
    assert state["activity_posts"] == 2  # state changes never create activities
    with pytest.raises(UnsupportedEvent, match="has no LoyaltyLion counterpart"):
        client.deliver(booking("Started", update=3), MemoryContacts())


def test_loyaltylion_declining_a_booking_not_there_yet_retries(sandbox: SandboxServer, redis: Redis) -> None:
    """The cancellation overtook the Booking (whose delivery is still retrying): try again later."""
    with pytest.raises(RetriableDestinationError, match="to decline yet"):
        lion(sandbox, redis).deliver(booking("Canceled", update=1), MemoryContacts())
    with pytest.raises(UnsupportedEvent, match="cancelled before LoyaltyLion heard of it"):
        lion(sandbox, redis).deliver(booking("Canceled"), MemoryContacts())
    with pytest.raises(UnsupportedEvent, match="to decline"):  # a reinstatement: no check-in to revert
        lion(sandbox, redis).deliver(booking("Confirmed", update=2), MemoryContacts())


def test_loyaltylion_skips_configured_activity_types(sandbox: SandboxServer, redis: Redis) -> None:
    with pytest.raises(UnsupportedEvent, match="skip_activities"):
        lion(sandbox, redis, skip_activities=["Connected to wifi"]).deliver(activity(), MemoryContacts())


# -- Voucherify over HTTP -------------------------------------------------------------------


def voucherify(sandbox: SandboxServer, redis: Redis, **extra: Any) -> VoucherifyClient:
    config = voucherify_config(f"{sandbox.url}/voucherify", **extra)
    return VoucherifyClient(config, tenant="acme", redis=redis, timeout=5)


def test_voucherify_upserts_the_customer_once_then_tracks_events(sandbox: SandboxServer, redis: Redis) -> None:
    contacts = MemoryContacts()
    client = voucherify(sandbox, redis)
    client.deliver(activity(), contacts)
    client.deliver(booking(), contacts)
    state = sandbox.sandboxes.extra["voucherify"].state()
    assert [c["source_id"] for c in state["customers"]] == ["grace@example.com"]
    assert state["customers"][0]["name"] == "Grace"
    assert [e["event"] for e in state["events"]] == ["wifi_login", "hotel_booking"]
    assert state["calls_this_minute"] == 3  # one upsert, two events: the cache saves plan calls


def test_voucherify_402_is_fatal_with_a_clear_reason(sandbox: SandboxServer, redis: Redis) -> None:
    sandbox.sandboxes.extra["voucherify"].plan_exceeded = True
    with pytest.raises(FatalDestinationError, match=r"plan limit is exceeded.*402") as caught:
        voucherify(sandbox, redis).deliver(activity(), MemoryContacts())
    assert caught.value.status == 402


def test_voucherify_bad_keys_are_fatal(sandbox: SandboxServer, redis: Redis) -> None:
    with pytest.raises(FatalDestinationError, match=r"application keys rejected \(401\)"):
        voucherify(sandbox, redis, app_token="wrong").deliver(activity(), MemoryContacts())


def test_voucherify_429_uses_the_rate_limit_retry_header(sandbox: SandboxServer, redis: Redis) -> None:
    vendor = sandbox.sandboxes.extra["voucherify"]
    vendor.faults.arm({"status": 429, "retry_after": 3})
    client = voucherify(sandbox, redis)
    with pytest.raises(RetriableDestinationError) as caught:
        client.deliver(activity(), MemoryContacts())
    assert caught.value.status == 429
    assert caught.value.retry_after is not None and 1.0 < caught.value.retry_after <= 4.0
    assert client.limiter.paused_for() > 0.0
