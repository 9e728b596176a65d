"""What a webhook costs in Redis (issue 16): bytes kept per finished and per pending webhook,
and the connector's own round trips per webhook, measured on a real Redis through the real
intake, a real RQ worker and the Glu sandbox over HTTP.

Bytes are ``MEMORY USAGE`` summed over every key (SCAN) after a warm-up (the shared keys: the
counters, the queues' registries, a worker's own keys), so the difference divided by the number
of webhooks is what each one leaves behind: dedup marker, ledger record, activity records, trace
indexes, contact cache, job hashes, results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import load_fixture, shopify_headers
from redis import Redis
from redis.connection import Connection

from connector import activity_log, completion, jobs
from connector.queue import INGEST_QUEUE, fetch_job, get_queue
from connector.settings import Settings
from connector.web import create_app

FINISHED_BYTES_LIMIT = 3 * 1024
PENDING_BYTES_LIMIT = 4 * 1024
CONNECTOR_ROUND_TRIPS = 2  # the ledger/claim look-up, the completion pipeline (see the test)
ORDER = json.loads(load_fixture("shopify", "orders_paid"))


def redis_bytes(redis: Redis) -> tuple[int, dict[str, int]]:
    """Every key's ``MEMORY USAGE`` summed, and per kind of key (its name without ids)."""
    total = 0
    kinds: dict[str, int] = {}
    for key in redis.scan_iter(count=1000):
        size = int(redis.memory_usage(key, samples=0) or 0)
        total += size
        name = key.decode()
        parts = name.split(":")
        if name.startswith("connector:trace:find:"):
            parts = parts[:3]  # the shared trace indexes, together
        kind = ":".join(part if len(part) < 20 and not part.isdigit() else "*" for part in parts[:4])
        kinds[kind] = kinds.get(kind, 0) + size
    return total, kinds


def order_body(number: int, *, size: int | None = None) -> bytes:
    """A signed-ready ``orders/paid`` body of a new order and guest (``size``: padded to that many bytes)."""
    order = json.loads(json.dumps(ORDER))
    email = f"guest{number}@example.com"
    order.update(id=7_000_000 + number, email=email, contact_email=email)
    order["customer"].update(id=90_000 + number, email=email)
    if size is not None:  # only what the translation needs, then a note up to ``size`` bytes
        keep = ("id", "email", "contact_email", "created_at", "processed_at", "currency", "total_price", "customer")
        order = {key: order[key] for key in keep if key in order}
        order["note"] = ""
        order["note"] = "x" * max(size - len(json.dumps(order)), 0)
    return json.dumps(order).encode()


def post(client: Any, body: bytes, number: int) -> str:
    answer = client.post(
        "/webhooks/harbour/shopify", data=body, headers=shopify_headers(body, webhook_id=f"footprint-{number}")
    )
    assert answer.status_code == 202, answer.json
    job: str = answer.json["job"]
    return job


@pytest.fixture
def defaults(env: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test settings with the default finished-job retention (the suite keeps results for its reads)."""
    settings = env()
    monkeypatch.delenv("CONNECTOR_FINISHED_JOB_RETENTION", raising=False)
    return settings


def test_a_finished_webhook_keeps_at_most_3_kb_and_a_pending_one_4_kb(defaults, sandbox, redis, work, capsys):
    client = create_app(defaults).test_client()
    for number in range(3):  # warm-up: the shared keys exist from here on
        post(client, order_body(number), number)
    work()
    # At steady state every shared trace index exists (thousands of webhooks fill them): their own
    # cost is not this webhook's, the members it adds are.
    with redis.pipeline(transaction=False) as pipe:
        for bucket in range(16**activity_log.FIND_BUCKET_CHARS):
            pipe.zadd(f"connector:trace:find:{bucket:03x}", {"0" * 16 + "|steady-state": 0})
        pipe.execute()
    before, kinds_before = redis_bytes(redis)
    webhooks = 40
    for number in range(100, 100 + webhooks):
        post(client, order_body(number), number)
    work()
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 3 + webhooks
    after, kinds_after = redis_bytes(redis)
    finished = (after - before) / webhooks
    with capsys.disabled():
        print(f"\nRedis bytes kept per finished webhook: {finished:.0f}")
        for kind in sorted(kinds_after, key=lambda k: kinds_after[k] - kinds_before.get(k, 0), reverse=True):
            grown = (kinds_after[kind] - kinds_before.get(kind, 0)) / webhooks
            if grown:
                print(f"  {kind:<40} {grown:8.0f}")
    assert finished <= FINISHED_BYTES_LIMIT

    for number in range(200, 200 + webhooks):  # accepted, not worked yet: 1 KB bodies
        post(client, order_body(number, size=1024), number)
    pending = (redis_bytes(redis)[0] - after) / webhooks
    with capsys.disabled():
        print(f"Redis bytes per pending webhook (1 KB body): {pending:.0f}")
    assert get_queue(redis, INGEST_QUEUE).count == webhooks
    assert pending <= PENDING_BYTES_LIMIT


def test_a_finished_webhook_leaves_no_job_behind_by_default(defaults, sandbox, redis, work):
    client = create_app(defaults).test_client()
    job_id = post(client, order_body(1), 1)
    work()
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 1
    assert list(redis.scan_iter("rq:job:*")) == [] and list(redis.scan_iter("rq:results:*")) == []
    assert not redis.exists(f"rq:job:{job_id}")


def test_a_finished_job_is_kept_as_long_as_configured(env, sandbox, redis, work):
    settings = env(CONNECTOR_FINISHED_JOB_RETENTION="120")
    client = create_app(settings).test_client()
    job_id = post(client, order_body(1), 1)
    work()
    assert 0 < redis.ttl(f"rq:job:{job_id}") <= 120
    assert fetch_job(redis, job_id).return_value()["status"] == "translated"


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """Every round trip to Redis in this process (a pipeline is one), by its first command."""
    sent: list[str] = []
    original = Connection.send_packed_command
    # Connection inherits the method: restoring must delete the patch, not set the inherited
    # function on Connection (which would hide every later patch of AbstractConnection).
    own = "send_packed_command" in vars(Connection)

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        first = command[0] if isinstance(command, list | tuple) else command
        sent.append(bytes(first)[:60].decode(errors="replace"))
        original(self, command, check_health)

    Connection.send_packed_command = counted  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        if own:
            Connection.send_packed_command = original  # type: ignore[method-assign]
        else:
            del Connection.send_packed_command


def run_as_a_worker_does(redis: Redis, job_id: str) -> None:
    """The job's function as a worker runs it: the current job set, its deferred writes sent in
    one pipeline afterwards (the worker sends them with the job's outcome)."""
    job = fetch_job(redis, job_id)
    with completion.collecting() as writes:
        job.perform()
    completion.flush(jobs.redis(), writes)


def test_an_order_costs_the_connector_two_redis_round_trips(settings, sandbox, redis):
    client = create_app(settings).test_client()
    first = post(client, order_body(1), 1)
    run_as_a_worker_does(redis, first)  # this guest's contact is now known to this process
    second_body = json.loads(order_body(1))
    second_body["id"] = 7_100_001  # the same guest's next order
    second = post(client, json.dumps(second_body).encode(), 2)
    jobs.redis().ping()  # connected before counting
    job = fetch_job(redis, second)
    with round_trips() as sent:
        with completion.collecting() as writes:
            job.perform()
        completion.flush(jobs.redis(), writes)
    assert len(sandbox.sandboxes.glu.state()["activities"]) == 2
    sent = [command for command in sent if "PERSIST" not in command]  # RQ's own, in Job.perform
    # 1: ledger look-up + inline claim + "does the delivery job exist" (one pipeline);
    # 2: ledger write, counters, both activity records, trace indexes, claim release (the completion
    #    round trip). The contact comes from this process's memory, the tenant from the settings.
    assert len(sent) == CONNECTOR_ROUND_TRIPS, sent
