"""Every id placed in an outbound URL path reaches the vendor as exactly one escaped segment.

Ids come from webhooks (Apaleo's ``entityId``), from business keys (LoyaltyLion's
``merchant_id``), from the tenants file (Mailchimp's list id) and from emails (Customer.io's
identifier); an id holding ``/``, ``?``, ``#`` or ``..`` must never change which resource is
addressed. The sandboxes record each request target as sent, still percent-encoded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import load_fixture
from pms_helpers import APALEO_TOKEN, glu_activities, pms_toml

from connector.activities import Activity, Booking, LoyaltyEvent, Person
from connector.errors import PayloadError
from connector.esps.base import build_esp_client
from connector.esps.registry import parse_esp
from connector.http import path_segment
from connector.sandbox.server import DEFAULT_KEYS
from connector.vendors.loyaltylion.config import LoyaltyLionConfig
from connector.vendors.loyaltylion.platform import LoyaltyLionClient
from connector.web import create_app

WEIRD = "../R/1?x=2#frag.."
WEIRD_SEGMENT = "..%2FR%2F1%3Fx%3D2%23frag.."


def test_path_segment_escapes_everything_that_could_change_the_path():
    assert path_segment(WEIRD) == WEIRD_SEGMENT
    assert path_segment("..") == "%2E%2E"
    assert path_segment(".") == "%2E"
    assert path_segment("a b%c") == "a%20b%25c"
    assert path_segment("$purchase", safe="$") == "$purchase"
    with pytest.raises(PayloadError):
        path_segment("")


@pytest.mark.parametrize(("entity_id", "segment"), [(WEIRD, WEIRD_SEGMENT), ("..", "%2E%2E")])
def test_apaleo_entity_id_reaches_the_api_as_one_escaped_segment(env, sandbox, work, entity_id, segment):
    client = create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()
    apaleo = sandbox.sandboxes.extra["apaleo"]
    reservation = json.loads(load_fixture("apaleo", "reservation_confirmed"))
    reservation["id"] = entity_id
    apaleo.seed(reservation)
    webhook = json.loads(load_fixture("apaleo", "reservation_created"))
    webhook["data"]["entityId"] = entity_id
    response = client.post(
        f"/webhooks/harbour/apaleo/{APALEO_TOKEN}",
        data=json.dumps(webhook),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.json
    work()
    assert [t for t in apaleo.faults.targets if "/booking/" in t] == [f"/apaleo/booking/v1/reservations/{segment}"]
    assert apaleo.state()["calls"] == [entity_id]  # the sandbox read back exactly the id
    (booking,) = glu_activities(sandbox)
    assert booking["type"] == "Booking"
    assert booking["externalReference"].endswith(entity_id)


def stay(key: str, status: str, update: int = 0) -> Activity:
    return Activity(
        type="Booking",
        tenant="acme",
        source="mews",
        business_key=f"{key}:status:{update}" if update else key,
        happened_at=datetime(2026, 11, 24, 19, 12, tzinfo=UTC),
        person=Person(email="grace@example.com"),
        booking=Booking(
            check_in=datetime(2026, 12, 1, 15, tzinfo=UTC),
            check_out=datetime(2026, 12, 3, 11, tzinfo=UTC),
            status=status,  # type: ignore[arg-type]
            external_reference=key,
        ),
    )


class NoContacts:
    def get(self, email: str) -> str | None:
        return None

    def set(self, email: str, contact_id: str) -> None:
        return None


def test_loyaltylion_merchant_id_is_one_escaped_segment(sandbox, redis):
    config = LoyaltyLionConfig.model_validate(
        {"platform": "loyaltylion", "base_url": f"{sandbox.url}/loyaltylion", "api_key": DEFAULT_KEYS["loyaltylion"]}
    )
    client = LoyaltyLionClient(config, tenant="acme", redis=redis, timeout=5)
    key = f"mews:quay:{WEIRD}"
    client.deliver(stay(key, "Confirmed"), NoContacts())
    receipt = client.deliver(stay(key, "Canceled", update=1), NoContacts())  # PUT .../{name}/{merchant_id}
    assert receipt.remote_id.endswith(":declined")
    lion = sandbox.sandboxes.extra["loyaltylion"]
    assert f"/loyaltylion/v2/activities/hotel_booking/{path_segment(key)}" in lion.faults.targets
    (activity,) = lion.state()["activities"]
    assert activity["merchant_id"] == key and activity["state"] == "void"


def relay_event(email: str) -> LoyaltyEvent:
    return LoyaltyEvent(
        type="customer.loyalty.tier.upgraded",
        event_id="evcus_path_1",
        tenant="harbour",
        source="voucherify",
        occurred_at=datetime(2026, 11, 25, 8, 39, 59, tzinfo=UTC),
        email=email,
        tier="Gold",
    )


def test_customerio_identifier_is_one_escaped_segment(sandbox, redis):
    config = parse_esp(
        {
            "provider": "customerio",
            "site_id": "sandbox-site",
            "api_key": DEFAULT_KEYS["customerio"],
            "base_url": f"{sandbox.url}/customerio",
        },
        "esp",
    )
    email = "a/b?c#d..@example.com"
    build_esp_client(config, redis).send(relay_event(email), "loyalty_tier_upgraded")
    targets = sandbox.sandboxes.extra["customerio"].faults.targets
    assert targets == [
        "/customerio/api/v1/customers/a%2Fb%3Fc%23d..%40example.com",
        "/customerio/api/v1/customers/a%2Fb%3Fc%23d..%40example.com/events",
    ]


def test_mailchimp_list_id_is_one_escaped_segment(sandbox, redis):
    mailchimp: Any = sandbox.sandboxes.extra["mailchimp"]
    original = mailchimp.list_id
    mailchimp.list_id = WEIRD
    try:
        config = parse_esp(
            {
                "provider": "mailchimp",
                "api_key": DEFAULT_KEYS["mailchimp"],
                "list_id": WEIRD,
                "base_url": f"{sandbox.url}/mailchimp",
            },
            "esp",
        )
        receipt = build_esp_client(config, redis).send(relay_event("grace@example.com"), "loyalty_tier_upgraded")
    finally:
        mailchimp.list_id = original
    assert receipt.status == 204
    assert all(target.startswith(f"/mailchimp/lists/{WEIRD_SEGMENT}/members/") for target in mailchimp.faults.targets)
    assert len(mailchimp.faults.targets) == 2
