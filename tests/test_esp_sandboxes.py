"""The ESP sandboxes answer like the vendors: auth, request shapes, error bodies, dedup, 429 signals."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import requests

from connector.sandbox.server import DEFAULT_KEYS
from connector.vendors.klaviyo.config import KLAVIYO_REVISION

KLAVIYO = {"Authorization": f"Klaviyo-API-Key {DEFAULT_KEYS['klaviyo']}", "revision": KLAVIYO_REVISION}
BRAZE = {"Authorization": f"Bearer {DEFAULT_KEYS['braze']}"}
INTERCOM = {"Authorization": f"Bearer {DEFAULT_KEYS['intercom']}"}
MAILCHIMP = ("any", DEFAULT_KEYS["mailchimp"])
CUSTOMERIO = ("sandbox-site", DEFAULT_KEYS["customerio"])


def klaviyo_event(unique_id: str = "evt-1", metric: str = "Loyalty Tier Upgraded") -> dict[str, Any]:
    return {
        "data": {
            "type": "event",
            "attributes": {
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}},
                "properties": {"tier": "Gold"},
                "time": "2026-11-25T10:00:00+00:00",
                "unique_id": unique_id,
            },
        }
    }


def test_klaviyo_revision_metric_and_unique_id(sandbox):
    url = f"{sandbox.url}/klaviyo/api/events/"
    missing_revision = requests.post(
        url, json=klaviyo_event(), headers={"Authorization": KLAVIYO["Authorization"]}, timeout=5
    )
    assert missing_revision.status_code == 400 and missing_revision.json()["errors"][0]["code"] == "invalid"
    no_metric = requests.post(url, json=klaviyo_event(metric=""), headers=KLAVIYO, timeout=5)
    assert no_metric.status_code == 400
    assert no_metric.json()["errors"][0]["source"]["pointer"] == "/data/attributes/metric"
    for _ in range(2):
        assert requests.post(url, json=klaviyo_event(), headers=KLAVIYO, timeout=5).status_code == 202
    state = sandbox.sandboxes.extra["klaviyo"].state()
    assert state["event_posts"] == 3 and len(state["events"]) == 1  # unique_id dedup, still 202
    wrong_key = requests.post(
        url, json=klaviyo_event(), headers={**KLAVIYO, "Authorization": "Klaviyo-API-Key x"}, timeout=5
    )
    assert wrong_key.status_code == 401 and wrong_key.json()["errors"][0]["code"] == "not_authenticated"


def test_klaviyo_429_carries_retry_after(sandbox):
    sandbox.sandboxes.extra["klaviyo"].faults.arm({"mode": "status", "status": 429, "retry_after": 2})
    response = requests.post(f"{sandbox.url}/klaviyo/api/events/", json=klaviyo_event(), headers=KLAVIYO, timeout=5)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"


def test_mailchimp_member_must_exist_and_properties_are_strings(sandbox):
    email_hash = hashlib.md5(b"a@example.com", usedforsecurity=False).hexdigest()
    member = f"{sandbox.url}/mailchimp/lists/sandbox-list/members/{email_hash}"
    event = {"name": "loyalty_tier_upgraded", "properties": {"tier": "Gold"}}
    not_member = requests.post(f"{member}/events", json=event, auth=MAILCHIMP, timeout=5)
    assert not_member.status_code == 404 and not_member.headers["Content-Type"] == "application/problem+json"
    assert not_member.json()["title"] == "Resource Not Found"
    upsert = {"email_address": "A@example.com", "status_if_new": "transactional"}
    assert requests.put(member, json=upsert, auth=MAILCHIMP, timeout=5).status_code == 200
    bad = requests.post(f"{member}/events", json={**event, "properties": {"points": 5}}, auth=MAILCHIMP, timeout=5)
    assert bad.status_code == 400
    bad_name = requests.post(f"{member}/events", json={**event, "name": "Loyalty tier!"}, auth=MAILCHIMP, timeout=5)
    assert bad_name.status_code == 400
    assert requests.post(f"{member}/events", json=event, auth=MAILCHIMP, timeout=5).status_code == 204
    wrong_hash = requests.put(member.replace(email_hash, "0" * 32), json=upsert, auth=MAILCHIMP, timeout=5)
    assert wrong_hash.status_code == 400


def test_braze_limits_and_rate_limit_headers(sandbox):
    url = f"{sandbox.url}/braze/users/track"
    too_many = {"events": [{"email": "a@example.com", "name": "x", "time": "2026-11-25T10:00:00Z"}] * 76}
    assert requests.post(url, json=too_many, headers=BRAZE, timeout=5).status_code == 400
    sandbox.sandboxes.extra["braze"].faults.arm({"mode": "status", "status": 429, "retry_after": 3})
    limited = requests.post(url, json={"events": []}, headers=BRAZE, timeout=5)
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    assert 2 <= int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 4


def test_customerio_ulid_dedup(sandbox):
    url = f"{sandbox.url}/customerio/api/v1/customers/a%40example.com/events"
    event = {"name": "loyalty_tier_upgraded", "id": "01KAWZ6X3C0000000000000000", "data": {}}
    assert requests.post(url, json={**event, "id": "not-a-ulid"}, auth=CUSTOMERIO, timeout=5).status_code == 400
    for _ in range(2):
        assert requests.post(url, json=event, auth=CUSTOMERIO, timeout=5).status_code == 200
    assert len(sandbox.sandboxes.extra["customerio"].state()["events"]) == 1
    assert requests.post(url, json=event, auth=("sandbox-site", "wrong"), timeout=5).status_code == 401


def test_activecampaign_form_rules(sandbox):
    url = f"{sandbox.url}/activecampaign/event"
    fields = {"actid": "sandbox-actid", "key": DEFAULT_KEYS["activecampaign"], "visit": '{"email":"a@example.com"}'}
    assert requests.post(url, data={**fields, "event": "x" * 33}, timeout=5).status_code == 400
    ok = requests.post(url, data={**fields, "event": "loyalty_rewarded", "eventdata": "Gold"}, timeout=5)
    assert ok.json() == {"success": 1, "message": "Event spawned"}
    assert requests.post(url, data={**fields, "key": "wrong", "event": "e"}, timeout=5).json()["success"] == 0


def test_intercom_requires_created_at_and_dedups(sandbox):
    url = f"{sandbox.url}/intercom/events"
    requests.post(f"{sandbox.url}/intercom/contacts", json={"email": "a@example.com"}, headers=INTERCOM, timeout=5)
    event = {"event_name": "loyalty-tier-upgraded", "created_at": 1795595999, "email": "a@example.com"}
    missing = requests.post(url, json={**event, "created_at": None}, headers=INTERCOM, timeout=5)
    assert missing.status_code == 400 and missing.json()["type"] == "error.list"
    for _ in range(2):
        assert requests.post(url, json=event, headers=INTERCOM, timeout=5).status_code == 202
    assert len(sandbox.sandboxes.extra["intercom"].state()["events"]) == 1
    unknown = requests.post(url, json={**event, "email": "b@example.com"}, headers=INTERCOM, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "not_found"
