"""The sandboxes' fault injection: ``drop_after`` (stored, answer lost) and ``probability``."""

from __future__ import annotations

import pytest
import requests

from connector.sandbox.base import FaultInjector
from connector.sandbox.server import DEFAULT_KEYS
from connector.vendors.klaviyo.config import KLAVIYO_REVISION

LION = {"Authorization": f"Bearer {DEFAULT_KEYS['loyaltylion']}"}
KLAVIYO = {"Authorization": f"Klaviyo-API-Key {DEFAULT_KEYS['klaviyo']}", "revision": KLAVIYO_REVISION}


def lion_activity(merchant_id: str) -> dict[str, object]:
    return {
        "name": "hotel_booking",
        "customer_id": "ada@example.com",
        "customer_email": "ada@example.com",
        "merchant_id": merchant_id,
    }


def test_drop_after_stores_the_create_then_closes_the_connection(sandbox):
    url = f"{sandbox.url}/loyaltylion"
    armed = requests.post(f"{url}/_sandbox/faults", json={"mode": "drop_after", "path": "/v2/activities"}, timeout=5)
    assert armed.status_code == 201 and armed.json() == {"armed": "drop_after", "count": 1}
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/v2/activities", json=lion_activity("stay-1"), headers=LION, timeout=5)
    held = sandbox.sandboxes.extra["loyaltylion"].state()["activities"]
    assert [a["merchant_id"] for a in held] == ["stay-1"]  # the platform kept it; the caller never heard
    answered = requests.post(f"{url}/v2/activities", json=lion_activity("stay-2"), headers=LION, timeout=5)
    assert answered.status_code == 201  # one fault, one call


def test_drop_after_keeps_error_answers_and_applies_to_every_sandbox(sandbox):
    glu = sandbox.sandboxes.glu
    glu.faults.arm({"mode": "drop_after", "path": "/activities"})
    refused = requests.post(
        f"{sandbox.url}/glu/activities", json={"type": "nope"}, headers={"x-api-key": DEFAULT_KEYS["glu"]}, timeout=5
    )
    assert refused.status_code == 422  # nothing was stored, so the refusal is answered
    klaviyo = sandbox.sandboxes.extra["klaviyo"]
    klaviyo.faults.arm({"mode": "drop_after"})
    event = {
        "data": {
            "type": "event",
            "attributes": {
                "metric": {"data": {"type": "metric", "attributes": {"name": "Loyalty Tier Upgraded"}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}},
                "properties": {},
                "time": "2026-11-25T10:00:00+00:00",
                "unique_id": "evt-drop",
            },
        }
    }
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox.url}/klaviyo/api/events/", json=event, headers=KLAVIYO, timeout=5)
    assert [e["unique_id"] for e in klaviyo.state()["events"]] == ["evt-drop"]


def test_probability_hits_only_that_share_and_count_counts_hits():
    never = FaultInjector()
    never.arm({"mode": "status", "status": 500, "probability": 0.0, "count": 5})
    assert all(never.take("/x") is None for _ in range(200))
    some = FaultInjector()
    some.arm({"mode": "status", "status": 500, "probability": 0.5, "count": 1_000_000})
    hits = sum(some.take("/x") is not None for _ in range(2000))
    assert 700 < hits < 1300  # 1000 expected; the bounds are > 13 standard deviations wide
    limited = FaultInjector()
    limited.arm({"mode": "status", "status": 503, "probability": 0.5, "count": 3})
    assert sum(limited.take("/x") is not None for _ in range(500)) == 3
    with pytest.raises(ValueError, match="probability"):
        FaultInjector().arm({"mode": "status", "probability": 2})
