"""Hostaway's test ping ``{"data": "test"}`` (sent when a webhook is saved): 200 ignored, no job.

Seen in PipedreamHQ/pipedream components/hostaway (sources/common/common.mjs answers 200 to
``body.data === "test"``). Whether the ping carries the webhook's login/password is not
documented, so it is authenticated like every other message (never fail open).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pms_helpers import HOSTAWAY_PASSWORD, ingest_queue_empty, pms_toml

from connector.metrics import read_counters
from connector.web import create_app

URL = "/webhooks/harbour/hostaway"
PING = b'{"data": "test"}'


@pytest.fixture
def ha_client(env: Any, sandbox: Any) -> Any:
    return create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()


def auth(password: str = HOSTAWAY_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"hostaway-harbour:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [PING, b'{"data":"test"}\n', b'{"data": "test", "accountId": 10452}'],
    ids=["spaced", "compact", "with-more-keys"],
)
def test_authenticated_test_ping_is_200_ignored_without_a_job(ha_client, redis, body):
    response = ha_client.post(URL, data=body, headers=auth())
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "test" in response.json["reason"]
    assert ingest_queue_empty(redis)
    assert read_counters(redis).get("ignored|reason=test_ping|source=hostaway|tenant=harbour") == 1


@pytest.mark.parametrize(
    "headers",
    [auth("wrong"), {"Content-Type": "application/json"}],
    ids=["wrong-password", "no-auth"],
)
def test_test_ping_must_still_authenticate(ha_client, redis, headers):
    response = ha_client.post(URL, data=PING, headers=headers)
    assert response.status_code == 401
    assert ingest_queue_empty(redis)


@pytest.mark.parametrize(
    "body",
    [b'{"data": "other"}', b'{"data": ["test"]}', b'{"data": 1}'],
    ids=["other-string", "list", "number"],
)
def test_other_bodies_without_a_reservation_stay_400(ha_client, redis, body):
    response = ha_client.post(URL, data=body, headers=auth())
    assert response.status_code == 400
    assert ingest_queue_empty(redis)
