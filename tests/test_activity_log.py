"""The Activity page's records and its Retry, on a real Redis, real burst workers and the Glu
sandbox over HTTP: what the jobs record (delivered, ignored with its reason, retrying, failed),
that the records are bounded and hold no secret and no email, that Retry requeues only a failed
job of the signed-in tenant, once, and the silence warnings."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from browser_support import SECRET_KEY
from conftest import GLU_KEY, MARINA_SHOPIFY_SECRET, SHOPIFY_SECRET, load_fixture, shopify_headers, tenants_toml
from stack_helpers import redis_texts

from connector import activity_log
from connector.errors import ConfigError, FatalDestinationError
from connector.merchant_links import make_link_token
from connector.platforms.base import UnconfiguredPlatform
from connector.queue import DELIVERY_QUEUE, get_queue
from connector.settings import parse_tenant_document
from connector.web import create_app

EMAIL = "ada.lovelace@example.com"  # the customer of the orders_paid fixture
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def post_order(client: Any, fixture: str = "orders_paid", tenant: str = "harbour", **kwargs: Any) -> None:
    body = load_fixture("shopify", fixture)
    answer = client.post(f"/webhooks/{tenant}/shopify", data=body, headers=shopify_headers(body, **kwargs))
    assert answer.status_code == 202, answer.get_data(as_text=True)


@pytest.fixture
def pages(env: Any) -> Any:
    """The web app with the merchant pages on (a stable secret key), the usual test tenants."""
    return create_app(env(CONNECTOR_SECRET_KEY=SECRET_KEY)).test_client()


def sign_in(client: Any, tenant: str) -> None:
    """Sign the test client in to ``tenant``'s pages with a fresh link, as a browser does."""
    token = make_link_token(SECRET_KEY, tenant, 3600)
    page = client.get(f"/app/sign-in?token={token}")
    csrf = CSRF.search(page.get_data(as_text=True))
    assert csrf, page.get_data(as_text=True)
    answer = client.post("/app/sign-in", data={"token": token, "csrf_token": csrf.group(1)})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def activity_page(client: Any, tenant: str = "harbour") -> tuple[int, str]:
    answer = client.get(f"/app/{tenant}/activity")
    return answer.status_code, answer.get_data(as_text=True)


def press_retry(client: Any, job_id: str, tenant: str = "harbour") -> Any:
    _, page = activity_page(client, tenant)
    csrf = CSRF.search(page)
    assert csrf
    return client.post(f"/app/{tenant}/activity/retry", data={"job": job_id, "csrf_token": csrf.group(1)})


def deliveries_of(redis: Any, tenant: str = "harbour") -> list[dict[str, Any]]:
    return [caused for webhook in activity_log.webhooks(redis, tenant, "shopify") for caused in webhook["caused"]]


def test_a_delivered_webhook_is_recorded_with_the_delivery_it_caused(pages, redis, sandbox, work):
    post_order(pages)
    work()
    [webhook] = activity_log.webhooks(redis, "harbour", "shopify")
    assert webhook["status"] == "translated" and webhook["event_type"] == "orders/paid"
    assert webhook["received_at"] and webhook["delivery_id"] == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    [delivery] = webhook["caused"]
    assert delivery["status"] == "delivered" and delivery["destination"] == "glu"
    assert delivery["answer"]["remote_id"] == str(sandbox.sandboxes.glu.state()["activities"][0]["id"])
    assert delivery["job"] == webhook["deliveries"][0]
    assert activity_log.failures(redis, "harbour") == []
    seen = activity_log.last_seen(redis, "harbour", ["shopify", "standard"])
    assert seen["standard"] is None
    assert seen["shopify"] is not None and datetime.now(UTC) - seen["shopify"] < timedelta(minutes=1)


def test_an_ignored_webhook_shows_its_reason(pages, redis, work):
    post_order(pages, "orders_paid__test", webhook_id="a-test-order")
    work()
    [webhook] = activity_log.webhooks(redis, "harbour", "shopify")
    assert webhook["status"] == "ignored" and webhook["reason"] == "test order"
    sign_in(pages, "harbour")
    status, page = activity_page(pages)
    assert status == 200
    assert "ignored" in page and "test order" in page
    assert "No failures." in page


def test_a_retriable_failure_is_retrying_then_final_after_the_last_attempt(pages, redis, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "count": 100})
    post_order(pages)
    work(wait_for_retries=5)
    [webhook] = activity_log.webhooks(redis, "harbour", "shopify")
    job_id = webhook["deliveries"][0]
    records = activity_log.attempts(redis, "harbour", [job_id])[job_id]
    # The schedule is 0,0,0: four attempts, three of them with another to come.
    assert [r["status"] for r in records] == ["failed", "retrying", "retrying", "retrying"]
    assert all(r["answer"]["http_status"] == 503 for r in records)
    assert all("next_attempt_at" in r for r in records[1:]) and "next_attempt_at" not in records[0]
    [failure] = activity_log.failures(redis, "harbour")
    assert failure["job"] == job_id and "503" in failure["reason"]
    assert job_id in get_queue(redis, DELIVERY_QUEUE).failed_job_registry.get_job_ids()


def test_records_hold_no_secret_and_no_email_even_when_the_platform_echoes_the_request(pages, redis, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "echo", "status": 400, "count": 100})
    post_order(pages)
    work()
    [failure] = activity_log.failures(redis, "harbour")
    assert failure["answer"]["http_status"] == 400 and failure["answer"]["body"]
    assert len(failure["answer"]["body"]) <= activity_log.TEXT_LIMIT
    texts = [text for key, text in redis_texts(redis) if key.startswith("connector:activity:")]
    assert texts
    forbidden = set()
    for value in (GLU_KEY, SHOPIFY_SECRET, EMAIL, "Ada.Lovelace@Example.com"):
        forbidden |= {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
        forbidden |= {json.dumps(form)[1:-1] for form in list(forbidden)}
    leaks = [(form, text[:200]) for text in texts for form in forbidden if form in text]
    assert not leaks
    assert not any(re.search(r"[\w.+-]+(@|%40)[\w-]+\.[a-z]{2,}", text, re.IGNORECASE) for text in texts)
    # …and so does the page.
    sign_in(pages, "harbour")
    _, page = activity_page(pages)
    assert "HTTP 400" in page
    assert not [form for form in forbidden if form in page]


def test_clean_text_masks_secrets_emails_and_truncates():
    text = "key=top-secret-value&email=guest%40example.org " + json.dumps({"e": "x.y@example.com"}) + " z" * 400
    cleaned = activity_log.clean_text(text, ["top-secret-value"])
    assert "top-secret-value" not in cleaned and "example" not in cleaned
    assert cleaned.count("[email]") == 2 and "[redacted]" in cleaned
    assert len(cleaned) == activity_log.TEXT_LIMIT and cleaned.endswith("…")


def test_records_are_bounded(redis):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(activity_log.WEBHOOKS_KEPT + 30):
        received = (start + timedelta(minutes=n)).isoformat()
        activity_log.write(
            redis,
            "harbour",
            {"at": received, "job": f"ingest-{n:040x}", "kind": "webhook", "source": "shopify",
             "received_at": received, "event_type": "orders/paid", "delivery_id": str(n), "status": "translated"},
        )  # fmt: skip
    kept = activity_log.webhooks(redis, "harbour", "shopify")
    assert len(kept) == activity_log.WEBHOOKS_KEPT
    assert kept[0]["delivery_id"] == str(activity_log.WEBHOOKS_KEPT + 29)  # the newest first, the oldest dropped
    assert kept[-1]["delivery_id"] == "30"
    for n in range(activity_log.ATTEMPTS_KEPT + 5):
        activity_log.write(
            redis,
            "harbour",
            {"at": (start + timedelta(seconds=n)).isoformat(), "job": "deliver-1", "kind": "delivery",
             "source": "shopify", "status": "failed" if n % 2 else "retrying"},
        )  # fmt: skip
    assert redis.llen(activity_log.job_key("harbour", "deliver-1")) == activity_log.ATTEMPTS_KEPT
    assert 0 < redis.ttl(activity_log.job_key("harbour", "deliver-1")) <= activity_log.FAILURE_TTL
    for n in range(activity_log.FAILURES_KEPT + 10):
        activity_log.write(
            redis, "harbour", {"at": start.isoformat(), "job": f"deliver-f{n}", "kind": "delivery", "status": "failed"}
        )
    assert redis.zcard(activity_log.failures_key("harbour")) == activity_log.FAILURES_KEPT
    for key in redis.scan_iter("connector:activity:*"):
        assert redis.ttl(key) > 0, key


def test_retry_requeues_a_failed_delivery_once(pages, redis, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 401, "count": 1})
    post_order(pages)
    work()
    [failure] = activity_log.failures(redis, "harbour")
    assert failure["status"] == "failed" and "401" in failure["reason"]
    sign_in(pages, "harbour")
    _, page = activity_page(pages)
    assert page.index("Failures") < page.index("shopify orders/paid")  # failures first
    assert failure["job"] in page

    answer = press_retry(pages, failure["job"])
    assert answer.status_code == 303
    again = press_retry(pages, failure["job"])  # a second press before the worker ran it
    assert again.status_code == 409 and "already retried" in again.get_data(as_text=True)
    _, page = activity_page(pages)
    assert "retrying" in page and "No failures." in page
    assert activity_log.failures(redis, "harbour") == []
    work()
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1
    assert deliveries_of(redis)[0]["status"] == "delivered"
    late = press_retry(pages, failure["job"])  # delivered now: not failed, refused
    assert late.status_code == 409
    work()
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1


def test_retry_refuses_another_tenants_job_and_bad_ids(pages, redis, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 401, "count": 1})
    body = load_fixture("shopify", "orders_paid")
    headers = shopify_headers(body, secret=MARINA_SHOPIFY_SECRET, shop="marina-tokyo.myshopify.com")
    assert pages.post("/webhooks/marina/shopify", data=body, headers=headers).status_code == 202
    work()
    [failure] = activity_log.failures(redis, "marina")
    sign_in(pages, "harbour")
    answer = press_retry(pages, failure["job"])
    assert answer.status_code == 404 and "no failed job" in answer.get_data(as_text=True)
    assert failure["job"] in get_queue(redis, DELIVERY_QUEUE).failed_job_registry.get_job_ids()  # untouched
    assert press_retry(pages, "not-a-job-id").status_code == 400
    assert press_retry(pages, "deliver-" + "0" * 40).status_code == 404
    assert pages.post("/app/harbour/activity/retry", data={"job": failure["job"]}).status_code == 403  # CSRF
    work()
    assert sandbox.sandboxes.glu.state()["activities"] == []


def silent_toml(url: str) -> str:
    """The usual tenants, harbour's Shopify watched for 1.5 hours of silence, marina's for 2."""
    harbour = 'shop_domain = "harbour-hotels.myshopify.com"'
    marina = 'secrets = ["shpss_test_secret_marina"]'
    toml = tenants_toml(url).replace(harbour, f"{harbour}\nsilent_after = 1.5")
    return toml.replace(marina, f"{marina}\nsilent_after = 2")


def test_a_silent_source_warns_and_a_fresh_one_does_not(env, redis, sandbox, work):
    client = create_app(env(silent_toml(sandbox.url), CONNECTOR_SECRET_KEY=SECRET_KEY)).test_client()
    post_order(client)  # harbour's source is fresh; marina's has never sent anything
    work()
    windows = {"shopify": 1.5}
    assert activity_log.silent_sources(redis, "harbour", windows) == {}
    later = datetime.now(UTC) + timedelta(hours=2)
    assert list(activity_log.silent_sources(redis, "harbour", windows, now=later)) == ["shopify"]
    assert activity_log.silent_sources(redis, "marina", {"shopify": 2}) == {"shopify": None}
    assert activity_log.silent_sources(redis, "marina", {"shopify": None}) == {}
    sign_in(client, "harbour")
    _, page = activity_page(client)
    assert "silent for more than" not in page and "warning after 1.5 hours" in page
    sign_in(client, "marina")
    _, page = activity_page(client, "marina")
    assert "shopify has been silent for more than 2 hours" in page and "no webhook has arrived" in page


@pytest.mark.parametrize("value", [0, -1, "soon"])
def test_silent_after_must_be_a_positive_number_of_hours(value):
    document = {
        "timezone": "Europe/London",
        "sources": {"shopify": {"shop_domain": "x.myshopify.com", "secrets": ["abcd1234"], "silent_after": value}},
    }
    with pytest.raises(ConfigError, match="silent_after"):
        parse_tenant_document("lagoon", document, UnconfiguredPlatform())


def test_the_activity_page_needs_a_session_of_its_tenant(pages):
    assert activity_page(pages)[0] == 401
    sign_in(pages, "marina")
    assert activity_page(pages)[0] == 403
    assert pages.post("/app/harbour/activity/retry", data={"job": "x"}).status_code == 403


def test_the_recorder_redacts_what_a_job_raises(redis):
    secret = "platform-key-Zq9/+=k7"
    raw = f"boom: key {secret} for {EMAIL} ({quote_plus(EMAIL)})"

    @activity_log.recorded("delivery", lambda: redis, lambda: [secret])
    def deliver(activity: dict[str, Any], queued_for: str) -> dict[str, Any]:
        raise FatalDestinationError(raw, destination="glu", status=422, body=json.dumps({"echo": raw}))

    person = {"email": "Guest.Name@Example.org"}
    with pytest.raises(FatalDestinationError):
        deliver({"tenant": "harbour", "source": "shopify", "type": "Shopify order", "person": person}, "glu")
    [record] = activity_log.attempts(redis, "harbour", ["direct-delivery"])["direct-delivery"]
    assert record["status"] == "failed" and record["destination"] == "glu"
    assert record["answer"]["http_status"] == 422
    text = json.dumps(record)
    assert secret not in text and quote_plus(secret) not in text and "example" not in text.lower()
    assert "[redacted]" in text and "[email]" in text


def test_a_failed_webhook_is_a_failure_with_its_reason_and_can_be_retried(pages, redis, work):
    body = json.dumps({"id": 42, "email": "someone@example.com", "total_price": "not money"}).encode()
    headers = shopify_headers(body, webhook_id="a-broken-order")
    assert pages.post("/webhooks/harbour/shopify", data=body, headers=headers).status_code == 202
    work()
    [failure] = activity_log.failures(redis, "harbour")
    assert failure["kind"] == "webhook" and failure["status"] == "failed" and failure["job"].startswith("ingest-")
    assert failure["reason"] and "someone@" not in json.dumps(failure), failure
    sign_in(pages, "harbour")
    assert press_retry(pages, failure["job"]).status_code == 303
    work()  # the same payload fails again, for good: a failure again, never a second job
    [again] = activity_log.failures(redis, "harbour")
    assert again["job"] == failure["job"] and again["at"] > failure["at"]
    statuses = [r["status"] for r in activity_log.attempts(redis, "harbour", [failure["job"]])[failure["job"]]]
    assert statuses == ["failed", "retrying", "failed"]
