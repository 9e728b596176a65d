"""Issue 12, fact 1: Klaviyo's 2024 API revisions are retired (410 since October 2026).

The default revision is a current one; a tenant still on a retired revision gets a fatal,
readable reason and nothing is stored at Klaviyo. The sandbox answers like Klaviyo.
"""

from __future__ import annotations

from typing import Any

import requests
from test_e2e_relay import app_client, esp_state, post_voucherify

from connector.queue import RELAY_QUEUE, fetch_job, get_queue
from connector.sandbox.server import DEFAULT_KEYS
from connector.vendors.klaviyo.config import KLAVIYO_REVISION, KlaviyoConfig

AUTH = {"Authorization": f"Klaviyo-API-Key {DEFAULT_KEYS['klaviyo']}"}
EVENT = {
    "data": {
        "type": "event",
        "attributes": {
            "properties": {"tier": "Gold"},
            "metric": {"data": {"type": "metric", "attributes": {"name": "Loyalty Tier Upgraded"}}},
            "profile": {"data": {"type": "profile", "attributes": {"email": "zoe@example.com"}}},
        },
    }
}


def post_event(sandbox: Any, **headers: str) -> requests.Response:
    return requests.post(f"{sandbox.url}/klaviyo/api/events/", json=EVENT, headers={**AUTH, **headers}, timeout=5)


def test_the_default_revision_is_a_current_2026_revision_and_stays_configurable() -> None:
    config = KlaviyoConfig.model_validate({"provider": "klaviyo", "api_key": "pk_x"})
    assert config.revision == KLAVIYO_REVISION
    assert KLAVIYO_REVISION >= "2026-01-15"
    pinned = KlaviyoConfig.model_validate({"provider": "klaviyo", "api_key": "pk_x", "revision": "2026-07-15"})
    assert pinned.revision == "2026-07-15"


def test_sandbox_requires_the_revision_header_and_answers_410_to_a_retired_one(sandbox: Any) -> None:
    missing = post_event(sandbox)
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["source"]["pointer"] == "/headers/revision"
    retired = post_event(sandbox, revision="2024-10-15")
    assert retired.status_code == 410
    (error,) = retired.json()["errors"]
    assert error["status"] == 410 and "2024-10-15" in error["detail"]
    assert post_event(sandbox, revision="2023-02-22.pre").status_code == 410
    assert esp_state(sandbox, "klaviyo")["events"] == []
    assert post_event(sandbox, revision=KLAVIYO_REVISION).status_code == 202
    assert len(esp_state(sandbox, "klaviyo")["events"]) == 1


def test_a_tenant_on_a_retired_revision_fails_its_relay_job_with_the_reason(env, sandbox, redis, work) -> None:
    client = app_client(env, sandbox, revision="2024-10-15")
    assert post_voucherify(client).status_code == 202
    work()
    failed = get_queue(redis, RELAY_QUEUE).failed_job_registry.get_job_ids()
    assert len(failed) == 1  # fatal at once: a burst worker leaves retries in the scheduled registry
    reason = str(fetch_job(redis, failed[0]).latest_result().exc_string)
    assert "Klaviyo answered 410 Gone: API revision 2024-10-15 is retired" in reason
    assert f"set esp.revision to a current revision such as {KLAVIYO_REVISION}" in reason
    assert DEFAULT_KEYS["klaviyo"] not in reason
    state = esp_state(sandbox, "klaviyo")
    assert state["events"] == [] and state["calls"] == 1  # not retried


def test_the_default_configuration_is_delivered(env, sandbox, redis, work) -> None:
    client = app_client(env, sandbox)
    assert post_voucherify(client).status_code == 202
    work()
    (event,) = esp_state(sandbox, "klaviyo")["events"]
    assert event["revision"] == KLAVIYO_REVISION
    assert not get_queue(redis, RELAY_QUEUE).failed_job_registry.get_job_ids()
