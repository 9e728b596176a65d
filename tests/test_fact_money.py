"""Withdrawn (ISO 4217 List Three) and unknown currencies: exact amounts, or no spend, never a lost stay.

BGN became historic on 2026-01-01 (euro adoption), HRK, SLL, ZWL, CUC, ANG before it; amounts in
them still arrive from old bookings and orders. A code ISO never listed ("XYZ") is sent without
spend and counted (``connector_ignored{reason="unknown_currency"}``) instead of failing the job or
dropping the stay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import load_fixture, shopify_headers, tenants_toml
from pms_helpers import (
    ENTERPRISE,
    MEWS_ACCESS_TOKEN,
    MEWS_TOKEN,
    RESERVATION,
    STANDARD_SECRET,
    context,
    envelope,
    fixture_json,
    glu_activities,
    pms_toml,
    standard_headers,
)

from connector.activities import UNKNOWN_CURRENCY
from connector.errors import PayloadError
from connector.metrics import read_counters
from connector.money import (
    HISTORIC_MINOR_UNIT_EXPONENTS,
    MINOR_UNIT_EXPONENTS,
    UnknownCurrency,
    exponent,
    format_major,
    known_currency,
    to_minor_units,
)
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.sources.base import Envelope
from connector.vendors.apaleo.pms import forget_tokens
from connector.vendors.cloudbeds.source import SOURCE as CLOUDBEDS
from connector.vendors.cloudbeds.source import CloudbedsConfig
from connector.vendors.hostaway.source import SOURCE as HOSTAWAY
from connector.vendors.hostaway.source import HostawayConfig
from connector.vendors.shopify.source import order_to_activity
from connector.vendors.standard.source import SOURCE as STANDARD
from connector.vendors.standard.source import StandardConfig
from connector.web import create_app


def counted(redis: Any, source: str, tenant: str = "harbour") -> int:
    return read_counters(redis).get(f"ignored|reason=unknown_currency|source={source}|tenant={tenant}", 0)


def no_failed_jobs(redis: Any) -> bool:
    return all(get_queue(redis, name).failed_job_registry.count == 0 for name in (INGEST_QUEUE, DELIVERY_QUEUE))


# --- money.py ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["BGN", "HRK", "SLL", "ZWL", "CUC", "ANG", "LTL", "LVL", "EEK", "VEF", "MRO", "STD", "ZMK", "SKK", "CYP"],
)
def test_withdrawn_codes_have_their_two_decimal_exponent(code: str) -> None:
    assert exponent(code) == 2
    assert known_currency(code)
    assert code in HISTORIC_MINOR_UNIT_EXPONENTS and code not in MINOR_UNIT_EXPONENTS


def test_withdrawn_zero_decimal_code() -> None:
    assert exponent("BYR") == 0  # Belarusian ruble before the 2016 redenomination
    assert to_minor_units("15000", "BYR") == 15000


def test_bgn_amounts_convert_exactly_both_ways() -> None:
    assert to_minor_units("245.80", "BGN") == 24580
    assert format_major(24580, "BGN") == "245.80"
    with pytest.raises(PayloadError, match="decimal places"):
        to_minor_units("245.805", "BGN")


def test_historic_table_never_shadows_a_current_code() -> None:
    assert not set(HISTORIC_MINOR_UNIT_EXPONENTS) & set(MINOR_UNIT_EXPONENTS)
    for code, places in HISTORIC_MINOR_UNIT_EXPONENTS.items():
        assert len(code) == 3 and code.isascii() and code.isalpha() and code.isupper(), code
        assert places in {0, 2, 3}, (code, places)


@pytest.mark.parametrize("code", ["XYZ", "gbp", "", "GBPP", None, 7])
def test_unknown_codes_raise_unknown_currency_a_payload_error(code: Any) -> None:
    assert not known_currency(code)
    with pytest.raises(UnknownCurrency) as caught:
        to_minor_units("10", code)
    assert isinstance(caught.value, PayloadError)
    assert str(caught.value) == f"unknown currency code {code!r}"


# --- pure translation: the mark ----------------------------------------------------------------


def shopify_order(name: str) -> Any:
    return order_to_activity(
        json.loads(load_fixture("shopify", name)), shop="harbour-hotels.myshopify.com", tenant="harbour"
    )


def test_shopify_order_in_bgn_keeps_its_exact_spend() -> None:
    activity = shopify_order("orders_paid__bgn")
    assert (activity.spend, activity.currency_code) == (24580, "BGN")
    assert UNKNOWN_CURRENCY not in activity.attributes


def test_shopify_order_in_an_unknown_currency_has_no_spend_and_says_why() -> None:
    activity = shopify_order("orders_paid__xyz")
    assert (activity.spend, activity.currency_code) == (None, None)
    assert activity.attributes[UNKNOWN_CURRENCY] == "XYZ"


def test_a_malformed_amount_in_a_known_currency_is_still_a_payload_error() -> None:
    order = json.loads(load_fixture("shopify", "orders_paid__bgn"))
    order["total_price_set"]["shop_money"]["amount"] = "245,80"
    with pytest.raises(PayloadError, match="245,80"):
        order_to_activity(order, shop="harbour-hotels.myshopify.com", tenant="harbour")


def test_standard_stay_in_an_unknown_currency_keeps_the_stay_without_its_total() -> None:
    body = json.loads(load_fixture("standard", "stay_booked"))
    body["data"]["total"] = {"amount": "380.00", "currency": "XYZ"}
    [booking] = STANDARD.to_activities(
        envelope("standard", "stay.booked"), body, context(), StandardConfig(secrets=[STANDARD_SECRET])
    )
    assert booking.booking is not None
    assert (booking.booking.total, booking.booking.currency_code) == (None, None)
    assert booking.attributes[UNKNOWN_CURRENCY] == "XYZ"


@pytest.mark.parametrize(("currency", "total", "mark"), [("BGN", 38050, None), ("XYZ", None, "XYZ")])
def test_hostaway_reservation_currency(currency: str, total: int | None, mark: str | None) -> None:
    body = json.loads(load_fixture("hostaway", "reservation_created"))
    (body["data"] if "data" in body else body)["currency"] = currency
    config = HostawayConfig(username="u", password="p", account_id=10452)
    env = Envelope("hostaway", "harbour", "reservation.updated", "d", "2026-05-01T09:12:05+00:00")
    [booking] = HOSTAWAY.to_activities(env, body, context(), config)
    assert booking.booking is not None and booking.booking.total == total
    assert booking.attributes.get(UNKNOWN_CURRENCY) == mark


@pytest.mark.parametrize(("currency", "total", "mark"), [("HRK", 38000, None), ("XYZ", None, "XYZ")])
def test_cloudbeds_property_currency(currency: str, total: int | None, mark: str | None) -> None:
    config = CloudbedsConfig(token="t", api_key="k", property_id="318267", currency=currency)
    payload = {
        "message": fixture_json("cloudbeds", "reservation_created"),
        "fetched": {"reservations": [fixture_json("cloudbeds", "reservation_confirmed")]},
    }
    [booking] = CLOUDBEDS.to_activities(envelope("cloudbeds"), payload, context(), config)
    assert booking.booking is not None and booking.booking.total == total
    assert booking.attributes.get(UNKNOWN_CURRENCY) == mark


# --- end to end: real app, Redis, RQ workers, Glu and PMS sandboxes ---------------------------


def post_shopify(client: Any, name: str) -> Any:
    body = load_fixture("shopify", name)
    return client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, webhook_id=f"wh-{name}"))


def test_shopify_order_in_bgn_is_delivered_with_the_exact_amount(client, sandbox, work, redis):
    assert post_shopify(client, "orders_paid__bgn").status_code == 202
    work()
    [activity] = glu_activities(sandbox)
    assert (activity["type"], activity["spend"], activity["currencyCode"]) == ("Shopify order", 24580, "BGN")
    assert counted(redis, "shopify") == 0
    assert no_failed_jobs(redis)


def test_shopify_order_in_an_unknown_currency_is_delivered_without_spend_and_counted(client, sandbox, work, redis):
    assert post_shopify(client, "orders_paid__xyz").status_code == 202
    work()
    [activity] = glu_activities(sandbox)
    assert activity["type"] == "Shopify order"
    assert activity["externalReference"] == "shopify:harbour-hotels.myshopify.com:order:6200407300002"
    assert "currencyCode" not in activity and activity.get("spend", 0) == 0
    assert sandbox.sandboxes.glu.state()["activity_posts"] == 1
    assert counted(redis, "shopify") == 1
    assert no_failed_jobs(redis)


@pytest.fixture
def pms_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    forget_tokens()
    settings = env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN=MEWS_ACCESS_TOKEN)
    return create_app(settings).test_client()


def seed_mews(sandbox: Any, currency: str) -> None:
    mews = sandbox.sandboxes.extra["mews"]
    mews.seed("customers", fixture_json("mews", "customer"))
    mews.seed("resource_categories", fixture_json("mews", "resource_category"))
    items = fixture_json("mews", "order_items")
    for item in items:
        item["Amount"] = {**item["Amount"], "Currency": currency}
    mews.seed("order_items", *items)
    mews.seed("reservations", fixture_json("mews", "reservation_confirmed"))


def post_mews(client: Any) -> Any:
    return client.post(
        f"/webhooks/harbour/mews/{MEWS_TOKEN}",
        data=load_fixture("mews", "general_webhook"),
        headers={"Content-Type": "application/json"},
    )


def booking_of(sandbox: Any) -> dict[str, Any]:
    [booking] = glu_activities(sandbox)
    assert booking["type"] == "Booking"
    return dict(booking["booking"])


def test_mews_stay_in_bgn_is_delivered_with_the_exact_total(pms_client, sandbox, work, redis):
    seed_mews(sandbox, "BGN")
    assert post_mews(pms_client).status_code == 202
    work()
    booking = booking_of(sandbox)
    assert (booking["total"], booking["currencyCode"]) == (38000, "BGN")  # two nights of 190.0 BGN
    assert booking["externalReference"] == f"mews:{ENTERPRISE}:{RESERVATION}"
    assert no_failed_jobs(redis)


def test_mews_stay_in_an_unknown_currency_is_delivered_without_total_and_counted(pms_client, sandbox, work, redis):
    seed_mews(sandbox, "XYZ")
    assert post_mews(pms_client).status_code == 202
    work()
    booking = booking_of(sandbox)
    assert "total" not in booking and "currencyCode" not in booking
    assert booking["status"] == "Confirmed"
    assert counted(redis, "mews") == 1
    assert no_failed_jobs(redis)


def post_apaleo(client: Any, sandbox: Any, currency: str) -> Any:
    reservation = fixture_json("apaleo", "reservation_confirmed")
    reservation["totalGrossAmount"] = {"amount": "412.70", "currency": currency}
    sandbox.sandboxes.extra["apaleo"].seed(reservation)
    return client.post(
        "/webhooks/harbour/apaleo/apaleo-url-token-harbour-91d0",
        data=load_fixture("apaleo", "reservation_created"),
        headers={"Content-Type": "application/json"},
    )


def test_apaleo_stay_in_bgn_is_delivered_with_the_exact_total(pms_client, sandbox, work, redis):
    assert post_apaleo(pms_client, sandbox, "BGN").status_code == 202
    work()
    booking = booking_of(sandbox)
    assert (booking["total"], booking["currencyCode"]) == (41270, "BGN")
    assert no_failed_jobs(redis)


def test_apaleo_stay_in_an_unknown_currency_is_delivered_without_total_and_counted(pms_client, sandbox, work, redis):
    assert post_apaleo(pms_client, sandbox, "XYZ").status_code == 202
    work()
    booking = booking_of(sandbox)
    assert "total" not in booking and "currencyCode" not in booking
    assert counted(redis, "apaleo") == 1
    assert no_failed_jobs(redis)


def post_standard(client: Any, currency: str, msg_id: str) -> Any:
    body = json.loads(load_fixture("standard", "stay_booked"))
    body["data"]["total"] = {"amount": "380.00", "currency": currency}
    raw = json.dumps(body).encode()
    return client.post("/webhooks/harbour/standard", data=raw, headers=standard_headers(raw, msg_id))


def test_standard_stay_in_bgn_is_delivered_with_the_exact_total(pms_client, sandbox, work, redis):
    assert post_standard(pms_client, "BGN", "msg_bgn").status_code == 202
    work()
    booking = booking_of(sandbox)
    assert (booking["total"], booking["currencyCode"]) == (38000, "BGN")
    assert no_failed_jobs(redis)


def test_standard_stay_in_an_unknown_currency_is_delivered_without_total_and_counted(pms_client, sandbox, work, redis):
    assert post_standard(pms_client, "XYZ", "msg_xyz").status_code == 202
    work()
    booking = booking_of(sandbox)
    assert "total" not in booking and "currencyCode" not in booking
    assert counted(redis, "standard") == 1
    assert no_failed_jobs(redis)


def test_loyaltylion_order_in_an_unknown_currency_is_ignored_with_the_reason_not_failed(env, sandbox, work, redis):
    """LoyaltyLion's Orders API needs a total: without one the order is ignored, counted, not failed."""
    toml = tenants_toml(sandbox.url)
    start = toml.index("[tenants.harbour.loyalty]")
    end = toml.index("[tenants.harbour.sources.shopify]")
    lion = (
        '[tenants.harbour.loyalty]\nplatform = "loyaltylion"\n'
        f'base_url = "{sandbox.url}/loyaltylion"\napi_key = "sandbox-loyaltylion-key"\nskip_shopify_orders = false\n'
    )
    settings = env(toml[:start] + lion + toml[end:])
    client = create_app(settings).test_client()
    assert post_shopify(client, "orders_paid__xyz").status_code == 202
    work()
    state = sandbox.sandboxes.extra["loyaltylion"].state()
    assert state["order_posts"] == 0 and state["orders"] == []
    assert counted(redis, "shopify") == 1
    assert no_failed_jobs(redis)
