"""Secrets typed into the merchant pages are masked everywhere, as the tenants file's are: a
stored tenant whose platform echoes every request (headers included) into its error answers
leaves its key in no Redis value, no log line and no failure reason, in any encoding."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import load_fixture, shopify_headers
from rq.job import Job
from rq.serializers import JSONSerializer
from stack_helpers import redis_texts
from test_secrets_nowhere import forms, secret

from connector.queue import DELIVERY_QUEUE, get_queue
from connector.sandbox.server import SandboxServer
from connector.tenant_store import TenantStore
from connector.web import create_app

STORE_KEY = "stored-tenants-key-of-the-operator-42"
GLU_TYPED = secret("glu-key-typed-in-the-pages")
SHOPIFY_TYPED = secret("shopify-secret-typed-in-the-pages")
SHOP = "lagoon-shop.myshopify.com"


@pytest.fixture
def echo_glu() -> Iterator[SandboxServer]:
    """A Glu sandbox that takes the typed key, and echoes requests in its errors."""
    server = SandboxServer(keys={"glu": GLU_TYPED}).start()
    yield server
    server.stop()


def test_a_typed_secret_never_lands_anywhere(monkeypatch, tmp_path, redis, redis_url, echo_glu, caplog):
    tenants = tmp_path / "tenants.toml"
    tenants.write_text("")
    for name, value in {
        "REDIS_URL": redis_url,
        "CONNECTOR_TENANTS_FILE": str(tenants),
        "CONNECTOR_RETRY_SCHEDULE": "0",
        "CONNECTOR_SECRET_KEY": STORE_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    TenantStore.open(redis, STORE_KEY).create(
        "lagoon",
        {
            "timezone": "Europe/Lisbon",
            "loyalty": {"platform": "glu", "base_url": f"{echo_glu.url}/glu", "api_key": GLU_TYPED},
            "sources": {"shopify": {"shop_domain": SHOP, "secrets": [SHOPIFY_TYPED]}},
        },
    )
    echo_glu.sandboxes.glu.faults.arm({"mode": "echo", "status": 503, "count": 1})  # a retry, logged
    echo_glu.sandboxes.glu.faults.arm({"mode": "echo", "status": 400, "count": 100})  # then fatal
    caplog.set_level(logging.DEBUG)
    client = create_app().test_client()
    body = load_fixture("shopify", "orders_paid")
    answer = client.post(
        "/webhooks/lagoon/shopify", data=body, headers=shopify_headers(body, secret=SHOPIFY_TYPED, shop=SHOP)
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "connector.cli", "worker", "--burst", "--worker-class", "simple"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            timeout=120,
            check=True,
        )
    worker_log = log.read_text()
    assert get_queue(redis, DELIVERY_QUEUE).failed_job_registry.get_job_ids()  # it did fail, with the echo
    assert echo_glu.sandboxes.glu.faults.calls >= 2
    assert "[redacted]" in worker_log  # the echoed request reached the log, masked

    def hits(text: str) -> list[str]:
        return [
            f"{value!r} as {form!r}" for value in (GLU_TYPED, SHOPIFY_TYPED) for form in forms(value) if form in text
        ]

    leaks = [f"redis {key}: {hit}" for key, text in redis_texts(redis) for hit in hits(text)]
    leaks += [f"worker log: {hit}" for hit in hits(worker_log)]
    leaks += [f"web log: {hit}" for hit in hits(caplog.text)]
    assert not leaks, "\n".join(sorted(set(leaks))[:20])


def test_no_guest_email_in_a_failure_reason(client, redis, sandbox, work):
    """A contact look-up carries the email in its query; a refusal of it fails the job with a
    reason that names the call without the address (and masks one the vendor echoes back)."""
    sandbox.sandboxes.glu.faults.arm({"mode": "echo", "status": 400, "count": 10})
    body = load_fixture("shopify", "orders_paid")
    assert client.post("/webhooks/harbour/shopify", data=body, headers=shopify_headers(body)).status_code == 202
    work()
    failed = get_queue(redis, DELIVERY_QUEUE).failed_job_registry.get_job_ids()
    assert failed, "the delivery did fail"
    # The job's own arguments hold the guest (the delivery needs the address; erasure purges
    # them); its failure reason, results and records must not.
    texts = []
    for job_id in failed:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        result = job.latest_result()
        texts += [job.exc_info or "", result.exc_string if result else ""]
    texts += [text for key, text in redis_texts(redis) if key.startswith(("connector:activity:", "connector:trace:"))]
    assert any("glu answered 400 to GET /glu/contacts" in text for text in texts)
    email = "ada.lovelace@example.com"
    leaks = [text[:300] for form in forms(email) for text in texts if form in text]
    assert not leaks, leaks[:5]
