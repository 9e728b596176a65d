"""End to end: signed loyalty events → real Redis, burst RQ workers → ESP sandboxes over HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests
from conftest import load_fixture
from relay_helpers import loyaltylion_headers, relay_toml, standard_headers, voucherify_headers

from connector import activity_log
from connector.queue import INGEST_QUEUE, RELAY_QUEUE, fetch_job, get_queue
from connector.vendors.klaviyo.config import KLAVIYO_REVISION
from connector.web import create_app

TIER_EVENT = "evcus_0c150c51730c6b60b1"


def app_client(env: Any, sandbox: Any, provider: str = "klaviyo", **esp: Any) -> Any:
    return create_app(env(relay_toml(sandbox.url, provider, **esp))).test_client()


def post_voucherify(client: Any, name: str = "customer_loyalty_tier_upgraded_v2024", **changes: Any) -> Any:
    body = load_fixture("voucherify", name)
    if changes:
        data = json.loads(body)
        data.update(changes)
        body = json.dumps(data).encode()
    return client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body))


def esp_state(sandbox: Any, provider: str) -> dict[str, Any]:
    state: dict[str, Any] = sandbox.sandboxes.extra[provider].state()
    return state


def relay_jobs(redis: Any) -> list[str]:
    queue = get_queue(redis, RELAY_QUEUE)
    return list(queue.finished_job_registry.get_job_ids()) + list(queue.failed_job_registry.get_job_ids())


def rerun_webhooks(redis: Any) -> list[str]:
    """Support staff rerun every finished webhook: its ingest job relays its event itself again
    (issue 16: a relay that succeeded in its ingest job has no relay job of its own)."""
    queue = get_queue(redis, INGEST_QUEUE)
    ids = list(queue.finished_job_registry.get_job_ids())
    for job_id in ids:
        queue.enqueue_job(fetch_job(redis, job_id))
    return ids


def latest_relay_record(redis: Any, ingest_id: str) -> dict[str, Any]:
    """The latest record of the relay the webhook ``ingest_id`` caused."""
    [webhook] = activity_log.attempts(redis, "harbour", [ingest_id])[ingest_id][:1]
    [relay_id] = webhook["relays"]
    return activity_log.attempts(redis, "harbour", [relay_id])[relay_id][0]


def forget_transport_dedup(redis: Any) -> None:
    """What 72 h later looks like: the delivery markers have expired."""
    for key in redis.scan_iter("connector:seen:*"):
        redis.delete(key)


def test_voucherify_event_reaches_klaviyo_exactly_once(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    response = post_voucherify(client)
    assert response.status_code == 202, response.json
    work()
    state = esp_state(sandbox, "klaviyo")
    assert state["event_posts"] == 1
    (event,) = state["events"]
    assert event["metric"] == "Loyalty Tier Upgraded"
    assert event["email"] == "zoe.angstrom@example.com"
    assert event["unique_id"] == TIER_EVENT
    assert event["time"] == "2026-11-25T08:39:59.188000+00:00"
    assert event["revision"] == KLAVIYO_REVISION
    assert event["properties"]["tier"] == "Gold"
    assert event["properties"]["previous_tier"] == "Silver"
    assert event["properties"]["source_event"] == "customer.loyalty.tier.upgraded"
    assert event["profile"]["first_name"] == "Zoë"
    assert event["profile"]["properties"] == {"loyalty_tier": "Gold"}

    # Redelivered by Voucherify: a new sendout id, the same event id → transport duplicate.
    again = post_voucherify(client, id="whs_resend_00000000001")
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    # Long after the dedup window: accepted again, but the relay job id is the same → nothing sent.
    forget_transport_dedup(redis)
    assert post_voucherify(client, id="whs_resend_00000000002").status_code == 202
    work()
    assert esp_state(sandbox, "klaviyo")["event_posts"] == 1

    # Replayed by support staff (rerun the finished webhook, which relayed inline): the ledger answers.
    assert relay_jobs(redis) == []  # relayed by the ingest job itself (issue 16)
    rerun = rerun_webhooks(redis)
    assert response.json["job"] in rerun
    work()
    assert esp_state(sandbox, "klaviyo")["event_posts"] == 1
    latest = latest_relay_record(redis, response.json["job"])
    assert latest["status"] == "delivered" and latest["reason"].startswith("already delivered")


def test_loyaltylion_event_reaches_klaviyo_exactly_once(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    body = load_fixture("loyaltylion", "customer_tier_upgraded")
    assert client.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body)).status_code == 202
    work()
    (event,) = esp_state(sandbox, "klaviyo")["events"]
    assert event["metric"] == "Loyalty Tier Upgraded"
    assert event["email"] == "jessica@example.com"
    assert event["unique_id"] == "332d90cd-1ba1-4a7b-abd1-79e643b4b89f"
    assert event["properties"]["tier"] == "Gold" and event["properties"]["points_balance"] == 420
    # A second subscription delivers the same program event under a new envelope id.
    data = json.loads(body)
    data["id"] = "another-subscription-delivery"
    resent = json.dumps(data).encode()
    assert (
        client.post("/webhooks/harbour/loyaltylion", data=resent, headers=loyaltylion_headers(resent)).status_code
        == 202
    )
    work()
    assert esp_state(sandbox, "klaviyo")["event_posts"] == 1


def test_standard_canonical_event_reaches_klaviyo_exactly_once(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    body = load_fixture("standard", "customer_loyalty_tier_upgraded")
    response = client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, "msg_1"))
    assert response.status_code == 202, response.json
    work()
    (event,) = esp_state(sandbox, "klaviyo")["events"]
    assert (event["metric"], event["email"], event["unique_id"]) == (
        "Loyalty Tier Upgraded",
        "marie.curie@example.com",
        "glu-wf-81723",
    )
    assert event["properties"]["points"] == 250 and event["properties"]["property"] == "Harbour Hotel Brighton"
    # The Glu workflow fires again: new webhook-id, same event_id.
    assert (
        client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, "msg_2")).status_code == 202
    )
    work()
    assert esp_state(sandbox, "klaviyo")["event_posts"] == 1


def test_mailchimp_member_event(env, sandbox, redis, work):
    client = app_client(env, sandbox, "mailchimp")
    assert post_voucherify(client, "customer_rewarded_loyalty_points_v2024").status_code == 202
    work()
    state = esp_state(sandbox, "mailchimp")
    assert state["event_posts"] == 1
    (event,) = state["events"]
    assert event["name"] == "loyalty_points_rewarded"
    assert event["email"] == "ada.lovelace@example.com"
    assert event["properties"]["points"] == "150" and event["properties"]["points_balance"] == "1200"
    assert event["is_syncing"] is False
    member_hash = hashlib.md5(b"ada.lovelace@example.com", usedforsecurity=False).hexdigest()
    assert state["profiles"][member_hash]["status"] == "transactional"
    forget_transport_dedup(redis)
    assert post_voucherify(client, "customer_rewarded_loyalty_points_v2024").status_code == 202
    work()
    assert esp_state(sandbox, "mailchimp")["event_posts"] == 1


def test_braze_users_track(env, sandbox, redis, work):
    client = app_client(env, sandbox, "braze")
    body = load_fixture("loyaltylion", "customer_claimed_reward")
    assert client.post("/webhooks/harbour/loyaltylion", data=body, headers=loyaltylion_headers(body)).status_code == 202
    work()
    state = esp_state(sandbox, "braze")
    assert state["event_posts"] == 1
    (event,) = state["events"]
    assert (event["name"], event["email"]) == ("loyalty_reward_redeemed", "bob@example.com")
    assert event["time"] == "2026-11-25T12:30:01+00:00"
    assert event["properties"]["reward"] == "£5 off your next stay"
    assert state["profiles"]["bob@example.com"]["loyalty_points_balance"] == 150


def test_customerio_track_with_deterministic_ulid(env, sandbox, redis, work):
    client = app_client(env, sandbox, "customerio")
    assert post_voucherify(client).status_code == 202
    work()
    state = esp_state(sandbox, "customerio")
    (event,) = state["events"]
    assert event["identifier"] == "zoe.angstrom@example.com"
    assert event["name"] == "loyalty_tier_upgraded"
    assert len(event["id"]) == 26 and event["timestamp"] == 1795595999
    assert event["data"]["tier"] == "Gold"
    assert state["profiles"]["zoe.angstrom@example.com"]["loyalty_tier"] == "Gold"
    first_id = event["id"]
    # Even with the ledger gone (e.g. Redis restored from an old backup) the same ULID goes out.
    for key in redis.scan_iter("connector:ledger:*"):
        redis.delete(key)
    assert rerun_webhooks(redis)  # its ingest job relays the event itself again (issue 16)
    work()
    state = esp_state(sandbox, "customerio")
    assert state["event_posts"] == 2 and [e["id"] for e in state["events"]] == [first_id]


def test_activecampaign_event_tracking(env, sandbox, redis, work):
    client = app_client(env, sandbox, "activecampaign")
    assert post_voucherify(client, "customer_rewarded_v2018").status_code == 202
    work()
    state = esp_state(sandbox, "activecampaign")
    assert state["event_posts"] == 1
    assert state["events"] == [
        {"event": "loyalty_rewarded", "eventdata": "Free night", "email": "grace.hopper@example.com"}
    ]


def test_intercom_data_event_with_original_time(env, sandbox, redis, work):
    client = app_client(env, sandbox, "intercom")
    requests.post(
        f"{sandbox.url}/intercom/contacts",
        json={"role": "user", "email": "zoe.angstrom@example.com"},
        headers={"Authorization": "Bearer sandbox-intercom-token"},
        timeout=5,
    ).raise_for_status()
    assert post_voucherify(client).status_code == 202
    work()
    (event,) = esp_state(sandbox, "intercom")["events"]
    assert event["event_name"] == "loyalty-tier-upgraded"
    assert event["created_at"] == 1795595999  # the event's time, not the send time
    assert event["email"] == "zoe.angstrom@example.com"
    assert event["metadata"]["tier"] == "Gold" and len(event["metadata"]) <= 10


def test_intercom_unknown_contact_ends_in_failed_registry(env, sandbox, redis, work):
    client = app_client(env, sandbox, "intercom")
    assert post_voucherify(client).status_code == 202
    work()
    failed = get_queue(redis, RELAY_QUEUE).failed_job_registry.get_job_ids()
    assert len(failed) == 1
    reason = fetch_job(redis, failed[0]).latest_result().exc_string
    assert "intercom answered 404" in reason and "User Not Found" in reason
    assert "zoe.angstrom" not in reason  # no PII in the reason kept for the dashboard
    assert esp_state(sandbox, "intercom")["events"] == []


def test_klaviyo_400_ends_in_failed_registry_with_reason(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    sandbox.sandboxes.extra["klaviyo"].faults.arm({"mode": "status", "status": 400, "count": 1})
    assert post_voucherify(client).status_code == 202
    work()
    failed = get_queue(redis, RELAY_QUEUE).failed_job_registry.get_job_ids()
    assert len(failed) == 1
    reason = fetch_job(redis, failed[0]).latest_result().exc_string
    assert "klaviyo answered 400" in reason and "injected 400" in reason
    assert "pk_sandbox_klaviyo" not in reason
    assert esp_state(sandbox, "klaviyo")["events"] == []


@pytest.mark.parametrize("provider", ["klaviyo", "braze", "activecampaign", "intercom"])
def test_429_is_waited_out_with_the_vendors_signal(env, sandbox, redis, work, provider):
    client = app_client(env, sandbox, provider)
    if provider == "intercom":
        sandbox.sandboxes.extra["intercom"].profiles["zoe.angstrom@example.com"] = {"email": "zoe.angstrom@example.com"}
    sandbox.sandboxes.extra[provider].faults.arm({"mode": "status", "status": 429, "retry_after": 1, "count": 1})
    assert post_voucherify(client).status_code == 202
    started = time.monotonic()
    work(wait_for_retries=15)
    state = esp_state(sandbox, provider)
    assert state["calls"] == 2 and len(state["events"]) == 1
    assert time.monotonic() - started >= 0.9
    assert not get_queue(redis, RELAY_QUEUE).failed_job_registry.get_job_ids()


def test_tenant_name_mapping_is_used(env, sandbox, redis, work):
    client = app_client(env, sandbox, "klaviyo", names={"customer.loyalty.tier.upgraded": "VIP Tier Reached"})
    assert post_voucherify(client).status_code == 202
    work()
    (event,) = esp_state(sandbox, "klaviyo")["events"]
    assert event["metric"] == "VIP Tier Reached"


def test_exhausted_retries_then_requeue_from_failed_registry_sends_once(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    sandbox.sandboxes.extra["klaviyo"].faults.arm({"mode": "status", "status": 503, "count": 4})
    assert post_voucherify(client).status_code == 202
    work(wait_for_retries=15)
    registry = get_queue(redis, RELAY_QUEUE).failed_job_registry
    (job_id,) = registry.get_job_ids()
    assert "klaviyo answered 503" in fetch_job(redis, job_id).latest_result().exc_string
    assert esp_state(sandbox, "klaviyo")["events"] == []
    registry.requeue(job_id)  # what support staff do from rq-dashboard
    work()
    assert len(esp_state(sandbox, "klaviyo")["events"]) == 1
    # A second replay of the (now finished) job changes nothing.
    get_queue(redis, RELAY_QUEUE).enqueue_job(fetch_job(redis, job_id))
    work()
    state = esp_state(sandbox, "klaviyo")
    assert state["event_posts"] == 1 and len(state["events"]) == 1


def test_relay_job_arguments_hold_no_secret(env, sandbox, redis, work):
    client = app_client(env, sandbox)
    # A relay job exists when the ingest job's own attempt failed (issue 16): a 503, then its retry.
    sandbox.sandboxes.extra["klaviyo"].faults.arm({"mode": "status", "status": 503, "count": 1})
    assert post_voucherify(client).status_code == 202
    work()
    (job_id,) = relay_jobs(redis)
    job = fetch_job(redis, job_id)
    assert "pk_sandbox_klaviyo" not in json.dumps(job.args) and "pk_sandbox_klaviyo" not in job.description
    assert "zoe.angstrom" not in job.description


@pytest.mark.parametrize("provider", ["mailchimp", "braze", "activecampaign", "intercom"])
def test_replay_and_late_redelivery_send_once_to_every_esp(env, sandbox, redis, work, provider):
    client = app_client(env, sandbox, provider)
    if provider == "intercom":
        sandbox.sandboxes.extra["intercom"].profiles["zoe.angstrom@example.com"] = {"email": "zoe.angstrom@example.com"}
    assert post_voucherify(client).status_code == 202
    work()
    assert rerun_webhooks(redis)  # replay (the ingest job relayed inline, issue 16)
    forget_transport_dedup(redis)
    assert post_voucherify(client, id="whs_resend_late").status_code == 202  # redelivery after the window
    work()
    state = esp_state(sandbox, provider)
    assert state["event_posts"] == 1 and len(state["events"]) == 1
