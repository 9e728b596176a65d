"""The support trace (issue 15), on a real Redis, real burst workers and the Glu sandbox over HTTP:
one chain per webhook, every job of it carrying the trace id in its RQ meta, every delivery
attempt recorded (requests, status, duration, answer, what came next), found by ``connector
trace`` from a delivery id, an order id or an email, and shown at ``/admin/trace/<id>`` behind
the admin password; no email and no secret in any record, index or output."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import structlog
from conftest import GLU_KEY, SHOPIFY_SECRET, load_fixture, shopify_headers, tenants_toml
from pms_helpers import pms_toml, standard_headers
from relay_helpers import relay_toml, voucherify_headers
from stack_helpers import redis_texts
from test_shopify_reconcile import TOKEN, Shop, app_env, graphql_order
from wifi_support import SOCIALWIFI_AUTH, wifi_tenants_toml

from connector import activity_log, trace
from connector.activities import hash_identifier
from connector.cli import main
from connector.errors import ConfigError
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, enqueue_unique, fetch_job, get_queue
from connector.settings import load_settings
from connector.web import create_app

EMAIL = "ada.lovelace@example.com"  # the customer of the orders_paid fixture
ORDER_ID = "6200407294252"
DELIVERY_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
ADMIN_PASSWORD = "admin-pass-for-trace-tests"


def post_order(client: Any, expect: int = 202, **kwargs: Any) -> str:
    body = load_fixture("shopify", "orders_paid")
    answer = client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, **kwargs))
    assert answer.status_code == expect, answer.get_data(as_text=True)
    return str(answer.get_json()["job"])


def run_trace(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``connector trace …``: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(["trace", *args])
        status = 0
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def forbidden_forms(*values: str) -> set[str]:
    forms: set[str] = set()
    for value in values:
        forms |= {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
    return forms | {json.dumps(form)[1:-1] for form in list(forms)}


FORBIDDEN = forbidden_forms(GLU_KEY, SHOPIFY_SECRET, EMAIL, "Ada.Lovelace@Example.com", ADMIN_PASSWORD)


def assert_clean(text: str) -> None:
    leaked = [form for form in FORBIDDEN if form.lower() in text.lower()]
    assert not leaked, leaked


@pytest.fixture
def retried(settings: Any, redis: Any, sandbox: Any, work: Any) -> str:
    """One orders/paid webhook whose delivery gets two 503s, then goes through: its trace id."""
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "count": 2})
    trace_id = post_order(create_app(settings).test_client())
    work(wait_for_retries=5)
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1
    return trace_id


def test_two_retries_and_a_success_show_three_attempts_found_by_delivery_id_order_id_and_email(retried, redis, capsys):
    for term in (DELIVERY_ID, ORDER_ID, EMAIL, "Ada.Lovelace@Example.com", retried):
        status, out, err = run_trace(capsys, term)
        assert status == 0, err
        assert out.startswith(f"trace {retried}  tenant harbour  final state: done"), out
        assert f"delivery id {DELIVERY_ID}" in out and "orders/paid" in out
        assert "translation  1 delivery, 0 relays" in out
        assert out.count("  attempt ") == 4  # the ingest's one and the delivery's three
        assert out.count("status 503") == 2 and out.count("next: retry at ") == 2
        assert "glu: POST " in out and "-> 503 (" in out
        assert out.rstrip().endswith("final state  done")
        assert_clean(out)

    status, out, _ = run_trace(capsys, ORDER_ID, "--json")
    assert status == 0
    document = json.loads(out)
    assert document["trace"] == retried and document["matches"] == [retried] and document["state"] == "done"
    assert document["received"]["delivery_id"] == DELIVERY_ID and document["received"]["source"] == "shopify"
    [delivery] = document["jobs"]
    assert delivery["kind"] == "delivery" and delivery["destination"] == "glu" and delivery["state"] == "done"
    attempts = delivery["attempts"]
    assert [a["status"] for a in attempts] == ["retrying", "retrying", "delivered"]
    assert [a["next"][:8] for a in attempts] == ["retry at", "retry at", "done"]
    assert [a["answer"]["http_status"] for a in attempts[:2]] == [503, 503]
    assert all(a["trace"] == retried and a["duration_ms"] >= 0 and a["requests"] for a in attempts)
    for attempt in attempts:
        for made in attempt["requests"]:
            assert set(made) == {"destination", "method", "path", "status", "ms"}
            assert made["destination"] == "glu" and "?" not in made["path"]
    assert attempts[0]["requests"][-1]["status"] == 503 and attempts[-1]["requests"][-1]["status"] < 300
    assert_clean(out)


def test_every_job_of_the_chain_carries_the_trace_and_a_duplicate_maps_to_it(settings, redis, sandbox, work, capsys):
    client = create_app(settings).test_client()
    trace_id = post_order(client)
    assert post_order(client, 200) == trace_id  # the sender's redelivery: a duplicate, the same trace
    work()
    assert post_order(client, 200) == trace_id  # also once it ran
    document = trace.chain(redis, trace_id)
    assert document is not None and document["jobs"]
    for job in document["jobs"]:
        # Delivered by the ingest job itself (issue 16): no RQ job; its records carry the trace.
        assert job["attempts"] and all(a["trace"] == trace_id for a in job["attempts"])
        status, out, _ = run_trace(capsys, job["job"])  # found by the delivery job's id too
        assert status == 0 and out.startswith(f"trace {trace_id} ")
    assert trace.find(redis, DELIVERY_ID) == [trace_id]


def test_a_second_webhook_of_the_same_guest_lists_both_traces_most_recent_first(settings, redis, sandbox, work, capsys):
    client = create_app(settings).test_client()
    first = post_order(client)
    work()
    second = post_order(client, webhook_id="0f2d1c3e-0000-4000-8000-000000000002")
    work()
    assert trace.find(redis, EMAIL) == [second, first]
    status, out, _ = run_trace(capsys, EMAIL)
    assert status == 0 and out.startswith(f"2 traces match {EMAIL!r}") and f"trace {second} " in out
    assert trace.find(redis, EMAIL, tenant="marina") == []


def test_an_unknown_id_exits_1_and_says_what_is_accepted(settings, redis, capsys):
    status, out, err = run_trace(capsys, "no-such-thing")
    assert status == 1 and out == ""
    assert "no trace found for 'no-such-thing'" in err and "delivery id" in err and "email" in err
    status, _, err = run_trace(capsys, "someone@example.org", "--tenant", "harbour")
    assert status == 1 and "of tenant harbour" in err


def test_no_email_and_no_secret_in_records_indexes_or_outputs(retried, redis, capsys):
    texts = [text for key, text in redis_texts(redis) if key.startswith(("connector:activity:", "connector:trace:"))]
    assert any("connector:trace:find:" in text for text in texts)
    for text in texts:
        assert_clean(text)
    # The email's index holds its trace under the hash of the hash, never the address.
    assert activity_log.find_traces(redis, [("email", hash_identifier(EMAIL))])
    for args in ((EMAIL,), (EMAIL, "--json")):
        status, out, _ = run_trace(capsys, *args)
        assert status == 0
        assert_clean(out)


def test_the_admin_page_needs_the_password_and_shows_the_chain(retried, env, redis):
    off = create_app(env()).test_client()
    assert off.get(f"/admin/trace/{retried}").status_code == 404  # no password configured: off
    app = create_app(env(CONNECTOR_ADMIN_PASSWORD=ADMIN_PASSWORD)).test_client()
    answer = app.get(f"/admin/trace/{retried}")
    assert answer.status_code == 401 and "Basic" in answer.headers["WWW-Authenticate"]
    wrong = {"Authorization": "Basic " + base64.b64encode(b"support:nope").decode()}
    assert app.get(f"/admin/trace/{retried}", headers=wrong).status_code == 401
    auth = {"Authorization": "Basic " + base64.b64encode(f"support:{ADMIN_PASSWORD}".encode()).decode()}
    page = app.get(f"/admin/trace/{ORDER_ID}", headers=auth)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert retried in html and DELIVERY_ID in html and html.count("503") >= 2 and "final state: done" in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert_clean(html)
    as_json = app.get(f"/admin/trace/{EMAIL}", headers={**auth, "Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.get_json()["trace"] == retried
    assert_clean(as_json.get_data(as_text=True))
    missing = app.get("/admin/trace/nothing-like-this", headers=auth)
    assert missing.status_code == 404 and "no trace found" in missing.get_data(as_text=True)
    cross = app.get(f"/admin/trace/{retried}", headers={**auth, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    # rq-dashboard's page of a job of the chain links to the trace (plain HTML, no script).
    delivery = trace.chain(redis, retried)["jobs"][0]["job"]
    job_page = app.get(f"/admin/rq/0/view/job/{delivery}", headers=auth).get_data(as_text=True)
    assert f'<a id="connector-trace-link" href="/admin/trace/{delivery}">' in job_page
    assert app.get(f"/admin/trace/{delivery}", headers=auth).get_data(as_text=True).count(retried) >= 1


@activity_log.traced("test", lambda tenant, source: (tenant, source))
def context_job(tenant: str, source: str) -> dict[str, Any]:
    """Run by a real worker: what a traced job sees of its log context and passes on."""
    return {"log": dict(structlog.contextvars.get_contextvars()), "meta": activity_log.job_meta()}


@pytest.mark.parametrize("meta", [{"trace": "ingest-" + "a" * 40}, None])
def test_a_job_runs_in_its_trace_log_context_and_passes_the_trace_on(settings, redis, work, meta):
    queue = get_queue(redis, INGEST_QUEUE)
    job_id = "erase-" + ("b" if meta else "c") * 40
    enqueue_unique(
        queue,
        "test_trace.context_job",
        job_id=job_id,
        args=("harbour", "socialwifi"),
        schedule=(0,),
        description="t",
        meta=meta,
    )
    work()
    job = fetch_job(redis, job_id)
    expected = meta["trace"] if meta else job_id  # a job no webhook caused is its own trace
    assert job.return_value() == {
        "log": {"trace_id": expected, "tenant": "harbour", "source": "socialwifi", "job_id": job_id},
        "meta": {"trace": expected},
    }
    assert structlog.contextvars.get_contextvars() == {} and activity_log.current_trace() is None


def test_an_erasure_carries_the_trace_and_forgets_the_guest_index(env, sandbox, redis, work, capsys):
    wifi = create_app(env(toml=wifi_tenants_toml(sandbox.url))).test_client()
    auth = {"Content-Type": "application/json", "Authorization": SOCIALWIFI_AUTH}
    upsert = wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "upsert"), headers=auth)
    work()
    guest = "mary.jackson@example.com"
    assert trace.find(redis, guest) == [upsert.get_json()["job"]]
    delete = wifi.post("/webhooks/harbour/socialwifi", data=load_fixture("socialwifi", "delete"), headers=auth)
    work()
    deleted = delete.get_json()["job"]
    document = trace.chain(redis, deleted)
    assert document is not None and document["translation"]["status"] == "erasure"
    [erasure] = document["jobs"]
    assert erasure["kind"] == "erasure" and erasure["state"] == "done"
    assert fetch_job(redis, erasure["job"]).meta["trace"] == deleted
    assert trace.find(redis, guest) == []  # forgotten with the guest
    status, out, _ = run_trace(capsys, deleted)
    assert status == 0 and "an erasure request" in out and "final state  done" in out
    assert "mary" not in out


def test_the_retention_setting_is_checked(tmp_path, monkeypatch):
    path = tmp_path / "tenants.toml"
    path.write_text("")
    monkeypatch.setenv("CONNECTOR_TENANTS_FILE", str(path))
    monkeypatch.setenv("CONNECTOR_TRACE_RETENTION_DAYS", "30")
    assert load_settings().trace_retention_days == 30
    for bad in ("0", "-3", "soon", "4000"):
        monkeypatch.setenv("CONNECTOR_TRACE_RETENTION_DAYS", bad)
        with pytest.raises(ConfigError, match="CONNECTOR_TRACE_RETENTION_DAYS"):
            load_settings()
        assert activity_log.retention(True) == 7 * 24 * 3600  # the default, never a broken value


def test_retention_is_configurable(monkeypatch):
    assert activity_log.retention(True) == 7 * 24 * 3600 and activity_log.retention(False) == 90 * 24 * 3600
    monkeypatch.setenv(activity_log.RETENTION_ENV, "3")
    assert activity_log.retention(True) == activity_log.retention(False) == 3 * 24 * 3600
    assert activity_log.index_ttl() == 3 * 24 * 3600


def test_business_terms_index_ids_not_words():
    assert activity_log.business_terms("shopify:harbour-hotels.myshopify.com:order:4512") == [
        "shopify:harbour-hotels.myshopify.com:order:4512",
        "4512",
    ]
    assert activity_log.business_terms("mews:prop-1:RES-77:status:2") == [
        "mews:prop-1:RES-77:status:2",
        "prop-1",
        "RES-77",
    ]


def test_a_stay_webhook_traces_every_activity_it_implies_found_by_reservation_id(env, sandbox, redis, work, capsys):
    client = create_app(env(pms_toml(sandbox.url), TEST_MEWS_ACCESS_TOKEN="x")).test_client()
    body = load_fixture("standard", "stay_checked_out")
    answer = client.post("/webhooks/harbour/standard", data=body, headers=standard_headers(body, "msg_trace_1"))
    assert answer.status_code == 202
    trace_id = answer.get_json()["job"]
    work()
    document = trace.chain(redis, trace_id)
    assert document is not None and document["state"] == "done"
    assert [job["type"] for job in document["jobs"]] == ["Booking", "Checked in", "Checked out"]
    for job in document["jobs"]:  # written by the stay state's transaction, not enqueue_unique
        assert fetch_job(redis, job["job"]).meta["trace"] == trace_id
    assert trace.find(redis, "RES-20931") == [trace_id]
    status, out, _ = run_trace(capsys, "RES-20931", "--tenant", "harbour")
    assert status == 0 and out.count("delivery     deliver-") == 3
    assert_clean(out)


def test_a_relayed_loyalty_event_is_traced_to_the_esp_and_found_by_the_members_email(env, sandbox, redis, work, capsys):
    client = create_app(env(relay_toml(sandbox.url, "klaviyo"))).test_client()
    body = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024")
    answer = client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body))
    assert answer.status_code == 202
    trace_id = answer.get_json()["job"]
    work()
    document = trace.chain(redis, trace_id)
    assert document is not None and document["state"] == "done"
    [relay] = document["jobs"]
    assert relay["kind"] == "relay" and relay["destination"] == "klaviyo" and relay["status"] == "delivered"
    [attempt] = relay["attempts"]  # relayed by the ingest job itself (issue 16): its record carries the trace
    assert attempt["trace"] == trace_id
    assert attempt["requests"] and {r["destination"] for r in attempt["requests"]} == {"klaviyo"}
    assert trace.find(redis, "Zoe.Angstrom@example.com") == [trace_id]  # hashed: case does not matter
    status, out, _ = run_trace(capsys, "zoe.angstrom@example.com", "--json")
    assert status == 0 and "zoe" not in out.lower()


def test_a_reconciliation_is_its_own_trace_and_its_deliveries_carry_it(env, sandbox, redis, work, capsys):
    env(tenants_toml(sandbox.url), **app_env(sandbox.url))
    shop = Shop(sandbox, redis)
    shop.seed(graphql_order(4512, datetime.now(UTC), email="grace.hopper@example.com"))
    result = shop.reconcile(work)
    assert result["queued"] == 1
    [reconciliation] = [
        j for j in get_queue(redis, DELIVERY_QUEUE).finished_job_registry.get_job_ids() if "reconcile" in j
    ]
    [found] = trace.find(redis, "4512")
    assert found == reconciliation and trace.find(redis, "grace.hopper@example.com") == [found]
    document = trace.chain(redis, found)
    assert document is not None and document["received"] is None and document["state"] == "done"
    [delivery] = document["jobs"]
    assert delivery["status"] == "delivered" and fetch_job(redis, delivery["job"]).meta["trace"] == found
    status, out, _ = run_trace(capsys, "4512")
    assert status == 0 and "began with a job" in out and TOKEN not in out and "grace" not in out
