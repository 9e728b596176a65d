"""Pure translation tests of the Wi-Fi sources: fixtures per vendor and event → activities."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import load_fixture
from wifi_support import (
    HOTSPOT_KEY,
    MERAKI_VALIDATOR,
    PURPLE_TOKEN,
    SOCIALWIFI_AUTH,
    hotspot_signature,
    mist_headers,
    purple_login,
    wifi_tenants_toml,
)

from connector.activities import hash_identifier
from connector.errors import ErasureRequested, PayloadError, SignatureError, UnsupportedEvent
from connector.settings import Tenant, parse_tenants
from connector.sources.base import Envelope, InboundRequest, TranslationContext
from connector.sources.registry import SOURCES
from connector.sources.wifi import WifiConfig, business_key, parse_time, period_start
from connector.vendors.standard.wifi_login import SCHEMA_PATH, json_schema

RECEIVED = "2026-11-25T23:59:00+00:00"


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    return parse_tenants(tomllib.loads(wifi_tenants_toml("http://sandbox.invalid")))


def translate(
    tenants: dict[str, Tenant],
    source: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    tenant: str = "harbour",
    token: str | None = None,
) -> list[Any]:
    """verify + identify + to_activities, as web tier and worker do."""
    adapter = SOURCES[source]
    config = tenants[tenant].sources[source]
    request = InboundRequest(raw=body, headers={k.lower(): v for k, v in (headers or {}).items()}, path_token=token)
    adapter.verify(request, config)
    envelope = adapter.identify(request, config, tenant)
    envelope = Envelope(envelope.source, envelope.tenant, envelope.event_type, envelope.delivery_id, RECEIVED)
    context = TranslationContext(
        tenant=tenant, timezone=tenants[tenant].zone, platform="glu", now=datetime(2026, 11, 26, tzinfo=UTC)
    )
    return adapter.to_activities(envelope, json.loads(body), context, config)


def identify(
    tenants: dict[str, Tenant],
    source: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> Envelope:
    adapter = SOURCES[source]
    request = InboundRequest(raw=body, headers={k.lower(): v for k, v in (headers or {}).items()}, path_token=token)
    return adapter.identify(request, tenants["harbour"].sources[source], "harbour")


# --- shared helper -------------------------------------------------------------------------------


def test_source_timezone_defaults_to_the_tenants(tenants):
    assert tenants["harbour"].sources["purple"].timezone == "Europe/London"  # type: ignore[attr-defined]
    assert tenants["marina"].sources["purple"].timezone == "Asia/Tokyo"  # type: ignore[attr-defined]
    assert WifiConfig().timezone == "UTC"


def test_unknown_timezones_are_config_errors():
    from connector.errors import ConfigError

    doc = tomllib.loads(wifi_tenants_toml("http://x"))
    doc["tenants"]["harbour"]["sources"]["purple"]["venues"]["harbour-tokyo"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match=r"purple\.venues\.harbour-tokyo\.timezone"):
        parse_tenants(doc)


@pytest.mark.parametrize(
    ("window", "local", "start"),
    [
        ("day", "2026-11-25", "2026-11-25"),
        ("week", "2026-11-25", "2026-11-23"),
        ("month", "2026-11-25", "2026-11-01"),
    ],
)
def test_period_start(window, local, start):
    assert period_start(datetime.fromisoformat(local).date(), window).isoformat() == start


def test_business_key_uses_the_local_date_of_the_venue():
    late = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)  # 01:30 on the 26th in Tokyo
    assert business_key("purple", "v", "a@example.com", late, ZoneInfo("Europe/London"), "day").endswith(":2026-11-25")
    assert business_key("purple", "v", "a@example.com", late, ZoneInfo("Asia/Tokyo"), "day").endswith(":2026-11-26")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T09:12:41+01:00", "2026-11-25T09:12:41+01:00"),
        ("2026-11-25T09:12:41Z", "2026-11-25T09:12:41+00:00"),
        ("2026-11-25 10:20:30", "2026-11-25T10:20:30+00:00"),
        (1795606800, "2026-11-25T11:40:00+00:00"),
        (1795606800123, "2026-11-25T11:40:00.123000+00:00"),
        ("1795606800", "2026-11-25T11:40:00+00:00"),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value).isoformat() == expected


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        True,
        {"t": 1},
        None,
        1e300,
        float("inf"),
        float("nan"),
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        -99999999999,
    ],
)
def test_parse_time_rejects_garbage(value):
    with pytest.raises(PayloadError):
        parse_time(value)


# --- purple ----------------------------------------------------------------------------------------


def test_purple_login_becomes_connected_to_wifi(tenants):
    [activity] = translate(tenants, "purple", load_fixture("purple", "login"), token=PURPLE_TOKEN)
    guest = hash_identifier("ada.lovelace@example.com")
    assert activity.type == "Connected to wifi"
    assert activity.business_key == f"purple:harbour-lobby:{guest}:2026-11-25"
    assert activity.happened_at.isoformat() == "2026-11-25T09:12:41+00:00"
    assert activity.venue == "Harbour Hotel Lobby"
    assert activity.person.email == "ada.lovelace@example.com"
    assert activity.person.first_name == "Ada"
    assert activity.person.marketing_consent is True
    assert "3c:22:fb" not in activity.model_dump_json()  # the MAC never leaves


def test_purple_delivery_id_is_the_business_key(tenants):
    first = identify(tenants, "purple", purple_login(timestamp="2026-11-25T08:00:00+00:00"))
    again = identify(tenants, "purple", purple_login(timestamp="2026-11-25T22:59:00+00:00"))
    tomorrow = identify(tenants, "purple", purple_login(timestamp="2026-11-26T00:01:00+00:00"))
    assert first.delivery_id == again.delivery_id
    assert first.delivery_id != tomorrow.delivery_id
    assert "ada" not in first.delivery_id and "@" not in first.delivery_id


def test_purple_venue_timezone_override(tenants):
    body = purple_login(venue="harbour-tokyo", timestamp="2026-11-25T16:30:00+00:00")
    [activity] = translate(tenants, "purple", body, token=PURPLE_TOKEN)
    assert activity.business_key.endswith(":2026-11-26")
    assert activity.happened_at.isoformat() == "2026-11-26T01:30:00+09:00"
    assert activity.venue == "Harbour Tokyo"


def test_purple_mac_only_guest_is_ignored_and_counted(tenants):
    with pytest.raises(UnsupportedEvent) as caught:
        identify(tenants, "purple", load_fixture("purple", "login_mac_only"))
    assert caught.value.counter == "no_email"
    assert "8a:41" not in caught.value.reason


def test_purple_without_consent_flag_leaves_consent_unknown(tenants):
    body = json.loads(load_fixture("purple", "login"))
    del body["user"]["marketing_opt_in"]
    [activity] = translate(tenants, "purple", json.dumps(body).encode(), token=PURPLE_TOKEN)
    assert activity.person.marketing_consent is None


@pytest.mark.parametrize("token", [None, "", "wrong", PURPLE_TOKEN + "x"])
def test_purple_rejects_bad_tokens(tenants, token):
    with pytest.raises(SignatureError):
        translate(tenants, "purple", load_fixture("purple", "login"), token=token)


def test_purple_validation_post_is_answered_without_a_job(tenants):
    adapter = SOURCES["purple"]
    config = tenants["harbour"].sources["purple"]
    for raw in (b"", load_fixture("purple", "validation")):
        answer = adapter.answer_ping(InboundRequest(raw=raw, headers={}), config)
        assert answer is not None and answer.status == 200
    assert adapter.answer_ping(InboundRequest(raw=load_fixture("purple", "login"), headers={}), config) is None


# --- meraki ----------------------------------------------------------------------------------------


def test_meraki_known_user_becomes_activity_and_anonymous_are_dropped(tenants):
    activities = translate(tenants, "meraki", load_fixture("meraki", "observations"))
    assert len(activities) == 1
    [activity] = activities
    assert activity.business_key == f"meraki:N_24329156:{hash_identifier('grace.hopper@example.com')}:2026-11-25"
    assert activity.happened_at.isoformat() == "2026-11-25T18:41:09+00:00"
    assert activity.venue == "Harbour Hotel"
    assert activity.person.marketing_consent is None
    assert "00:11:22" not in activity.model_dump_json()


def test_meraki_anonymous_post_is_ignored_at_identify(tenants):
    with pytest.raises(UnsupportedEvent) as caught:
        identify(tenants, "meraki", load_fixture("meraki", "observations_anonymous"))
    assert caught.value.counter == "anonymous_presence"
    assert "da:a1" not in caught.value.reason


@pytest.mark.parametrize(
    ("change", "counter"), [({"version": "2.0"}, "unsupported_version"), ({"type": "BLE"}, "not_wifi")]
)
def test_meraki_other_versions_and_ble_are_ignored(tenants, change, counter):
    body = {**json.loads(load_fixture("meraki", "observations")), **change}
    with pytest.raises(UnsupportedEvent) as caught:
        identify(tenants, "meraki", json.dumps(body).encode())
    assert caught.value.counter == counter


@pytest.mark.parametrize("secret", [None, "", "nope", 42])
def test_meraki_rejects_bad_body_secret(tenants, secret):
    body = json.loads(load_fixture("meraki", "observations"))
    body["secret"] = secret
    with pytest.raises(SignatureError):
        translate(tenants, "meraki", json.dumps(body).encode())


def test_meraki_get_answers_validator_as_text(tenants):
    answer = SOURCES["meraki"].answer_get(
        InboundRequest(raw=b"", headers={}, method="GET"),
        tenants["harbour"].sources["meraki"],
    )
    assert (answer.status, answer.body, answer.content_type) == (200, MERAKI_VALIDATOR, "text/plain")


# --- socialwifi ------------------------------------------------------------------------------------


def test_socialwifi_upsert(tenants):
    [activity] = translate(
        tenants, "socialwifi", load_fixture("socialwifi", "upsert"), {"Authorization": SOCIALWIFI_AUTH}
    )
    guest = hash_identifier("mary.jackson@example.com")
    assert activity.business_key == f"socialwifi:marina-terrace:{guest}:2026-11-25"
    assert activity.happened_at.isoformat() == "2026-11-25T12:30:00+00:00"
    assert activity.person.marketing_consent is True
    assert activity.venue == "Marina Terrace"


def test_socialwifi_delete_requests_erasure_by_hash(tenants):
    with pytest.raises(ErasureRequested) as caught:
        translate(tenants, "socialwifi", load_fixture("socialwifi", "delete"), {"Authorization": SOCIALWIFI_AUTH})
    assert caught.value.subject_hashes == (hash_identifier("mary.jackson@example.com"),)
    assert "mary" not in caught.value.reason


@pytest.mark.parametrize("auth", [None, "", "Bearer wrong", SOCIALWIFI_AUTH.lower()])
def test_socialwifi_rejects_bad_authorization(tenants, auth):
    headers = {} if auth is None else {"Authorization": auth}
    with pytest.raises(SignatureError):
        translate(tenants, "socialwifi", load_fixture("socialwifi", "upsert"), headers)


def test_socialwifi_unknown_event_is_ignored(tenants):
    body = json.loads(load_fixture("socialwifi", "upsert"))
    body["type"] = "Merge"
    with pytest.raises(UnsupportedEvent):
        identify(tenants, "socialwifi", json.dumps(body).encode(), {"Authorization": SOCIALWIFI_AUTH})


# --- mist ------------------------------------------------------------------------------------------


def test_mist_guest_authorization(tenants):
    body = load_fixture("mist", "guest_authorizations")
    [activity] = translate(tenants, "mist", body, mist_headers(body))
    site = "4ac1dcf4-9d8b-7211-65c4-057819f0862b"
    assert activity.business_key == f"mist:{site}:{hash_identifier('dorothy.vaughan@example.com')}:2026-11-25"
    assert activity.happened_at.isoformat() == "2026-11-25T11:40:00+00:00"
    assert activity.venue == "Harbour Spa"
    assert "5684dae9ac8b" not in activity.model_dump_json()


def test_mist_client_join_without_email_is_ignored(tenants):
    body = load_fixture("mist", "client_join")
    with pytest.raises(UnsupportedEvent) as caught:
        identify(tenants, "mist", body, mist_headers(body))
    assert caught.value.counter == "no_email"


def test_mist_accepts_the_old_secret_during_rotation(tenants):
    from wifi_support import MIST_OLD_SECRET

    body = load_fixture("mist", "guest_authorizations")
    assert len(translate(tenants, "mist", body, mist_headers(body, MIST_OLD_SECRET))) == 1


@pytest.mark.parametrize("mutate", ["missing", "v1_only", "wrong_secret", "not_hex", "base64", "tampered"])
def test_mist_rejects_bad_signatures(tenants, mutate):
    body = load_fixture("mist", "guest_authorizations")
    headers = mist_headers(body)
    if mutate == "missing":
        headers = {"Content-Type": "application/json"}
    elif mutate == "v1_only":
        del headers["X-Mist-Signature-v2"]
    elif mutate == "wrong_secret":
        headers = mist_headers(body, "other")
    elif mutate == "not_hex":
        headers["X-Mist-Signature-v2"] = "zz" * 32
    elif mutate == "base64":
        headers["X-Mist-Signature-v2"] = hotspot_signature(body, "mist-webhook-secret-harbour")
    elif mutate == "tampered":
        body = body.replace(b"dorothy", b"mallory")
    with pytest.raises(SignatureError):
        translate(tenants, "mist", body, headers)


# --- hotspotsystem ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "HTTP_X_HOTSPOTSYSTEM_HMAC_SHA256",
        "X_HOTSPOTSYSTEM_HMAC_SHA256",
        "X-HotspotSystem-Hmac-Sha256",
        "Http-X-Hotspotsystem-Hmac-Sha256",
    ],
)
def test_hotspotsystem_customer_create(tenants, header):
    body = load_fixture("hotspotsystem", "customer_create")
    # the web tier presents header names lower-cased with dashes, as werkzeug does
    [activity] = translate(tenants, "hotspotsystem", body, {header.replace("_", "-"): hotspot_signature(body)})
    assert activity.business_key == f"hotspotsystem:1:{hash_identifier('annie.easley@example.com')}:2026-11-25"
    assert activity.happened_at.isoformat() == "2026-11-25T10:20:30+00:00"
    assert activity.person.marketing_consent is False
    assert activity.person.first_name is None


def test_hotspotsystem_mac_only_customer_is_ignored(tenants):
    body = load_fixture("hotspotsystem", "customer_create_mac_only")
    with pytest.raises(UnsupportedEvent) as caught:
        identify(tenants, "hotspotsystem", body, {"x-hotspotsystem-hmac-sha256": hotspot_signature(body)})
    assert caught.value.counter == "no_email"


def test_hotspotsystem_without_location_uses_configured_venue(tenants):
    body = json.loads(load_fixture("hotspotsystem", "customer_create"))
    del body["location_id"]
    raw = json.dumps(body).encode()
    [activity] = translate(tenants, "hotspotsystem", raw, {"x-hotspotsystem-hmac-sha256": hotspot_signature(raw)})
    assert activity.business_key.startswith("hotspotsystem:harbour-garden:")


@pytest.mark.parametrize("signature", [None, "", "not base64!", "aGVsbG8=", "hex"])
def test_hotspotsystem_rejects_bad_signatures(tenants, signature):
    body = load_fixture("hotspotsystem", "customer_create")
    if signature == "hex":
        import hashlib
        import hmac

        signature = hmac.new(HOTSPOT_KEY.encode(), body, hashlib.sha256).hexdigest()
    headers = {} if signature is None else {"x-hotspotsystem-hmac-sha256": signature}
    with pytest.raises(SignatureError):
        translate(tenants, "hotspotsystem", body, headers)


# --- standard wifi.login ---------------------------------------------------------------------------


def test_standard_wifi_login_handler(tenants):
    from connector.vendors.standard.source import EVENT_HANDLERS

    body = json.loads(load_fixture("standard", "wifi_login"))
    context = TranslationContext(
        tenant="harbour", timezone=ZoneInfo("Europe/London"), platform="glu", now=datetime(2026, 11, 26, tzinfo=UTC)
    )
    envelope = Envelope("standard", "harbour", "wifi.login", "msg_1", RECEIVED)
    [activity] = EVENT_HANDLERS["wifi.login"](body["data"], envelope, context)
    guest = hash_identifier("katherine.johnson@example.com")
    assert activity.business_key == f"unifi:marina-bar:{guest}:2026-11-26"  # 06:04 next day in Tokyo
    assert activity.happened_at.isoformat() == "2026-11-26T06:04:57+09:00"
    assert activity.source == "unifi"
    assert activity.person.marketing_consent is False
    assert activity.venue == "Marina Bar"

    body["data"]["venue"].pop("timezone")
    [local] = EVENT_HANDLERS["wifi.login"](body["data"], envelope, context)
    assert local.business_key.endswith(":2026-11-25")  # tenant timezone

    body["data"]["guest"].pop("email")
    with pytest.raises(UnsupportedEvent):
        EVENT_HANDLERS["wifi.login"](body["data"], envelope, context)
    body["data"]["logged_in_at"] = "2026-11-25T21:04:57"  # no offset
    with pytest.raises(PayloadError):
        EVENT_HANDLERS["wifi.login"](body["data"], envelope, context)


def test_committed_schema_matches_the_model():
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema()


@pytest.mark.parametrize(
    ("source", "config", "request_kwargs"),
    [
        ("purple", {"token": ""}, {"path_token": ""}),
        ("socialwifi", {"authorization": ""}, {"headers": {"authorization": ""}}),
        ("meraki", {"validator": "v", "secret": ""}, {"raw": b'{"secret": ""}'}),
        ("mist", {"secrets": [""]}, {"headers": {"x-mist-signature-v2": "00"}}),
        ("hotspotsystem", {"secrets": [""]}, {"headers": {"x-hotspotsystem-hmac-sha256": "AA=="}}),
    ],
)
def test_sources_without_a_secret_reject_everything(source, config, request_kwargs):
    adapter = SOURCES[source]
    kwargs = {"raw": b"{}", "headers": {}, **request_kwargs}
    with pytest.raises(SignatureError, match=r"no (token|secret) configured"):
        adapter.verify(InboundRequest(**kwargs), adapter.config_model.model_validate(config))
