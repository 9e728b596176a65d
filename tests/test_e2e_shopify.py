"""End to end on a real Redis, real RQ workers and the Glu sandbox over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from conftest import MARINA_SHOPIFY_SECRET, load_fixture, shopify_headers, tenants_toml

from connector.metrics import read_counters
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, fetch_job, get_queue
from connector.web import create_app


def post_order(client: Any, body: bytes, **kwargs: Any) -> Any:
    return client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, **kwargs))


def test_signed_order_becomes_exactly_one_glu_activity(client, sandbox, work):
    body = load_fixture("shopify", "orders_paid")
    response = post_order(client, body)
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    work()
    state = sandbox.sandboxes.glu.state()
    assert len(state["activities"]) == 1
    activity = state["activities"][0]
    assert activity["type"] == "Shopify order"
    assert activity["source"] == "shopify"
    assert activity["spend"] == 18690
    assert activity["currencyCode"] == "HKD"
    assert activity["happenedAt"] == "2026-11-23T23:10:14-05:00"
    assert activity["externalReference"] == "shopify:harbour-hotels.myshopify.com:order:6200407294252"
    assert state["contacts"][0]["emailAddress"] == "ada.lovelace@example.com"
    assert activity["contact"] == f"/contacts/{state['contacts'][0]['id']}"


def test_order_sent_with_a_byte_order_mark_still_becomes_its_activity(client, sandbox, work, redis):
    body = b"\xef\xbb\xbf" + load_fixture("shopify", "orders_paid")
    assert post_order(client, body).status_code == 202
    work()
    assert [a["spend"] for a in activities(sandbox)] == [18690]
    assert get_queue(redis, INGEST_QUEUE).failed_job_registry.count == 0


def activities(sandbox) -> list[dict[str, Any]]:
    return sandbox.sandboxes.glu.state()["activities"]


def posts(sandbox) -> int:
    return sandbox.sandboxes.glu.state()["activity_posts"]


def arm(sandbox, **fault: Any) -> None:
    sandbox.sandboxes.glu.faults.arm(fault)


def test_repeated_delivery_and_new_delivery_id_still_leave_one(client, sandbox, work):
    body = load_fixture("shopify", "orders_paid")
    assert post_order(client, body).status_code == 202
    assert post_order(client, body).json["status"] == "duplicate"
    work()
    assert post_order(client, body, webhook_id="a-new-delivery-of-the-same-order").status_code == 202
    work()
    assert len(activities(sandbox)) == 1
    assert posts(sandbox) == 1  # the ledger stopped the second post before Glu had to dedup


def test_two_500s_then_success_leaves_one(client, sandbox, work, redis):
    arm(sandbox, mode="status", status=500, count=2)
    post_order(client, load_fixture("shopify", "orders_paid"))
    work()
    assert len(activities(sandbox)) == 1
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.count == 0


def test_dropped_connection_and_timeout_are_retried(env, sandbox, work):
    settings = env(CONNECTOR_HTTP_TIMEOUT="0.5")
    client = create_app(settings).test_client()
    arm(sandbox, mode="drop", count=1)
    arm(sandbox, mode="slow", seconds=1.0, count=1)
    post_order(client, load_fixture("shopify", "orders_paid"))
    work()
    assert len(activities(sandbox)) == 1


def test_429_with_retry_after_is_waited_out(env, sandbox, work, redis):
    settings = env(CONNECTOR_RETRY_SCHEDULE="0,0,0")
    client = create_app(settings).test_client()
    arm(sandbox, mode="status", status=429, retry_after=1, count=1)
    post_order(client, load_fixture("shopify", "orders_paid"))
    started = time.monotonic()
    work(wait_for_retries=15)
    assert time.monotonic() - started >= 1.0  # honoured Retry-After although the schedule says 0
    assert len(activities(sandbox)) == 1


def test_422_fails_at_once_with_the_reason_and_no_retry(client, sandbox, work, redis):
    arm(sandbox, mode="status", status=422, count=5, path="/activities")
    post_order(client, load_fixture("shopify", "orders_paid"))
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    assert failed.count == 1
    job = fetch_job(redis, failed.get_job_ids()[0])
    assert "glu answered 422" in job.latest_result().exc_string
    assert "sandbox-glu-key" not in job.latest_result().exc_string
    assert sandbox.sandboxes.glu.state()["activity_posts"] == 0  # the fault answered the only post
    assert sandbox.sandboxes.glu.faults.calls == 3  # lookup, create contact, one activity post: no retry
    assert activities(sandbox) == []


def test_bad_api_key_is_fatal_with_the_platform_reason(env, sandbox, work, redis):
    toml = tenants_toml(sandbox.url).replace('api_key = "env:TEST_GLU_KEY"', 'api_key = "wrong-key"')
    client = create_app(env(toml)).test_client()
    post_order(client, load_fixture("shopify", "orders_paid"))
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    job = fetch_job(redis, failed.get_job_ids()[0])
    assert "glu answered 403" in job.latest_result().exc_string
    assert "wrong-key" not in job.latest_result().exc_string


def test_replay_from_the_failed_registry_delivers_once(client, sandbox, work, redis):
    arm(sandbox, mode="status", status=503, count=4)  # first try + three retries
    post_order(client, load_fixture("shopify", "orders_paid"))
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    assert failed.count == 1 and activities(sandbox) == []
    job_id = failed.get_job_ids()[0]
    failed.requeue(job_id)
    work()
    assert len(activities(sandbox)) == 1
    # Support replays the (now finished) job once more: the ledger answers, Glu sees nothing new.
    get_queue(redis, DELIVERY_QUEUE).enqueue_job(fetch_job(redis, job_id))
    work()
    assert len(activities(sandbox)) == 1
    assert posts(sandbox) == 1
    assert fetch_job(redis, job_id).latest_result().return_value["status"] == "already_delivered"


def start_worker_on_a_slow_delivery(client, sandbox, redis) -> tuple[subprocess.Popen, int]:
    """A real fork `connector worker` process, caught in the middle of a delivery; returns it and its horse pid
    (the default worker is a pool of simple workers since issue 16: tests/test_worker_reliability.py)."""
    arm(sandbox, mode="slow", seconds=3, count=1)
    post_order(client, load_fixture("shopify", "orders_paid"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "worker", "--worker-class", "fork", "--processes", "1"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The ingest job delivers the order's one activity itself (issue 16): it is the job caught mid-delivery.
    started = get_queue(redis, INGEST_QUEUE).started_job_registry
    deadline = time.monotonic() + 20
    horse = 0
    while time.monotonic() < deadline and not (started.get_job_ids(cleanup=False) and is_running(horse)):
        time.sleep(0.05)
        for key in redis.scan_iter("rq:worker:*"):
            horse = int(redis.hget(key, "horse_pid") or 0)  # the ingest job's horse comes first
    assert started.get_job_ids(cleanup=False) and is_running(horse), "the worker never started the delivery"
    return proc, horse


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return pid > 0 and stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_worker_killed_mid_job_still_ends_with_one_activity(client, sandbox, work, redis):
    proc, horse = start_worker_on_a_slow_delivery(client, sandbox, redis)
    os.kill(horse, signal.SIGKILL)  # the whole worker dies: its horse (own process group) and itself
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until_gone(horse)
    work()  # the next worker recovers the abandoned job at once
    deadline = time.monotonic() + 5
    while posts(sandbox) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(activities(sandbox)) == 1
    assert get_queue(redis, INGEST_QUEUE).started_job_registry.get_job_ids(cleanup=False) == []


def test_worker_parent_killed_leaves_its_horse_to_finish_alone(client, sandbox, work, redis):
    proc, horse = start_worker_on_a_slow_delivery(client, sandbox, redis)
    os.killpg(proc.pid, signal.SIGKILL)  # RQ's horse has its own process group and carries on
    proc.wait()
    work()  # must not start a second copy while the orphaned horse is still working
    wait_until_gone(horse)
    work()
    assert len(activities(sandbox)) == 1
    assert posts(sandbox) == 1


def test_ignored_orders_are_counted_with_their_reason(client, sandbox, work, redis):
    for name in ("orders_paid__test", "orders_paid__no_email"):
        body = load_fixture("shopify", name)
        assert post_order(client, body, webhook_id=name).status_code == 202
    work()
    assert activities(sandbox) == []
    counters = read_counters(redis)
    assert counters["ignored|reason=test_order|source=shopify|tenant=harbour"] == 1
    assert counters["ignored|reason=no_email|source=shopify|tenant=harbour"] == 1
    metrics = client.get("/metrics").data.decode()
    assert 'connector_ignored_total{reason="no_email",source="shopify",tenant="harbour"} 1.0' in metrics


def test_malformed_amount_fails_the_ingest_job_without_retry(client, sandbox, work, redis):
    body = load_fixture("shopify", "orders_paid").replace(
        b'"total_price_set":{"shop_money":{"amount":"186.90"', b'"total_price_set":{"shop_money":{"amount":"186.9O"'
    )
    post_order(client, body)
    work()
    failed = get_queue(redis, INGEST_QUEUE).failed_job_registry
    assert failed.count == 1
    assert "186.9O" in fetch_job(redis, failed.get_job_ids()[0]).latest_result().exc_string
    assert activities(sandbox) == []


def test_each_tenant_gets_its_own_activities_and_currency(client, sandbox, work):
    body = load_fixture("shopify", "orders_paid__jpy")
    headers = shopify_headers(body, secret=MARINA_SHOPIFY_SECRET, shop="marina-tokyo.myshopify.com")
    assert client.post("/webhooks/marina/shopify", data=body, headers=headers).status_code == 202
    work()
    [activity] = activities(sandbox)
    assert (activity["spend"], activity["currencyCode"]) == (12800, "JPY")
    assert activity["externalReference"] == "shopify:marina-tokyo.myshopify.com:order:5120001112223"


def test_the_simple_worker_class_delivers_exactly_once_too(client, sandbox, redis):
    from connector import jobs
    from connector.worker import WORKER_CLASSES, run_worker

    body = load_fixture("shopify", "orders_paid")
    post_order(client, body)
    post_order(client, body, webhook_id="redelivered")
    jobs.settings.cache_clear()
    jobs.redis.cache_clear()
    run_worker(redis, burst=True, worker_class=WORKER_CLASSES["simple"], logging_level="WARNING")
    assert len(activities(sandbox)) == 1
    assert posts(sandbox) == 1
