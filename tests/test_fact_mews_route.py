"""Mews allows one General Webhook URL per integration client, not per property (Mews Connector
API docs, events/wh-faq.md "Can I set up multiple Webhooks?"; events/wh-general.md: each message
names its ``EnterpriseId`` and ``IntegrationId``). The connector therefore has one Mews URL,
``POST /webhooks/_mews/<CONNECTOR_MEWS_WEBHOOK_TOKEN>``, routing each message by ``EnterpriseId``
to the tenant whose Mews source has that ``enterprise_id``."""

from __future__ import annotations

import http.client
import json
import os
import textwrap
from typing import Any
from urllib.parse import quote

import pytest
from conftest import harbour_marina_toml, load_fixture
from pms_helpers import (
    ENTERPRISE,
    MARINA_MEWS_TOKEN,
    MEWS_ACCESS_TOKEN,
    MEWS_CLIENT_TOKEN,
    MEWS_TOKEN,
    RESERVATION,
    fixture_json,
    glu_activities,
    ingest_queue_empty,
)
from stack_helpers import ROOT, gunicorn_server

from connector.embedded_redis import free_port
from connector.errors import ConfigError
from connector.metrics import read_counters
from connector.queue import INGEST_QUEUE, fetch_job, get_queue

SHARED_TOKEN = "mews-shared+url=token~5b9e!"  # percent-encoded and raw forms differ
MARINA_ENTERPRISE = "4d0201db-36f5-428b-8d11-4f0a65e960cc"
UNKNOWN_ENTERPRISE = "00000000-0000-0000-0000-000000000000"


def shared_toml(sandbox_url: str, marina_enterprise: str = MARINA_ENTERPRISE, marina_token: str = "") -> str:
    """harbour: per-tenant token and enterprise id; marina: reached through the shared URL only
    (unless ``marina_token`` gives it its own URL too)."""
    harbour = f"""
        [tenants.harbour.sources.mews]
        token = "{MEWS_TOKEN}"
        api_url = "{sandbox_url}/mews"
        client_token = "{MEWS_CLIENT_TOKEN}"
        access_token = "{MEWS_ACCESS_TOKEN}"
        enterprise_id = "{ENTERPRISE}"
    """
    marina = f"""
        [tenants.marina.sources.mews]
        {f'token = "{marina_token}"' if marina_token else ""}
        api_url = "{sandbox_url}/mews"
        client_token = "{MEWS_CLIENT_TOKEN}"
        access_token = "{MEWS_ACCESS_TOKEN}"
        enterprise_id = "{marina_enterprise}"
    """
    return harbour_marina_toml(sandbox_url, harbour, marina)


def message(enterprise: str | None = ENTERPRISE) -> bytes:
    body = fixture_json("mews", "general_webhook")
    if enterprise is None:
        del body["EnterpriseId"]
    else:
        body["EnterpriseId"] = enterprise
    return json.dumps(body).encode()


@pytest.fixture
def shared_env(env: Any, sandbox: Any) -> Any:
    settings = env(shared_toml(sandbox.url), CONNECTOR_MEWS_WEBHOOK_TOKEN=SHARED_TOKEN)
    mews = sandbox.sandboxes.extra["mews"]
    mews.seed("customers", fixture_json("mews", "customer"))
    mews.seed("resource_categories", fixture_json("mews", "resource_category"))
    mews.seed("order_items", *fixture_json("mews", "order_items"))
    mews.seed("reservations", fixture_json("mews", "reservation_confirmed"))
    return settings


@pytest.fixture
def shared_client(shared_env: Any) -> Any:
    from connector.web import create_app

    return create_app(shared_env).test_client()


def post(client: Any, body: bytes, token: str = SHARED_TOKEN, **headers: str) -> Any:
    return client.post(
        f"/webhooks/_mews/{quote(token, safe='')}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )


def job_tenant(redis: Any, job_id: str) -> str:
    envelope, _text = fetch_job(redis, job_id).args
    return str(envelope["tenant"])


def test_one_url_routes_each_enterprise_to_its_tenants_job(shared_client, redis, work, sandbox):
    harbour = post(shared_client, message(ENTERPRISE))
    marina = post(shared_client, message(MARINA_ENTERPRISE))
    assert harbour.status_code == 202, harbour.json
    assert marina.status_code == 202, marina.json
    assert job_tenant(redis, harbour.json["job"]) == "harbour"
    assert job_tenant(redis, marina.json["job"]) == "marina"
    assert get_queue(redis, INGEST_QUEUE).count == 2
    counters = read_counters(redis)
    assert counters["webhooks|outcome=accepted|source=mews|tenant=harbour"] == 1
    assert counters["webhooks|outcome=accepted|source=mews|tenant=marina"] == 1
    work()  # the very job the per-tenant URL makes: each tenant's reservation fetched and posted
    assert sandbox.sandboxes.glu.state()["activity_posts"] == 2
    assert read_counters(redis)["deliveries|destination=glu|outcome=delivered"] == 2
    activities = glu_activities(sandbox)  # one sandbox and one key for both tenants: Glu keeps one
    assert [a["type"] for a in activities] == ["Booking"]
    assert {a["externalReference"] for a in activities} == {f"mews:{ENTERPRISE}:{RESERVATION}"}


def test_per_tenant_url_still_works_and_is_not_opened_by_the_shared_token(shared_client, redis):
    ok = shared_client.post(
        f"/webhooks/harbour/mews/{MEWS_TOKEN}", data=message(), headers={"Content-Type": "application/json"}
    )
    assert ok.status_code == 202, ok.json
    assert job_tenant(redis, ok.json["job"]) == "harbour"
    for tenant in ("harbour", "marina"):  # marina has no per-tenant token: its per-tenant URL stays shut
        wrong = shared_client.post(
            f"/webhooks/{tenant}/mews/{quote(SHARED_TOKEN, safe='')}",
            data=message(MARINA_ENTERPRISE if tenant == "marina" else ENTERPRISE),
            headers={"Content-Type": "application/json"},
        )
        assert wrong.status_code == 401, wrong.json
    assert get_queue(redis, INGEST_QUEUE).count == 1


def test_unknown_enterprise_is_ignored_and_counted(shared_client, redis):
    response = post(shared_client, message(UNKNOWN_ENTERPRISE))
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert UNKNOWN_ENTERPRISE in response.json["reason"]
    assert ingest_queue_empty(redis)
    assert read_counters(redis)["ignored|reason=unknown_enterprise|source=mews|tenant=_mews"] == 1


def test_wrong_or_missing_token_is_401_and_no_job(shared_client, redis):
    for token in ("not-the-token", SHARED_TOKEN[:-1], SHARED_TOKEN + "x", MEWS_TOKEN, json.dumps("x")):
        response = post(shared_client, message(), token=token)
        assert response.status_code == 401, (token, response.json)
        assert response.json["error"]["code"] == "invalid_signature"
    assert shared_client.post("/webhooks/_mews", data=message(), content_type="application/json").status_code == 404
    assert ingest_queue_empty(redis)
    assert read_counters(redis)["webhooks|outcome=unauthorized|source=mews|tenant=_mews"] == 5


@pytest.mark.parametrize(
    "body",
    [
        message(None),  # no EnterpriseId
        json.dumps({**fixture_json("mews", "general_webhook"), "EnterpriseId": 42}).encode(),
        json.dumps({**fixture_json("mews", "general_webhook"), "EnterpriseId": ""}).encode(),
        json.dumps({**fixture_json("mews", "general_webhook"), "EnterpriseId": ["x"]}).encode(),
        b"[]",
        b"null",
        b'"851df8c8-90f2-4c4a-8e01-a4fc46b25178"',
        b"{not json",
        b"\xff\xfe garbage",
        b"",
        b"[" * 100 + b"]" * 100,
    ],
)
def test_missing_enterprise_or_garbage_is_400_and_no_job(shared_client, redis, body):
    response = post(shared_client, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"]["code"] in ("invalid_json", "too_deep", "invalid_payload")
    assert ingest_queue_empty(redis)


def test_known_enterprise_without_events_is_checked_like_the_per_tenant_path(shared_client, redis):
    no_events = json.dumps({"EnterpriseId": ENTERPRISE, "IntegrationId": "i"}).encode()
    assert post(shared_client, no_events).status_code == 400  # the adapter's own identity check
    ignored = load_fixture("mews", "customers_only").replace(ENTERPRISE.encode(), MARINA_ENTERPRISE.encode())
    response = post(shared_client, ignored)
    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert read_counters(redis)["ignored|reason=no_reservation_events|source=mews|tenant=marina"] == 1
    assert post(shared_client, message(), **{"Content-Type": "text/plain"}).status_code == 415
    assert ingest_queue_empty(redis)


def test_repeated_message_is_answered_as_on_the_per_tenant_url(shared_client, redis, work, sandbox):
    """Mews sends no delivery id and a later change repeats a message's bytes, so the per-tenant URL
    accepts every message as new (module docstring of connector/sources/mews.py); the shared URL
    does the same, through the same dedup step, and the stay state still sends each activity once."""
    first = post(shared_client, message())
    again = post(shared_client, message())
    per_tenant = shared_client.post(
        f"/webhooks/harbour/mews/{MEWS_TOKEN}", data=message(), headers={"Content-Type": "application/json"}
    )
    assert [r.status_code for r in (first, again, per_tenant)] == [202, 202, 202]
    assert len({first.json["job"], again.json["job"], per_tenant.json["job"]}) == 3
    work()
    assert [a["type"] for a in glu_activities(sandbox)] == ["Booking"]


def test_unset_shared_token_means_no_shared_endpoint(env, sandbox, redis):
    from connector.web import create_app

    toml = shared_toml(sandbox.url, marina_token=MARINA_MEWS_TOKEN)
    client = create_app(env(toml)).test_client()
    for token in (SHARED_TOKEN, "", "x"):
        response = client.post(f"/webhooks/_mews/{token}", data=message(), content_type="application/json")
        assert response.status_code == 404, token
        if token:  # no route at all for /webhooks/_mews/
            assert response.json["error"]["code"] == "not_found"
    client = create_app(env(toml, CONNECTOR_MEWS_WEBHOOK_TOKEN="")).test_client()
    assert post(client, message(), token="").status_code == 404
    assert ingest_queue_empty(redis)


def test_get_on_the_shared_url_is_405(shared_client, redis):
    response = shared_client.get(f"/webhooks/_mews/{quote(SHARED_TOKEN, safe='')}")
    assert response.status_code == 405
    assert ingest_queue_empty(redis)


def test_two_tenants_claiming_one_enterprise_is_a_config_error_naming_both(env, sandbox):
    with pytest.raises(ConfigError) as caught:
        env(shared_toml(sandbox.url, marina_enterprise=ENTERPRISE), CONNECTOR_MEWS_WEBHOOK_TOKEN=SHARED_TOKEN)
    text = str(caught.value)
    assert "tenants.harbour.sources.mews.enterprise_id" in text
    assert "tenants.marina.sources.mews.enterprise_id" in text
    assert ENTERPRISE in text


def test_mews_source_without_token_needs_an_enterprise_id(env, sandbox):
    toml = shared_toml(sandbox.url).replace(f'enterprise_id = "{MARINA_ENTERPRISE}"\n', "")
    with pytest.raises(ConfigError) as caught:
        env(toml, CONNECTOR_MEWS_WEBHOOK_TOKEN=SHARED_TOKEN)
    assert "tenants.marina.sources.mews" in str(caught.value)
    assert "enterprise_id" in str(caught.value)


def test_tokenless_mews_source_needs_the_shared_url(env, sandbox):
    with pytest.raises(ConfigError) as caught:
        env(shared_toml(sandbox.url))
    assert "tenants.marina.sources.mews" in str(caught.value)
    assert "CONNECTOR_MEWS_WEBHOOK_TOKEN" in str(caught.value)


def test_enterprise_lookup_is_built_once_per_settings_load(shared_env):
    assert shared_env.mews_enterprises == {ENTERPRISE: "harbour", MARINA_ENTERPRISE: "marina"}
    assert shared_env.mews_enterprises is shared_env.mews_enterprises


def test_shared_token_is_a_configured_secret(shared_env):
    from connector.redaction import configured_secrets

    assert SHARED_TOKEN in configured_secrets(shared_env)


def test_gunicorn_access_log_masks_the_shared_token(tmp_path, redis_url, redis, sandbox):
    port = free_port()
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(textwrap.dedent(shared_toml(sandbox.url)))
    access = tmp_path / "access.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "CONNECTOR_ACCESS_LOG": str(access),
        "CONNECTOR_MEWS_WEBHOOK_TOKEN": SHARED_TOKEN,
    }
    with gunicorn_server(env):
        for form in (SHARED_TOKEN, quote(SHARED_TOKEN, safe="")):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "POST", f"/webhooks/_mews/{form}", body=message(), headers={"Content-Type": "application/json"}
            )
            assert conn.getresponse().status == 202
    log = access.read_text()
    assert log.count("/webhooks/_mews/[redacted]") == 2, log
    assert SHARED_TOKEN not in log and quote(SHARED_TOKEN, safe="") not in log, log


def test_shared_token_with_a_slash_is_a_config_error(env, sandbox):
    with pytest.raises(ConfigError) as caught:
        env(shared_toml(sandbox.url), CONNECTOR_MEWS_WEBHOOK_TOKEN="a/b-shared-token")
    assert "CONNECTOR_MEWS_WEBHOOK_TOKEN" in str(caught.value)
    assert "a/b-shared-token" not in str(caught.value)
