"""A create whose outcome is unknown is looked up at the vendor before it is sent again.

Voucherify (custom events) and Mailchimp (member events) keep no dedup of their own. When the
vendor stores the write and the answer is lost (``drop_after``: the connection closes after the
write), the retry must find the write and not send it again; when the write really did not happen
(``drop`` before the vendor handles the call, or a 500 without storing), the retry must look it up,
find nothing and send it: held exactly once either way. Real sandboxes over HTTP, real Redis, real
burst RQ workers (delivery and relay jobs) with immediate retries.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import requests
from conftest import load_fixture
from redis import Redis
from relay_helpers import relay_toml, voucherify_headers
from test_destination_contract import WIFI_KEY, stream
from test_loyalty_platforms import MemoryContacts, activity

from connector import jobs
from connector.activities import Activity
from connector.errors import RetriableDestinationError
from connector.metrics import read_counters
from connector.queue import DELIVERY_QUEUE, RELAY_QUEUE, fetch_job, get_queue
from connector.sandbox.server import DEFAULT_KEYS, SandboxServer
from connector.settings import Settings
from connector.vendors.voucherify.config import VoucherifyConfig
from connector.vendors.voucherify.platform import VoucherifyClient, activity_event, carries
from connector.web import create_app

LOST_BEFORE = [  # the write did not happen: the vendor never handled it, or failed without storing
    {"mode": "drop", "count": 1},
    {"mode": "status", "status": 500, "count": 1},
]


def voucherify_tenant(url: str, **extra: str) -> str:
    lines = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    return (
        textwrap.dedent(f"""
        [tenants.contract]
        timezone = "Europe/London"
        [tenants.contract.loyalty]
        platform = "voucherify"
        base_url = "{url}/voucherify"
        app_id = "{DEFAULT_KEYS["voucherify_app_id"]}"
        app_token = "{DEFAULT_KEYS["voucherify_app_token"]}"
        """)
        + lines
    )


def deliver_wifi_login(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any, **extra: str
) -> Any:
    """One Wi-Fi login through a real delivery job; returns the Voucherify sandbox."""
    settings = env(voucherify_tenant(sandbox.url, **extra))
    (job_id,) = jobs.enqueue_deliveries(settings.tenants["contract"], stream()[-1:])
    work(wait_for_retries=10)
    result = fetch_job(redis, job_id).return_value()
    assert result is not None and result["status"] == "delivered", result
    return sandbox.sandboxes.extra["voucherify"]


def activity_lookups(vendor: Any) -> list[str]:
    return [t for t in vendor.faults.targets if "/activity?" in t]


def test_voucherify_event_stored_but_answer_lost_is_found_not_sent_again(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any
) -> None:
    vouch = sandbox.sandboxes.extra["voucherify"]
    vouch.faults.arm({"mode": "drop_after", "path": "/v1/events", "count": 1})
    deliver_wifi_login(env, sandbox, redis, work)

    state = vouch.state()
    assert state["event_posts"] == 1
    assert [(e["event"], e["metadata"]["connector_key"]) for e in state["events"]] == [("wifi_login", WIFI_KEY)]
    (lookup,) = activity_lookups(vouch)
    assert "type=customer.custom_event" in lookup and "start_date=" in lookup  # no further back than needed
    counters = read_counters(redis)
    assert counters["deliveries|destination=voucherify|outcome=found_unknown_outcome"] == 1
    assert "deliveries|destination=voucherify|outcome=resent_unknown_outcome" not in counters
    (job_id,) = get_queue(redis, DELIVERY_QUEUE).finished_job_registry.get_job_ids()
    assert fetch_job(redis, job_id).return_value()["receipt"]["created"] is False  # type: ignore[index]


@pytest.mark.parametrize("fault", LOST_BEFORE, ids=["drop", "500"])
def test_voucherify_event_that_never_arrived_is_looked_up_then_sent(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any, fault: dict[str, Any]
) -> None:
    vouch = sandbox.sandboxes.extra["voucherify"]
    vouch.faults.arm({**fault, "path": "/v1/events"})
    deliver_wifi_login(env, sandbox, redis, work)

    state = vouch.state()
    assert state["event_posts"] == 1 and len(state["events"]) == 1
    assert len(activity_lookups(vouch)) == 1  # looked up before sending again
    assert read_counters(redis)["deliveries|destination=voucherify|outcome=resent_unknown_outcome"] == 1


def test_voucherify_business_key_metadata_name_is_configurable(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any
) -> None:
    vouch = sandbox.sandboxes.extra["voucherify"]
    vouch.faults.arm({"mode": "drop_after", "path": "/v1/events", "count": 1})
    deliver_wifi_login(env, sandbox, redis, work, business_key_metadata="stay_ref")
    (event,) = vouch.state()["events"]
    assert event["metadata"]["stay_ref"] == WIFI_KEY and "connector_key" not in event["metadata"]


def test_voucherify_lookup_pages_through_the_customer_activity(sandbox: SandboxServer, redis: Redis) -> None:
    """The event sits behind more than one page of newer custom events: the lookup follows
    ``more_starting_after`` and still finds it."""
    config = VoucherifyConfig.model_validate(
        {
            "platform": "voucherify",
            "base_url": f"{sandbox.url}/voucherify",
            "app_id": DEFAULT_KEYS["voucherify_app_id"],
            "app_token": DEFAULT_KEYS["voucherify_app_token"],
        }
    )
    client = VoucherifyClient(config, tenant="acme", redis=redis, timeout=5)
    vouch = sandbox.sandboxes.extra["voucherify"]
    contacts = MemoryContacts()
    login: Activity = activity()
    vouch.faults.arm({"mode": "drop_after", "path": "/v1/events", "count": 1})
    with pytest.raises(RetriableDestinationError):
        client.deliver(login, contacts)
    for n in range(130):  # newer events of the same customer, other keys
        client.deliver(activity(business_key=f"purple:venue-7:abc:other-{n}"), contacts)
    receipt = client.deliver(login, contacts)
    assert receipt.created is False
    assert vouch.state()["event_posts"] == 131
    assert len(activity_lookups(vouch)) == 2  # 100 per page


def test_voucherify_activity_event_reads_each_documented_nesting() -> None:
    event = {"type": "wifi_login", "metadata": {"connector_key": "k1"}}
    for data in ({"data": {"event": event}}, {"event": event}, {"custom_event": event}):
        item = {"type": "customer.custom_event", "data": data}
        assert activity_event(item) == event
        assert carries(item, "wifi_login", "connector_key", "k1")
        assert not carries(item, "wifi_login", "connector_key", "k2")
        assert not carries(item, "hotel_booking", "connector_key", "k1")
    assert activity_event({"type": "customer.created", "data": {"event": event}}) is None


# -- Mailchimp member events (relay jobs) ----------------------------------------------------


def relay_reward(env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any) -> Any:
    """One Voucherify points event relayed to the Mailchimp sandbox; returns that sandbox."""
    client = create_app(env(relay_toml(sandbox.url, "mailchimp"))).test_client()
    body = load_fixture("voucherify", "customer_rewarded_loyalty_points_v2024")
    assert client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body)).status_code == 202
    work(wait_for_retries=10)
    (job_id,) = get_queue(redis, RELAY_QUEUE).finished_job_registry.get_job_ids()
    assert fetch_job(redis, job_id).return_value()["status"] == "delivered"  # type: ignore[index]
    return sandbox.sandboxes.extra["mailchimp"]


def event_lookups(vendor: Any) -> list[str]:
    return [t for t in vendor.faults.targets if "/events?" in t]


def test_mailchimp_member_event_stored_but_answer_lost_is_found_not_posted_again(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any
) -> None:
    chimp = sandbox.sandboxes.extra["mailchimp"]
    chimp.faults.arm({"mode": "drop_after", "path": "/events", "count": 1})
    relay_reward(env, sandbox, redis, work)
    state = chimp.state()
    assert state["event_posts"] == 1
    (event,) = state["events"]
    assert event["name"] == "loyalty_points_rewarded"
    assert len(event_lookups(chimp)) == 1


@pytest.mark.parametrize("fault", LOST_BEFORE, ids=["drop", "500"])
def test_mailchimp_member_event_that_never_arrived_is_looked_up_then_posted(
    env: Callable[..., Settings], sandbox: SandboxServer, redis: Redis, work: Any, fault: dict[str, Any]
) -> None:
    chimp = sandbox.sandboxes.extra["mailchimp"]
    chimp.faults.arm({**fault, "path": "/events"})
    relay_reward(env, sandbox, redis, work)
    state = chimp.state()
    assert state["event_posts"] == 1 and len(state["events"]) == 1
    assert len(event_lookups(chimp)) == 1


def test_mailchimp_sandbox_lists_member_events(sandbox: SandboxServer) -> None:
    """The documented answer shape of "List member events", with ``count``/``offset`` paging."""
    chimp = sandbox.sandboxes.extra["mailchimp"]
    base = f"{sandbox.url}/mailchimp/lists/sandbox-list/members"
    auth = ("any", DEFAULT_KEYS["mailchimp"])
    member = "f" * 32
    chimp.profiles[member] = {"email_address": "x@example.com", "status": "transactional", "merge_fields": {}}
    for n in range(3):
        body = {"name": "tier_up", "properties": {"event_id": str(n)}, "occurred_at": "2026-11-24T10:00:00+00:00"}
        assert requests.post(f"{base}/{member}/events", json=body, auth=auth, timeout=5).status_code == 204
    page = requests.get(f"{base}/{member}/events", params={"count": 2, "offset": 1}, auth=auth, timeout=5).json()
    assert page["total_items"] == 3
    assert [e["properties"]["event_id"] for e in page["events"]] == ["1", "0"]  # newest first
    assert set(page["events"][0]) == {"name", "occurred_at", "properties"}


def test_voucherify_sandbox_lists_customer_activity_as_documented(sandbox: SandboxServer) -> None:
    """ "List Customer Activity": the list envelope, ``type``/``start_date`` filters, cursor paging
    by ``starting_after_id``, 400 on a bad ``limit``, 404 for an unknown customer."""
    base = f"{sandbox.url}/voucherify/v1"
    headers = {"X-App-Id": DEFAULT_KEYS["voucherify_app_id"], "X-App-Token": DEFAULT_KEYS["voucherify_app_token"]}
    for n in range(3):
        body = {
            "event": "wifi_login",
            "customer": {"source_id": "ada@example.com"},
            "metadata": {"connector_key": str(n)},
        }
        assert requests.post(f"{base}/events", json=body, headers=headers, timeout=5).status_code == 200
    url = f"{base}/customers/ada@example.com/activity"
    query: dict[str, str | int] = {"type": "customer.custom_event", "limit": 2, "start_date": "2020-01-01T00:00:00Z"}
    first = requests.get(url, params=query, headers=headers, timeout=5).json()
    assert (first["object"], first["data_ref"], first["has_more"]) == ("list", "data", True)
    assert [activity_event(a)["metadata"]["connector_key"] for a in first["data"]] == ["2", "1"]  # type: ignore[index]
    assert set(first["data"][0]) == {"id", "type", "data", "created_at", "group_id"}
    rest = requests.get(
        url, params={**query, "starting_after_id": first["more_starting_after"]}, headers=headers, timeout=5
    ).json()
    assert [activity_event(a)["metadata"]["connector_key"] for a in rest["data"]] == ["0"]  # type: ignore[index]
    assert rest["has_more"] is False and "more_starting_after" not in rest
    everything = requests.get(url, headers=headers, timeout=5).json()["data"]
    assert [a["type"] for a in everything][-1] == "customer.created"
    later = requests.get(url, params={"start_date": "2999-01-01T00:00:00Z"}, headers=headers, timeout=5).json()
    assert later["data"] == []
    assert requests.get(url, params={"limit": 101}, headers=headers, timeout=5).status_code == 400
    assert requests.get(f"{base}/customers/nobody/activity", headers=headers, timeout=5).status_code == 404
