"""Method handling: state changes are POST only (same origin), HEAD/GET never create a job, and the
dashboard's workers page works while JSON jobs run."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

from conftest import load_fixture, shopify_headers
from wifi_support import MERAKI_VALIDATOR, wifi_tenants_toml

from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, QUEUE_NAMES, get_queue
from connector.web import create_app

ADMIN_PASSWORD = "pw"


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"support:{ADMIN_PASSWORD}".encode()).decode()}


def failed_delivery(client, sandbox, work, redis) -> str:
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 400, "count": 10})
    body = load_fixture("shopify", "orders_paid")
    assert client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body)).status_code == 202
    work()
    (job_id,) = get_queue(redis, DELIVERY_QUEUE).failed_job_registry.get_job_ids()
    return job_id


def test_state_changes_are_post_only_and_same_origin(env, sandbox, work, redis):
    client = create_app(env(CONNECTOR_ADMIN_PASSWORD=ADMIN_PASSWORD)).test_client()
    job_id = failed_delivery(client, sandbox, work, redis)
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    requeue_all = f"/admin/rq/requeue/{DELIVERY_QUEUE}"
    for method in ("HEAD", "GET"):
        response = client.open(requeue_all, method=method, headers=basic())
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "POST"
    for path in (f"/admin/rq/job/{job_id}/requeue", f"/admin/rq/job/{job_id}/delete"):
        assert client.head(path, headers=basic()).status_code == 405
    evil = {"Origin": "https://evil.example"}
    assert client.post(requeue_all, headers={**basic(), **evil}).status_code == 403
    assert client.head(requeue_all, headers={**basic(), **evil}).status_code == 403
    assert client.get("/admin/rq/", headers={**basic(), **evil}).status_code == 403
    assert client.post(requeue_all, headers={**basic(), "Referer": "https://evil.example/x"}).status_code == 403
    assert client.post(requeue_all, headers={**basic(), "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert failed.get_job_ids() == [job_id]  # nothing above requeued anything
    # A link followed from elsewhere may still open the dashboard.
    assert client.get("/admin/rq/", headers={**basic(), "Referer": "https://tickets.example/1"}).status_code == 200
    same = {"Origin": "http://localhost", "Referer": "http://localhost/admin/rq/"}
    response = client.post(requeue_all, headers={**basic(), **same})
    assert response.status_code == 200 and response.json["count"] == 1
    assert failed.get_job_ids() == []


def test_head_and_get_on_a_webhook_url_never_create_a_job(env, sandbox, redis):
    client = create_app(env()).test_client()
    body = load_fixture("shopify", "orders_paid")
    for method in ("HEAD", "GET"):
        response = client.open("/webhooks/harbour/shopify", method=method, data=body, headers=shopify_headers(body))
        assert response.status_code == 405, method
    wifi = create_app(env(wifi_tenants_toml(sandbox.url))).test_client()
    meraki = load_fixture("meraki", "observations")
    head = wifi.head("/webhooks/harbour/meraki", data=meraki, headers={"Content-Type": "application/json"})
    assert head.status_code == 200  # Meraki's GET handshake, without a body
    get = wifi.get("/webhooks/harbour/meraki")
    assert get.status_code == 200 and get.get_data(as_text=True) == MERAKI_VALIDATOR
    assert all(get_queue(redis, name).count == 0 for name in QUEUE_NAMES)
    assert not redis.keys("connector:seen:*")


def test_workers_page_answers_while_a_json_job_runs(env, redis):
    client = create_app(env(CONNECTOR_ADMIN_PASSWORD=ADMIN_PASSWORD)).test_client()
    get_queue(redis, INGEST_QUEUE).enqueue("time.sleep", 2, job_id="sleeper")
    worker = subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"], env=os.environ.copy())
    try:
        busy = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not busy:
            page = client.get("/admin/rq/0/data/workers.json", headers=basic())
            assert page.status_code == 200, page.get_data(as_text=True)
            busy = [w for w in page.json["workers"] if w["current_job"] != "idle"]
            time.sleep(0.1)
        assert busy and busy[0]["current_job"]["job_id"] == "sleeper"
        assert client.get("/admin/rq/0/view/workers", headers=basic()).status_code == 200
    finally:
        worker.wait(timeout=60)
