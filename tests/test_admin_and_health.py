"""Support tools: rq-dashboard behind the admin password, replay from it, health and metrics."""

from __future__ import annotations

import base64

from conftest import load_fixture, shopify_headers

from connector.queue import DELIVERY_QUEUE, get_queue
from connector.web import create_app


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"support:{password}".encode()).decode()}


def test_dashboard_is_off_without_a_password(client):
    response = client.get("/admin/rq/")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "admin_disabled"


def test_dashboard_requires_the_password(env):
    client = create_app(env(CONNECTOR_ADMIN_PASSWORD="correct horse")).test_client()
    assert client.get("/admin/rq/").status_code == 401
    assert client.get("/admin/rq/", headers=basic("wrong")).status_code == 401
    assert "Basic" in client.get("/admin/rq/").headers["WWW-Authenticate"]
    page = client.get("/admin/rq/", headers=basic("correct horse"))
    assert page.status_code == 200
    assert b"RQ" in page.data


def test_requeue_from_the_dashboard_delivers_once(env, sandbox, work, redis):
    client = create_app(env(CONNECTOR_ADMIN_PASSWORD="pw")).test_client()
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 500, "count": 4})
    body = load_fixture("shopify", "orders_paid")
    client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body))
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry
    [job_id] = failed.get_job_ids()
    listing = client.get(f"/admin/rq/0/data/jobs/{DELIVERY_QUEUE}/failed/10/asc/1.json", headers=basic("pw"))
    assert listing.status_code == 200
    assert job_id in listing.data.decode()
    assert client.get(f"/admin/rq/0/view/job/{job_id}", headers=basic("pw")).status_code == 200
    assert client.get(f"/admin/rq/requeue/{DELIVERY_QUEUE}", headers=basic("pw")).status_code == 405
    cross_site = client.post(
        f"/admin/rq/job/{job_id}/requeue", headers={**basic("pw"), "Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert client.post(f"/admin/rq/job/{job_id}/requeue", headers=basic("pw")).json["status"] == "OK"
    work()
    again = client.post(f"/admin/rq/job/{job_id}/requeue", headers=basic("pw"))  # a second click changes nothing
    assert again.status_code == 409
    assert again.json["error"]["code"] == "conflict"
    assert client.post("/admin/rq/job/no-such-job/requeue", headers=basic("pw")).status_code == 404
    work()
    state = sandbox.sandboxes.glu.state()
    assert len(state["activities"]) == 1
    assert state["activity_posts"] == 1


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json["status"] == "ready"
    body = load_fixture("shopify", "orders_paid")
    client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body))
    client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, secret="nope"))
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.data.decode()
    assert 'connector_webhooks_total{outcome="accepted",source="shopify",tenant="harbour"} 1.0' in text
    assert 'connector_webhooks_total{outcome="unauthorized",source="shopify",tenant="harbour"} 1.0' in text
    assert 'connector_queue_jobs{queue="ingest",state="queued"} 1.0' in text
