"""ESP configuration, request shapes and vendor rules (pure, plus a few real calls to the sandboxes)."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import requests
from pydantic import SecretStr

from connector.activities import LOYALTY_EVENT_NAMES, LoyaltyEvent
from connector.errors import ConfigError, FatalDestinationError, RetriableDestinationError
from connector.esps.base import build_esp_client, rate_limiter
from connector.esps.registry import parse_esp
from connector.http import parse_reset_epoch
from connector.sandbox.relay_samples import voucherify_events
from connector.sandbox.server import DEFAULT_KEYS
from connector.settings import parse_tenants
from connector.sources.base import InboundRequest
from connector.vendors.activecampaign.esp import form
from connector.vendors.braze.esp import track_body
from connector.vendors.customerio.esp import CROCKFORD, event_body, event_ulid
from connector.vendors.intercom.esp import metadata
from connector.vendors.mailchimp.config import MAILCHIMP_NAME
from connector.vendors.mailchimp.esp import event_body as mailchimp_body
from connector.vendors.mailchimp.esp import subscriber_hash
from connector.vendors.voucherify.source import SOURCE as VOUCHERIFY
from connector.vendors.voucherify.source import VoucherifyConfig


def sample_event(**changes: object) -> LoyaltyEvent:
    data: dict[str, object] = {
        "type": "customer.loyalty.tier.upgraded",
        "event_id": "evcus_1",
        "tenant": "harbour",
        "source": "voucherify",
        "occurred_at": datetime(2026, 11, 25, 8, 39, 59, 188000, tzinfo=UTC),
        "email": " Zoe@Example.com ",
        "tier": "Gold",
        "previous_tier": "Silver",
        "points": 150,
        "balance": 1200,
        "properties": {"campaign": "Harbour Rewards", "recipient": "x", "$odd": "y", "long": "z" * 400},
    }
    data.update(changes)
    return LoyaltyEvent.model_validate(data)


def test_default_names_are_portable_for_every_esp():
    for slug in LOYALTY_EVENT_NAMES.values():
        assert MAILCHIMP_NAME.match(slug) and len(slug) <= 30


def test_names_are_rendered_per_provider():
    klaviyo = parse_esp({"provider": "klaviyo", "api_key": "pk_1"}, "esp")
    intercom = parse_esp({"provider": "intercom", "access_token": "t"}, "esp")
    braze = parse_esp({"provider": "braze", "api_key": "k", "base_url": "https://rest.iad-01.braze.com"}, "esp")
    assert klaviyo.event_name("customer.loyalty.tier.upgraded") == "Loyalty Tier Upgraded"
    assert intercom.event_name("customer.loyalty.tier.upgraded") == "loyalty-tier-upgraded"
    assert braze.event_name("customer.loyalty.tier.upgraded") == "loyalty_tier_upgraded"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('provider = "klaviyo"', "tenants.harbour.esp.api_key: Field required"),
        ('provider = "sendgrid"\napi_key = "x"', "tenants.harbour.esp.provider: must be one of"),
        ('provider = "klaviyo"\napi_key = "x"\nevents = ["customer.nope"]', "tenants.harbour.esp.events"),
        ('provider = "klaviyo"\napi_key = "x"\ncolour = "red"', "tenants.harbour.esp.colour: Extra inputs"),
        (
            'provider = "mailchimp"\napi_key = "x-us6"\nlist_id = "l"\nnames = {"customer.rewarded" = "Rewarded!"}',
            "tenants.harbour.esp.names",
        ),
        (
            'provider = "activecampaign"\naccount_id = "1"\nevent_key = "k"\n'
            'names = {"customer.rewarded" = "a_name_that_is_far_longer_than_32_chars"}',
            "longer than 32",
        ),
        ('provider = "intercom"\naccess_token = "t"\nnames = {"customer.rewarded" = "loyalty.rewarded"}', "'.'"),
        ('provider = "braze"\napi_key = "k"', "tenants.harbour.esp.base_url: Field required"),
    ],
)
def test_bad_esp_tables_name_the_key(table, message):
    document = (
        textwrap.dedent("""
        [tenants.harbour.loyalty]
        platform = "glu"
        base_url = "https://api.glu.io"
        [tenants.harbour.esp]
    """)
        + table
    )
    import tomllib

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_tenants(tomllib.loads(document))


def test_mailchimp_base_url_from_key_datacenter():
    config = parse_esp({"provider": "mailchimp", "api_key": "abc123-us6", "list_id": "l"}, "esp")
    assert config.api_base == "https://us6.api.mailchimp.com/3.0"  # type: ignore[attr-defined]


def test_mailchimp_subscriber_hash_and_string_properties():
    import hashlib

    assert subscriber_hash(" Zoe@Example.com") == hashlib.md5(b"zoe@example.com", usedforsecurity=False).hexdigest()
    assert subscriber_hash(" Zoe@Example.com") == subscriber_hash("zoe@example.com")
    body = mailchimp_body(sample_event(), "loyalty_tier_upgraded")
    assert all(isinstance(v, str) for v in body["properties"].values())
    assert body["properties"]["points"] == "150" and body["is_syncing"] is False
    assert body["occurred_at"] == "2026-11-25T08:39:59.188000+00:00"


def test_customerio_ulid_is_deterministic_and_well_formed():
    event = sample_event()
    first = event_ulid(event)
    assert first == event_ulid(sample_event()) and len(first) == 26 and set(first) <= set(CROCKFORD)
    assert first[0] in "01234567"  # 128 bits: the first character carries 3 bits
    assert event_ulid(sample_event(event_id="evcus_2")) != first
    later = sample_event(occurred_at=event.occurred_at + timedelta(milliseconds=1))
    assert event_ulid(later)[:10] > first[:10]  # the time prefix sorts
    body = event_body(event, "loyalty_tier_upgraded")
    assert "recipient" not in body["data"] and body["timestamp"] == int(event.occurred_at.timestamp())


def test_braze_body_rules():
    body = track_body(sample_event(), "loyalty_tier_upgraded")
    (event,) = body["events"]
    assert event["email"] == "zoe@example.com" and event["time"] == "2026-11-25T08:39:59.188000+00:00"
    assert "$odd" not in event["properties"] and event["properties"]["odd"] == "y"
    assert len(event["properties"]["long"]) == 255
    assert body["attributes"][0] == {"email": "zoe@example.com", "loyalty_tier": "Gold", "loyalty_points_balance": 1200}


def test_activecampaign_form_and_intercom_metadata():
    fields = form(sample_event(), "loyalty_tier_upgraded", "123", "key")
    assert fields["eventdata"] == "Gold" and json.loads(fields["visit"]) == {"email": "zoe@example.com"}
    meta = metadata(sample_event())
    assert len(meta) == 10 and list(meta)[:3] == ["source_event", "tier", "previous_tier"]


def test_reset_epoch_parsing():
    assert parse_reset_epoch("1000", now=990.0) == 10.0
    assert parse_reset_epoch("900", now=990.0) == 0.0
    assert parse_reset_epoch("soon") is None


def test_rate_budget_is_named_by_a_hash_not_the_key(redis):
    config = parse_esp({"provider": "klaviyo", "api_key": "pk_live_secret_123"}, "esp")
    limiter = rate_limiter(config, redis, "klaviyo")
    assert limiter.name.startswith("klaviyo:") and "pk_live" not in limiter.name
    assert (limiter.limit, limiter.period, limiter.burst) == (3000, 60.0, (300, 1.0))  # Klaviyo's two windows
    custom = parse_esp({"provider": "klaviyo", "api_key": "pk_live_secret_123", "rate_limit": 7}, "esp")
    assert rate_limiter(custom, redis, "klaviyo").limit == 7


def test_braze_event_not_processed_is_fatal(redis, sandbox):
    config = parse_esp(
        {"provider": "braze", "api_key": DEFAULT_KEYS["braze"], "base_url": f"{sandbox.url}/braze"}, "esp"
    )
    client = build_esp_client(config, redis)
    with pytest.raises(FatalDestinationError, match="did not process"):
        client.send(sample_event(), "")  # the call is accepted, the nameless event is not
    assert sandbox.sandboxes.extra["braze"].state()["events"] == []


def test_activecampaign_wrong_key_is_fatal_and_redacted(redis, sandbox):
    config = parse_esp(
        {
            "provider": "activecampaign",
            "account_id": "sandbox-actid",
            "event_key": "wrong-key-123",
            "base_url": f"{sandbox.url}/activecampaign",
        },
        "esp",
    )
    with pytest.raises(FatalDestinationError) as caught:
        build_esp_client(config, redis).send(sample_event(), "loyalty_tier_upgraded")
    assert "wrong-key-123" not in str(caught.value)


def test_mailchimp_429_pauses_the_shared_budget(redis, sandbox):
    config = parse_esp(
        {
            "provider": "mailchimp",
            "api_key": DEFAULT_KEYS["mailchimp"],
            "list_id": "sandbox-list",
            "base_url": f"{sandbox.url}/mailchimp",
        },
        "esp",
    )
    sandbox.sandboxes.extra["mailchimp"].faults.arm({"mode": "status", "status": 429})
    client = build_esp_client(config, redis)
    with pytest.raises(RetriableDestinationError) as caught:
        client.send(sample_event(), "loyalty_tier_upgraded")
    assert caught.value.retry_after == 10.0  # Mailchimp sends no signal: the documented default
    assert client.limiter is not None and client.limiter.paused_for() > 9


def test_sandbox_auth_is_enforced(sandbox):
    for vendor, path in [("klaviyo", "/api/events/"), ("braze", "/users/track"), ("intercom", "/events")]:
        response = requests.post(f"{sandbox.url}/{vendor}{path}", json={}, timeout=5)
        assert response.status_code == 401, vendor


def test_relay_samples_are_distinct_and_verify():
    config = VoucherifyConfig(secrets=[SecretStr("bench-secret")])
    seen = set()
    for headers, body in voucherify_events(8, "bench-secret"):
        request = InboundRequest(raw=body, headers={k.lower(): v for k, v in headers.items()})
        VOUCHERIFY.verify(request, config)
        envelope = VOUCHERIFY.identify(request, config, "harbour")
        seen.add(envelope.delivery_id)
    assert len(seen) == 8
