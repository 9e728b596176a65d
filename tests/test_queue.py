"""The intake's job hash equals what RQ itself saves, and accepted jobs run on a real worker."""

from __future__ import annotations

import zlib

from connector.queue import (
    FAILURE_TTL,
    INGEST_QUEUE,
    RESULT_TTL,
    IngestJobHashes,
    accept_webhook,
    fetch_job,
    get_queue,
    retry_for,
)

ARGS = (
    {"source": "shopify", "tenant": "t", "event_type": "orders/paid", "delivery_id": "d", "received_at": "r"},
    '{"id": 1, "note": "caf\\u00e9 \\"quoted\\""}',
)


def test_built_hash_matches_rqs_own_job_hash(redis):
    queue = get_queue(redis, INGEST_QUEUE)
    schedule = (10, 60, 300)
    reference = queue.create_job(
        "connector.jobs.ingest",
        args=ARGS,
        job_id="ingest-abc",
        retry=retry_for(schedule),
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description="desc",
    )
    queue._prepare_for_queue(reference)
    expected = {k: v for k, v in reference.to_dict().items() if v is not None}
    key, fields = IngestJobHashes(queue, schedule).build("ingest-abc", ARGS, "desc")
    built = dict(zip(fields[::2], fields[1::2], strict=True))
    assert key == reference.key
    assert zlib.decompress(built.pop("data")) == zlib.decompress(expected.pop("data"))
    for stamp in ("created_at", "enqueued_at"):
        assert len(built.pop(stamp)) == len(expected.pop(stamp))
    assert built == {k: v if isinstance(v, str) else str(v) for k, v in expected.items()}


def accept(redis, delivery_id: str):
    return accept_webhook(
        redis,
        get_queue(redis, INGEST_QUEUE),
        tenant="t",
        source="shopify",
        event_type="orders/paid",
        delivery_id=delivery_id,
        job_args=ARGS,
        dedup_ttl=60,
        schedule=(10, 60),
    )


def test_accepted_job_reads_back_as_an_rq_job(redis):
    queue = get_queue(redis, INGEST_QUEUE)
    accepted = accept(redis, "d-1")
    assert accepted.status == "accepted"
    job = fetch_job(redis, accepted.job_id)
    assert job.func_name == "connector.jobs.ingest"
    assert job.args == list(ARGS)
    assert job.get_status() == "queued"
    assert job.retries_left == 2 and job.retry_intervals == [10, 60]
    assert job.result_ttl == RESULT_TTL and job.failure_ttl == FAILURE_TTL
    assert queue.job_ids == [accepted.job_id]
    again = accept(redis, "d-1")
    assert (again.status, again.job_id) == ("duplicate", accepted.job_id)
    assert queue.count == 1


def test_intake_survives_a_dropped_redis_connection(redis):
    queue = get_queue(redis, INGEST_QUEUE)

    assert accept(redis, "before").status == "accepted"
    redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")  # the server drops our connections
    assert accept(redis, "after").status == "accepted"
    redis.script_flush()  # e.g. a Redis restart forgot the script
    assert accept(redis, "reloaded").status == "accepted"
    assert accept(redis, "reloaded").status == "duplicate"
    assert queue.count == 3
