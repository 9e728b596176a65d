"""Issue 12, fact 9: Voucherify amounts are integers in hundredths of the major unit, so a
three-decimal currency amount (KWD, BHD, OMR, JOD, TND, LYD, IQD) that is not a whole number of
hundredths cannot be one. Such a stay is never failed for it: the integer is left out, the exact
decimal string and the currency go in the event metadata, and it is counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
from conftest import load_fixture
from pms_helpers import standard_headers
from redis import Redis
from test_loyalty_platforms import MemoryContacts, activity, voucherify, voucherify_config
from test_platforms_e2e import toml

from connector import metrics
from connector.activities import Activity, Booking
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue
from connector.sandbox.server import SandboxServer
from connector.settings import Settings
from connector.vendors.voucherify.platform import event_body, voucherify_amount
from connector.web import create_app

INEXACT_KWD = "inexact_amounts|currency=KWD|destination=voucherify"


def kwd_booking(total: int) -> Activity:
    return activity(
        "Booking",
        source="mews",
        business_key="mews:kuwait-city:RES-9",
        booking=Booking(
            check_in=datetime.fromisoformat("2026-12-01T15:00:00+03:00"),
            check_out=datetime.fromisoformat("2026-12-03T12:00:00+03:00"),
            status="Confirmed",
            total=total,
            currency_code="KWD",
        ),
    )


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [(245120, "KWD", 24512), (1250, "BHD", 125), (18690, "HKD", 18690), (1500, "JPY", 150000), (245125, "KWD", None)],
)
def test_an_amount_is_integer_hundredths_only_where_exact(minor: int, currency: str, expected: int | None) -> None:
    assert voucherify_amount(minor, currency) == expected


def test_an_inexact_total_goes_as_the_exact_decimal_string_and_currency() -> None:
    metadata = event_body(kwd_booking(245125), voucherify_config())["metadata"]
    assert "booking_total" not in metadata
    assert metadata["booking_total_decimal"] == "245.125"
    assert metadata["currency"] == "KWD"
    exact = event_body(kwd_booking(245120), voucherify_config())["metadata"]
    assert exact["booking_total"] == 24512 and "booking_total_decimal" not in exact
    spend = event_body(activity("Purchase", source="standard", spend=5, currency_code="OMR"), voucherify_config())
    assert "amount" not in spend["metadata"]
    assert (spend["metadata"]["amount_decimal"], spend["metadata"]["currency"]) == ("0.005", "OMR")


def test_the_client_delivers_an_inexact_amount_and_counts_it(sandbox: SandboxServer, redis: Redis) -> None:
    receipt = voucherify(sandbox, redis).deliver(kwd_booking(245125), MemoryContacts())
    assert receipt.created
    (event,) = sandbox.sandboxes.extra["voucherify"].state()["events"]
    assert event["metadata"]["booking_total_decimal"] == "245.125"
    assert metrics.read_counters(redis)[INEXACT_KWD] == 1


def test_a_kwd_booking_reaches_voucherify_end_to_end(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Callable[..., None]
) -> None:
    client = create_app(env(toml("voucherify", sandbox.url))).test_client()
    data = json.loads(load_fixture("standard", "stay_booked"))
    data["data"]["total"] = {"amount": "245.125", "currency": "KWD"}
    body = json.dumps(data).encode()
    response = client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, "msg_kwd"))
    assert response.status_code == 202, response.json
    work()
    for name in (INGEST_QUEUE, DELIVERY_QUEUE):
        assert get_queue(redis, name).failed_job_registry.count == 0
    (event,) = sandbox.sandboxes.extra["voucherify"].state()["events"]
    assert event["event"] == "hotel_booking"
    metadata = event["metadata"]
    assert (metadata["booking_total_decimal"], metadata["currency"]) == ("245.125", "KWD")
    assert "booking_total" not in metadata
    assert metrics.read_counters(redis)[INEXACT_KWD] == 1
