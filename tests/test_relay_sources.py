"""Voucherify, LoyaltyLion and standard (Glu) loyalty events: verification, identity, mapping, web answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import load_fixture
from pydantic import SecretStr
from relay_helpers import (
    LOYALTYLION_SECRET,
    VOUCHERIFY_OLD_SECRET,
    VOUCHERIFY_SECRET,
    loyaltylion_headers,
    relay_toml,
    standard_headers,
    voucherify_headers,
)

from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.queue import INGEST_QUEUE, get_queue
from connector.sources.base import InboundRequest, TranslationContext
from connector.vendors.loyaltylion.source import SOURCE as LOYALTYLION
from connector.vendors.loyaltylion.source import LoyaltyLionConfig, canonical_type
from connector.vendors.standard.loyalty_events import json_schema
from connector.vendors.standard.source import SOURCE as STANDARD
from connector.vendors.standard.source import StandardConfig
from connector.vendors.voucherify.source import SOURCE as VOUCHERIFY
from connector.vendors.voucherify.source import VoucherifyConfig, compact_json

VF_CONFIG = VoucherifyConfig(secrets=[SecretStr(VOUCHERIFY_SECRET)])
LL_CONFIG = LoyaltyLionConfig(secrets=[SecretStr(LOYALTYLION_SECRET)])
CONTEXT = TranslationContext(
    tenant="harbour", timezone=ZoneInfo("Europe/London"), platform="glu", now=datetime.now(UTC)
)


def inbound(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(raw=body, headers={k.lower(): v for k, v in headers.items()})


def vf_event(name: str):
    body = load_fixture("voucherify", name)
    request = inbound(body, voucherify_headers(body))
    envelope = VOUCHERIFY.identify(request, VF_CONFIG, "harbour")
    return envelope, VOUCHERIFY.to_loyalty_events(envelope, json.loads(body), CONTEXT, VF_CONFIG)


def ll_event(name: str):
    body = load_fixture("loyaltylion", name)
    request = inbound(body, loyaltylion_headers(body))
    envelope = LOYALTYLION.identify(request, LL_CONFIG, "harbour")
    return envelope, LOYALTYLION.to_loyalty_events(envelope, json.loads(body), CONTEXT, LL_CONFIG)


# --- Voucherify -----------------------------------------------------------------------------------


def test_voucherify_raw_signature_verifies_with_any_rotated_secret():
    body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")
    VOUCHERIFY.verify(inbound(body, voucherify_headers(body)), VF_CONFIG)
    rotated = VoucherifyConfig(secrets=[SecretStr(VOUCHERIFY_OLD_SECRET), SecretStr(VOUCHERIFY_SECRET)])
    VOUCHERIFY.verify(inbound(body, voucherify_headers(body, VOUCHERIFY_OLD_SECRET)), rotated)


def test_voucherify_compact_reserialisation_verifies_like_the_node_sdk():
    body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")  # pretty-printed, non-ASCII name
    compact = compact_json(body)
    assert b"\n" not in compact and "Zoë".encode() in compact
    VOUCHERIFY.verify(inbound(body, voucherify_headers(body, sign=compact)), VF_CONFIG)


def test_voucherify_compact_keeps_js_number_formatting():
    assert compact_json(b'{"a": 1.0, "b": 2.5, "c": [1, "\xc3\xa9"]}') == '{"a":1,"b":2.5,"c":[1,"é"]}'.encode()


@pytest.mark.parametrize(
    ("header", "secrets"),
    [
        (None, [VOUCHERIFY_SECRET]),
        ("not-hex", [VOUCHERIFY_SECRET]),
        ("00" * 32, [VOUCHERIFY_SECRET]),
        ("from-other-secret", [VOUCHERIFY_SECRET]),
        ("valid", [""]),
    ],
)
def test_voucherify_bad_signatures_are_rejected(header, secrets):
    body = load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024")
    headers = {"content-type": "application/json"}
    if header == "valid":
        headers.update(voucherify_headers(body))
    elif header == "from-other-secret":
        headers.update(voucherify_headers(body, "someone-else"))
    elif header is not None:
        headers["x-voucherify-signature"] = header
    config = VoucherifyConfig(secrets=[SecretStr(s) for s in secrets])
    with pytest.raises(SignatureError):
        VOUCHERIFY.verify(inbound(body, headers), config)


def test_voucherify_v2024_dedups_on_event_id_not_sendout_id():
    envelope, events = vf_event("customer_loyalty_tier_upgraded_v2024")
    assert envelope.delivery_id == "evcus_0c150c51730c6b60b1"
    assert envelope.event_type == "customer.loyalty.tier.upgraded"
    (event,) = events
    assert event.event_id == "evcus_0c150c51730c6b60b1"
    assert event.email == "zoe.angstrom@example.com"
    assert (event.first_name, event.last_name) == ("Zoë", "Ångström")
    assert (event.tier, event.previous_tier) == ("Gold", "Silver")
    assert event.occurred_at.isoformat() == "2026-11-25T08:39:59.188000+00:00"
    assert event.customer_id == "cust_2p0TvCOvB25HWUrW9JFf4czJ"
    assert event.source_id == "harbour-guest-8812"
    assert event.properties["campaign"] == "Harbour Rewards"
    assert event.properties["webhook_version"] == "v2024-01-01"


def test_voucherify_points_event_maps_points_and_balance():
    _, (event,) = vf_event("customer_rewarded_loyalty_points_v2024")
    assert (event.type, event.points, event.balance) == ("customer.rewarded.loyalty_points", 150, 1200)
    assert event.properties["voucher_code"] == "LOYAL-8JQ2"


def test_voucherify_v2018_envelope_uses_top_level_event_id():
    envelope, (event,) = vf_event("customer_rewarded_v2018")
    assert envelope.delivery_id == "evcus_0b4a5e1c2d3f4a5b6c"
    assert event.reward == "Free night" and event.reward_type == "MATERIAL"
    assert event.properties["webhook_version"] == "v2018-08-01"
    assert event.occurred_at.isoformat() == "2026-11-24T17:05:12.401000+00:00"


def test_voucherify_non_customer_types_are_ignored():
    body = load_fixture("voucherify", "voucher_published_v2024")
    with pytest.raises(UnsupportedEvent):
        VOUCHERIFY.identify(inbound(body, voucherify_headers(body)), VF_CONFIG, "harbour")


def test_voucherify_customer_without_email_is_ignored_not_retried():
    body = json.loads(load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024"))
    body["data"]["customer"]["email"] = None
    envelope, _ = vf_event("customer_rewarded_loyalty_points_v2024")
    with pytest.raises(UnsupportedEvent):
        VOUCHERIFY.to_loyalty_events(envelope, body, CONTEXT, VF_CONFIG)


def test_voucherify_without_event_id_is_a_payload_error():
    body = json.loads(load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024"))
    del body["event"]["id"]
    raw = json.dumps(body).encode()
    with pytest.raises(PayloadError):
        VOUCHERIFY.identify(inbound(raw, voucherify_headers(raw)), VF_CONFIG, "harbour")


# --- LoyaltyLion -----------------------------------------------------------------------------------


def test_loyaltylion_signature_is_base64_of_raw_body():
    body = load_fixture("loyaltylion", "customers_update")
    LOYALTYLION.verify(inbound(body, loyaltylion_headers(body)), LL_CONFIG)
    with pytest.raises(SignatureError):
        LOYALTYLION.verify(inbound(body + b" ", loyaltylion_headers(body)), LL_CONFIG)
    with pytest.raises(SignatureError):
        LOYALTYLION.verify(inbound(body, {"x-loyaltylion-hmac-sha256": "%%%"}), LL_CONFIG)
    with pytest.raises(SignatureError):
        LOYALTYLION.verify(inbound(body, loyaltylion_headers(body)), LoyaltyLionConfig(secrets=[SecretStr("")]))


def test_loyaltylion_customers_update_with_customer_at_top_level():
    envelope, (event,) = ll_event("customers_update")
    assert envelope.delivery_id == "bff1bddb-6cd8-4c2c-9619-18744657053c"
    assert event.type == "customer.updated"
    assert event.event_id == "bff1bddb-6cd8-4c2c-9619-18744657053c"
    assert (event.email, event.first_name, event.last_name) == ("alice@example.com", "Alice", "Blue")
    assert (event.tier, event.balance, event.source_id, event.customer_id) == ("Bronze", 500, "5000001", "1001")
    assert event.occurred_at.isoformat() == "2026-11-25T03:00:01.535000+00:00"


def test_loyaltylion_tier_upgraded_reads_payload_properties():
    envelope, (event,) = ll_event("customer_tier_upgraded")
    assert envelope.event_type == "customer.loyalty.tier.upgraded"
    assert envelope.delivery_id == "5d1c2a7e-9b1f-4f4c-8f0e-0a7c1e2b3c4d"
    assert event.event_id == "332d90cd-1ba1-4a7b-abd1-79e643b4b89f"
    assert (event.tier, event.previous_tier) == ("Gold", "Silver")
    assert (event.email, event.first_name, event.last_name) == ("jessica@example.com", "Jessica", "White")
    assert event.occurred_at.isoformat() == "2026-11-25T11:00:02+00:00"  # event time, not send time


def test_loyaltylion_claimed_reward():
    envelope, (event,) = ll_event("customer_claimed_reward")
    assert envelope.event_type == "customer.reward_redemptions.completed"
    assert (event.reward, event.reward_type) == ("£5 off your next stay", "voucher")
    assert event.properties["voucher_code"] == "LL-5OFF-Q8Z1"
    assert event.properties["discount_amount"] == "5"


def test_loyaltylion_payload_wrapped_customers_update_also_reads():
    body = json.loads(load_fixture("loyaltylion", "customers_update"))
    body["payload"] = {"customer": body.pop("customer")}
    raw = json.dumps(body).encode()
    envelope = LOYALTYLION.identify(inbound(raw, loyaltylion_headers(raw)), LL_CONFIG, "harbour")
    (event,) = LOYALTYLION.to_loyalty_events(envelope, body, CONTEXT, LL_CONFIG)
    assert event.email == "alice@example.com" and event.event_id == body["id"]


def test_loyaltylion_topics_map_to_the_canonical_vocabulary():
    assert canonical_type("program_events/customer.tier_downgraded") == "customer.loyalty.tier.downgraded"
    assert canonical_type("program_events/customer.approaching_tier_upgrade") == "customer.loyalty.tier.approaching"
    assert canonical_type("reward_available_notification") == "customer.reward.available"
    assert canonical_type("rewards/store_fulfilment") is None
    body = b'{"id": "x1", "topic": "rewards/store_fulfilment", "test": true}'
    with pytest.raises(UnsupportedEvent):
        LOYALTYLION.identify(inbound(body, loyaltylion_headers(body)), LL_CONFIG, "harbour")


# --- standard (Glu canonical body) ----------------------------------------------------------------


def test_standard_canonical_loyalty_event():
    body = load_fixture("standard", "customer_loyalty_tier_upgraded")
    from relay_helpers import STANDARD_SECRET

    config = StandardConfig(secrets=[SecretStr(STANDARD_SECRET)])
    request = inbound(body, standard_headers(body))
    STANDARD.verify(request, config)
    envelope = STANDARD.identify(request, config, "harbour")
    assert STANDARD.is_loyalty_event(envelope.event_type)
    (event,) = STANDARD.to_loyalty_events(envelope, json.loads(body), CONTEXT, config)
    assert (event.event_id, event.email, event.tier, event.points, event.balance) == (
        "glu-wf-81723",
        "marie.curie@example.com",
        "Gold",
        250,
        1200,
    )
    assert event.source == "standard"
    assert event.properties == {"property": "Harbour Hotel Brighton"}


def test_standard_canonical_body_violations_are_payload_errors():
    from relay_helpers import STANDARD_SECRET

    config = StandardConfig(secrets=[SecretStr(STANDARD_SECRET)])
    body = json.loads(load_fixture("standard", "customer_loyalty_tier_upgraded"))
    good = json.loads(json.dumps(body))
    body["data"]["occurred_at"] = "2026-11-25T09:59:58"  # no offset
    raw = json.dumps(body).encode()
    with pytest.raises(PayloadError, match="occurred_at"):
        STANDARD.identify(inbound(raw, standard_headers(raw)), config, "harbour")
    raw = json.dumps(good).encode()
    envelope = STANDARD.identify(inbound(raw, standard_headers(raw)), config, "harbour")
    with pytest.raises(PayloadError, match="occurred_at"):  # the worker checks again (stored jobs)
        STANDARD.to_loyalty_events(envelope, body, CONTEXT, config)
    good["data"]["customer"]["email"] = "not an address"
    raw = json.dumps(good).encode()
    with pytest.raises(UnsupportedEvent):
        STANDARD.identify(inbound(raw, standard_headers(raw)), config, "harbour")


def test_committed_schema_equals_generated():
    committed = json.loads(
        (Path(__file__).parent.parent / "schemas" / "standard-loyalty-event.schema.json").read_text()
    )
    assert committed == json_schema()


# --- web tier ----------------------------------------------------------------------------------------


def test_web_bad_voucherify_signature_is_401_and_no_job(env, sandbox, redis):
    from connector.web import create_app

    client = create_app(env(relay_toml(sandbox.url))).test_client()
    body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")
    response = client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body, "wrong"))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_signature"
    assert get_queue(redis, INGEST_QUEUE).count == 0


def test_web_bad_loyaltylion_signature_is_401_and_no_job(env, sandbox, redis):
    from connector.web import create_app

    client = create_app(env(relay_toml(sandbox.url))).test_client()
    body = load_fixture("loyaltylion", "customer_tier_upgraded")
    response = client.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body, "wrong"))
    assert response.status_code == 401
    assert get_queue(redis, INGEST_QUEUE).count == 0


def test_web_types_outside_esp_events_are_ignored(env, sandbox, redis):
    from connector.web import create_app

    toml = relay_toml(sandbox.url, events=["customer.rewarded.loyalty_points"])
    client = create_app(env(toml)).test_client()
    body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")
    response = client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body))
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "esp.events" in response.json["reason"]
    assert get_queue(redis, INGEST_QUEUE).count == 0
    wanted = load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024")
    response = client.post("/webhooks/harbour/voucherify", data=wanted, headers=voucherify_headers(wanted))
    assert response.status_code == 202


def test_web_unsupported_voucherify_type_is_ignored(client_for_relay):
    body = load_fixture("voucherify", "voucher_published_v2024")
    response = client_for_relay.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body))
    assert response.status_code == 200 and response.json["status"] == "ignored"


def test_web_no_esp_configured_is_ignored(env, sandbox):
    from connector.web import create_app

    toml = relay_toml(sandbox.url).split("[tenants.harbour.esp]")[0]
    client = create_app(env(toml)).test_client()
    body = load_fixture("loyaltylion", "customer_tier_upgraded")
    response = client.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body))
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "reason": "no ESP is configured for this tenant"}


def test_web_voucherify_without_event_id_is_400_and_no_job(client_for_relay, redis):
    body = json.loads(load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024"))
    del body["event"]["id"]
    raw = json.dumps(body).encode()
    response = client_for_relay.post("/webhooks/harbour/voucherify", data=raw, headers=voucherify_headers(raw))
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_payload"
    assert get_queue(redis, INGEST_QUEUE).count == 0


def test_web_loyaltylion_without_topic_or_id_is_400(client_for_relay, redis):
    for raw in (b'{"id": "x1", "customer": {"email": "a@example.com"}}', b'{"topic": "customers/update"}'):
        headers = loyaltylion_headers(raw, topic="")
        response = client_for_relay.post("/webhooks/harbour/loyaltylion", data=raw, headers=headers)
        assert response.status_code == 400, raw
    assert get_queue(redis, INGEST_QUEUE).count == 0


def test_web_loyaltylion_retry_of_the_same_delivery_is_duplicate(client_for_relay, redis):
    body = load_fixture("loyaltylion", "customers_update")
    first = client_for_relay.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body))
    again = client_for_relay.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body))
    assert (first.status_code, again.status_code, again.json["status"]) == (202, 200, "duplicate")
    assert get_queue(redis, INGEST_QUEUE).count == 1


def test_web_voucherify_wrong_content_type_is_415(client_for_relay):
    body = load_fixture("voucherify", "customer_rewarded_v2018")
    headers = {**voucherify_headers(body), "Content-Type": "text/plain"}
    assert client_for_relay.post("/webhooks/harbour/voucherify", data=body, headers=headers).status_code == 415


def test_web_customer_without_email_is_ignored_and_no_job(client_for_relay, redis):
    body = json.loads(load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024"))
    body["data"]["customer"]["email"] = None
    raw = json.dumps(body).encode()
    response = client_for_relay.post("/webhooks/harbour/voucherify", data=raw, headers=voucherify_headers(raw))
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "reason": "the customer has no email address"}
    body = json.loads(load_fixture("loyaltylion", "customer_tier_upgraded"))
    body["payload"]["properties"]["customer"]["email"] = ""
    raw = json.dumps(body).encode()
    response = client_for_relay.post("/webhooks/harbour/loyaltylion", data=raw, headers=loyaltylion_headers(raw))
    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert get_queue(redis, INGEST_QUEUE).count == 0


@pytest.fixture
def client_for_relay(env, sandbox):
    from connector.web import create_app

    return create_app(env(relay_toml(sandbox.url))).test_client()
