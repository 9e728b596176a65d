"""Authenticated but unusable PMS bodies get a clear 4xx (or ignored), never a 500, and no job."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pms_helpers import (
    APALEO_TOKEN,
    CLOUDBEDS_TOKEN,
    ENTERPRISE,
    HOSTAWAY_PASSWORD,
    MEWS_TOKEN,
    ingest_queue_empty,
    pms_toml,
    standard_headers,
)

HOSTAWAY_AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"hostaway-harbour:{HOSTAWAY_PASSWORD}".encode()).decode()
}
TARGETS = {
    "mews": (f"/webhooks/harbour/mews/{MEWS_TOKEN}", {}),
    "apaleo": (f"/webhooks/harbour/apaleo/{APALEO_TOKEN}", {}),
    "cloudbeds": (f"/webhooks/harbour/cloudbeds/{CLOUDBEDS_TOKEN}", {}),
    "hostaway": ("/webhooks/harbour/hostaway", HOSTAWAY_AUTH),
}
BODIES = [
    b"[]",
    b"{}",
    b'"text"',
    b"null",
    b'{"Events": "x", "EnterpriseId": "' + ENTERPRISE.encode() + b'"}',
    b"{not json",
]


@pytest.fixture
def pms_client(env: Any, sandbox: Any) -> Any:
    from connector.web import create_app

    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


@pytest.mark.parametrize("source", sorted(TARGETS))
def test_unusable_bodies_never_500_and_never_enqueue(pms_client, redis, source):
    path, headers = TARGETS[source]
    for body in BODIES:
        response = pms_client.post(path, data=body, headers={"Content-Type": "application/json", **headers})
        assert response.status_code in {200, 400, 401}, (source, body, response.status_code)
        if response.status_code != 200:
            assert set(response.json["error"]) == {"code", "message"}
        else:
            assert response.json["status"] == "ignored"
    assert ingest_queue_empty(redis)


def test_standard_stay_with_bad_data_is_rejected_in_the_worker_not_at_the_door(pms_client, redis, work, sandbox):
    body = json.dumps(
        {"type": "stay.booked", "timestamp": "2026-05-01T09:12:03Z", "data": {"property_id": "x"}}
    ).encode()
    response = pms_client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, "msg_bad"))
    assert response.status_code == 202  # the door checks signature and shape; the worker validates the stay
    work()
    assert sandbox.sandboxes.glu.state()["activities"] == []
    from rq.registry import FailedJobRegistry

    from connector.queue import INGEST_QUEUE, fetch_job, get_queue

    assert response.json["job"] in FailedJobRegistry(queue=get_queue(redis, INGEST_QUEUE)).get_job_ids()
    result = fetch_job(redis, response.json["job"]).latest_result()
    assert result is not None and "stay event data is invalid at: " in (result.exc_string or "")
