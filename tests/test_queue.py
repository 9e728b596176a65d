"""The intake's job hash equals what RQ's own public `Queue.enqueue` saves, and accepted jobs run on a real worker."""

from __future__ import annotations

import json
import os
import re
import zlib

from connector.queue import (
    FAILURE_TTL,
    INGEST_QUEUE,
    accept_webhook,
    fetch_job,
    finished_job_ttl,
    get_queue,
    make_job_id,
)
from connector.retry import retry_for

ARGS = (
    {"source": "shopify", "tenant": "t", "event_type": "orders/paid", "delivery_id": "d", "received_at": "r"},
    '{"id": 1, "note": "caf\\u00e9 \\"quoted\\""}',
)


def rq_saved_job_hash(redis, queue, schedule, job_id, description):
    """The ingest job's Redis hash as RQ's own public ``Queue.enqueue`` saves it (then removed
    again, so that the intake can write its own under the same id)."""
    reference = queue.enqueue(
        "connector.jobs.ingest",
        args=ARGS,
        job_id=job_id,
        retry=retry_for(schedule),
        result_ttl=finished_job_ttl(),  # issue 16: the finished-job retention (default 0)
        failure_ttl=FAILURE_TTL,
        description=description,
    )
    assert queue.job_ids == [job_id]
    saved = {k.decode(): v if k == b"data" else v.decode() for k, v in redis.hgetall(reference.key).items()}
    reference.delete()
    assert not redis.exists(reference.key) and queue.count == 0
    return saved


TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


def test_intake_writes_the_job_hash_rq_would_have_saved(redis):
    queue = get_queue(redis, INGEST_QUEUE)
    job_id = make_job_id("ingest", "t", "shopify", "orders/paid", "d-packed")
    expected = rq_saved_job_hash(redis, queue, (10, 60), job_id, "ingest shopify orders/paid for t")
    accepted = accept(redis, "d-packed")
    assert (accepted.status, accepted.job_id) == ("accepted", job_id)
    assert queue.job_ids == [job_id]
    stored = {
        k.decode(): v if k == b"data" else v.decode() for k, v in redis.hgetall(queue.job_class.key_for(job_id)).items()
    }
    # Every field RQ saves with a value is there with the same value; only the empty ones RQ
    # writes (and reads back exactly like absent ones) are left out.
    expected = {k: v for k, v in expected.items() if v not in ("", b"")}
    assert set(stored) == set(expected)
    for stamp in ("created_at", "enqueued_at"):
        assert re.fullmatch(TIMESTAMP, stored.pop(stamp)) and re.fullmatch(TIMESTAMP, expected.pop(stamp))
    assert json.loads(zlib.decompress(stored.pop("data"))) == json.loads(zlib.decompress(expected.pop("data")))
    assert stored == expected
    restored = fetch_job(redis, accepted.job_id)
    assert (restored.func_name, restored.args, restored.kwargs) == ("connector.jobs.ingest", list(ARGS), {})
    assert restored.get_status() == "queued" and restored.origin == INGEST_QUEUE


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
    assert job.result_ttl == finished_job_ttl() and job.failure_ttl == FAILURE_TTL
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


def test_a_forked_web_worker_does_not_share_its_parents_intake_connection(redis):
    from connector.queue import _held_connection

    assert accept(redis, "parent-before").status == "accepted"
    parent_connection = _held_connection(redis)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        ok = _held_connection(redis) is not parent_connection and accept(redis, "child").status == "accepted"
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert _held_connection(redis) is parent_connection  # the parent keeps its own
    assert accept(redis, "parent-after").status == "accepted"
    assert get_queue(redis, INGEST_QUEUE).count == 3


def test_job_data_that_orjson_cannot_encode_falls_back_to_the_standard_library():
    from connector.queue import serialize_job_data

    job_tuple = ["connector.jobs.ingest", None, [{"n": 2**70}, {1: "non-string key"}], {}]
    assert json.loads(serialize_job_data(job_tuple)) == json.loads(json.dumps(job_tuple))


def test_embedded_redis_serves_the_intake_over_its_unix_socket(tmp_path):
    from connector.embedded_redis import EmbeddedRedis
    from connector.queue import connect

    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    try:
        assert server.local_url.startswith("unix://") and server.local_url.endswith("redis.sock?db=0")
        local = connect(server.local_url, for_web=True)
        accepted = accept(local, "over-the-socket")
        assert accepted.status == "accepted"
        # The same server over TCP sees the job the socket wrote.
        assert fetch_job(connect(server.url), accepted.job_id).args == list(ARGS)
    finally:
        server.stop()


def test_embedded_redis_falls_back_to_tcp_when_the_socket_path_is_too_long(tmp_path):
    from connector.embedded_redis import EmbeddedRedis

    deep = tmp_path / ("d" * 120)
    server = EmbeddedRedis(deep)
    assert server.socket_path is None and server.local_url == server.url


def test_intake_answers_again_after_a_redis_outage(env, tmp_path):
    """A Redis outage longer than the pool's cap of reconnects must not leave the intake at 503."""
    from conftest import load_fixture, shopify_headers

    from connector.embedded_redis import EmbeddedRedis
    from connector.web import create_app

    server = EmbeddedRedis(tmp_path / "outage", appendonly=False).start()
    try:
        # A small cap makes the leak show in a few requests (redis-py's default cap is 100).
        client = create_app(env(REDIS_URL=f"{server.url}?max_connections=8")).test_client()
        body = load_fixture("shopify", "orders_paid")

        def post(delivery: str) -> int:
            headers = shopify_headers(body, webhook_id=delivery)
            return int(client.post("/webhooks/harbour/shopify", data=body, headers=headers).status_code)

        assert post("before") == 202
        server.stop()
        assert {post(f"during-{n}") for n in range(30)} == {503}
        server.start()  # the same port, as after a restart
        assert client.get("/readyz").status_code == 200
        assert [post(f"after-{n}") for n in range(30)] == [202] * 30
    finally:
        server.stop()


def test_intake_threads_that_come_and_go_give_their_connection_back(redis_url):
    """A server that runs each request on a new thread must not use up the pool either."""
    import threading

    from connector.queue import connect

    client = connect(f"{redis_url}?max_connections=4", for_web=True)
    client.flushdb()
    outcomes: list[str] = []
    for n in range(12):
        thread = threading.Thread(target=lambda n=n: outcomes.append(accept(client, f"thread-{n}").status))
        thread.start()
        thread.join()
    assert outcomes == ["accepted"] * 12
    assert client.connection_pool._created_connections <= 2  # the intake's one and the flush's


def test_a_new_connection_names_itself_without_looking_its_version_up(redis_url, monkeypatch):
    """Every connection sends CLIENT SETINFO as redis-py's default does, with the version read
    once: redis-py's own lookup (package metadata) cost each forked horse a millisecond a connection."""
    import redis as redis_package
    import redis.utils

    from connector.queue import connect

    def no_lookup(*_: object) -> str:
        raise AssertionError("a connection looked redis-py's version up in the package metadata")

    monkeypatch.setattr(redis.utils.metadata, "version", no_lookup)
    client = connect(redis_url)
    connection = client.connection_pool.get_connection()
    assert connection.driver_info.formatted_name == "redis-py"
    assert connection.driver_info.lib_version == redis_package.__version__
    client.connection_pool.release(connection)
    assert client.ping()
    client.close()
