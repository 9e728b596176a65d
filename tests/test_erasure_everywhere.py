"""An erasure leaves no trace of the guest's email anywhere in Redis.

Real flows put the guest's address into every kind of job and registry (ingest, delivery and
relay jobs; queued, scheduled, started, finished and failed; failure reasons that quote the
address; the contact cache), a Social WiFi ``Delete`` then runs the erasure with two real workers
(one of them mid-job on the guest's delivery), and every key and value of Redis is scanned, job
data decompressed, for the address raw and lower-cased.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from conftest import load_fixture
from relay_helpers import VOUCHERIFY_SECRET, esp_table, voucherify_headers
from stack_helpers import redis_texts
from wifi_support import SOCIALWIFI_AUTH, purple_login, wifi_tenants_toml

from connector.activities import hash_identifier
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, RELAY_QUEUE, get_queue
from connector.web import create_app

EMAIL = "Mary.Jackson@Example.com"  # the address of the socialwifi Delete fixture, in mixed case
OTHER = "Grace.Hopper@example.com"
JSON = {"Content-Type": "application/json"}


def tenants(url: str) -> str:
    return (
        wifi_tenants_toml(url)
        + f'\n[tenants.harbour.sources.voucherify]\nsecrets = ["{VOUCHERIFY_SECRET}"]\n'
        + "[tenants.harbour.esp]\n"
        + esp_table("klaviyo", url)
        + "\n"
    )


def voucherify_event(n: int, email: str) -> bytes:
    text = load_fixture("voucherify", "customer_loyalty_tier_upgraded_v2024").decode()
    text = text.replace("evcus_0c150c51730c6b60b1", f"evcus_erasure_{n}").replace(
        "whs_0e4120a21947463292", f"whs_erasure_{n}"
    )
    body = json.loads(text)
    body["data"]["customer"]["email"] = email
    return json.dumps(body).encode()


def mentions(redis: Any, email: str) -> list[str]:
    needles = {email, email.lower()}
    return sorted({key for key, text in redis_texts(redis) if any(n in text for n in needles)})


def test_erasure_leaves_no_trace_of_the_guest_in_redis(env, sandbox, redis, work):
    client = create_app(env(tenants(sandbox.url), CONNECTOR_RETRY_SCHEDULE="3600")).test_client()
    glu = sandbox.sandboxes.glu
    klaviyo = sandbox.sandboxes.extra["klaviyo"]

    def login(venue: str, email: str = EMAIL, day: str = "2026-11-25") -> None:
        body = purple_login(email=email, venue=venue, timestamp=f"{day}T09:12:41+00:00")
        assert (
            client.post("/webhooks/harbour/purple/purple-url-token-harbour-7f3a9c", data=body, headers=JSON).status_code
            == 202
        )

    def relay(n: int, email: str = EMAIL) -> None:
        body = voucherify_event(n, email)
        assert (
            client.post("/webhooks/harbour/voucherify", data=body, headers=voucherify_headers(body)).status_code == 202
        )

    # Finished ingest, delivery and relay jobs, the contact cache; another guest's too.
    login("harbour-lobby")
    login("harbour-lobby", email=OTHER)
    relay(1)
    work()
    # A failed delivery and a failed relay whose reasons quote the address (echoed by the vendor).
    glu.faults.arm({"mode": "echo", "status": 400, "count": 1, "path": "/activities"})
    login("harbour-spa")
    klaviyo.faults.arm({"mode": "echo", "status": 400, "count": 1})
    relay(2)
    work()
    # A delivery waiting for its retry (scheduled an hour ahead).
    glu.faults.arm({"mode": "status", "status": 503, "count": 1, "path": "/activities"})
    login("harbour-bar")
    work()
    queues = {name: get_queue(redis, name) for name in (INGEST_QUEUE, DELIVERY_QUEUE, RELAY_QUEUE)}
    assert queues[DELIVERY_QUEUE].failed_job_registry.count == 1
    assert queues[RELAY_QUEUE].failed_job_registry.count == 1
    assert queues[DELIVERY_QUEUE].scheduled_job_registry.count == 1

    # A delivery mid-flight in another worker while the erasure runs.
    glu.faults.arm({"mode": "slow", "seconds": 3, "count": 1, "path": "/activities"})
    login("harbour-gym")
    busy = subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while queues[INGEST_QUEUE].started_job_registry.count == 0:  # it delivers inline (issue 16)
            assert time.monotonic() < deadline, "the slow delivery never started"
            assert busy.poll() is None, "the worker finished before the delivery started"
            time.sleep(0.05)
        # A login still queued, then the guest's erasure request.
        login("harbour-roof", day="2026-11-26")
        delete = load_fixture("socialwifi", "delete").replace(b"mary.jackson@example.com", EMAIL.encode())
        headers = {**JSON, "Authorization": SOCIALWIFI_AUTH}
        assert client.post("/webhooks/harbour/socialwifi", data=delete, headers=headers).status_code == 202
        assert mentions(redis, EMAIL)  # the guest is everywhere before the erasure
        work()
    finally:
        busy.wait(timeout=60)

    assert mentions(redis, EMAIL) == []
    assert redis.keys(f"connector:contact:harbour:*:{hash_identifier(EMAIL)}") == []
    assert redis.keys(f"connector:contact:harbour:*:{hash_identifier(OTHER)}")
    assert redis.keys(f"connector:erasure:harbour:{hash_identifier(EMAIL)}")
    assert mentions(redis, OTHER)  # the other guest's jobs are untouched
