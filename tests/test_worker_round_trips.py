"""Redis round trips per job, counted on the wire, and the completion transaction (issue 16).

Every round trip is one ``send_packed_command`` call of a connection (a pipeline is one): the
counter wraps it for this process and, through a file every process appends to, for fork horses.
Stock RQ's workers are counted the same way as the anchor (about 18 per no-op job for its simple
worker, 24 for its forking one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.connection
from redis import Redis
from rq import Queue, SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from connector import completion
from connector.queue import DELIVERY_QUEUE, get_queue
from connector.worker import WORKER_CLASSES, build_worker

HANDSHAKE = {b"HELLO", b"PING", b"CLIENT", b"AUTH", b"SELECT"}  # a new connection's set-up


def _names(packed: Any) -> list[bytes]:
    """The command names in one packed send (RESP arrays of bulk strings)."""
    chunks = [packed] if isinstance(packed, bytes | str | memoryview) else list(packed)
    data = b"".join(bytes(c) if not isinstance(c, str) else c.encode() for c in chunks)
    names, at = [], 0
    while at < len(data) and data[at : at + 1] == b"*":
        end = data.index(b"\r\n", at)
        count, at = int(data[at + 1 : end]), end + 2
        for index in range(count):
            end = data.index(b"\r\n", at)
            size = int(data[at + 1 : end])
            value, at = data[end + 2 : end + 2 + size], end + 2 + size + 2
            if index == 0:
                names.append(value.upper())
    return names


class Wire:
    """Round trips of every process of the test (horses included), one line each: pid and names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def note(self, packed: Any) -> None:
        os.write(self.fd, f"{os.getpid()} {b' '.join(_names(packed)).decode()}\n".encode())

    def trips(self) -> list[list[str]]:
        return [line.split()[1:] for line in self.path.read_text().splitlines()]

    def mark(self) -> int:
        return len(self.path.read_text().splitlines())


@pytest.fixture
def wire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    recorder = Wire(tmp_path / "wire")
    original = redis.connection.AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        recorder.note(command)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
    yield recorder
    os.close(recorder.fd)


def _per_job(wire: Wire, run: Any, jobs: int) -> float:
    """Round trips per job, set-up of new connections left out: a burst run of ``jobs`` no-op
    jobs minus a run of none (a worker's start and end)."""

    def measured(count: int) -> int:
        work = run(count)  # the jobs enqueued, before counting
        start = wire.mark()
        work()
        return sum(1 for names in wire.trips()[start:] if not set(names) <= {n.decode() for n in HANDSHAKE})

    return (measured(jobs) - measured(0)) / jobs


def _connector_run(redis: Redis, kind: str, **options: Any) -> Any:
    def run(count: int) -> Any:
        redis.flushdb()
        queue = get_queue(redis, DELIVERY_QUEUE)
        for _ in range(count):
            queue.enqueue("os.getpid", **options)
        return lambda: build_worker(redis, WORKER_CLASSES[kind]).work(burst=True, logging_level="ERROR")

    return run


def test_a_no_op_job_costs_three_round_trips_in_the_simple_worker_stock_rq_eighteen(redis, wire):
    def stock(count: int) -> Any:
        redis.flushdb()
        queue = Queue("default", connection=redis, serializer=JSONSerializer)
        for _ in range(count):
            queue.enqueue("os.getpid")
        worker = SimpleWorker([queue], connection=redis, serializer=JSONSerializer)
        return lambda: worker.work(burst=True, logging_level="ERROR")

    assert _per_job(wire, stock, 20) >= 15  # the anchor: the counter sees RQ's bookkeeping
    # Claim + read, start, completion (issue 16; 14 before it).
    assert _per_job(wire, _connector_run(redis, "simple"), 20) <= 3.25


def test_a_no_op_job_costs_four_round_trips_in_the_fork_worker_besides_the_horses_connection(redis, wire):
    # Worker: claim + read, start, the horse's pid; horse: completion (21 before issue 16, RQ 24).
    assert _per_job(wire, _connector_run(redis, "fork"), 10) <= 4.25


def defer_a_write(key: str, fail: bool) -> str:
    """A job that defers a write to its completion (as the ledger does), then fails or not."""
    job = get_current_job()
    assert job is not None
    completion.defer(job.connection, lambda pipe: pipe.append(key, "written"))  # APPEND: no RQ call uses it
    if fail:
        raise ValueError("failed after deferring its write")
    return "done"


@pytest.mark.parametrize("kind", ["simple", "fork"])
@pytest.mark.parametrize("fail", [False, True])
def test_a_deferred_write_goes_in_the_jobs_completion_transaction(kind, fail, settings, redis, wire):
    queue = get_queue(redis, DELIVERY_QUEUE)
    job = queue.enqueue(f"{__name__}.defer_a_write", "connector:test:deferred", fail)
    start = wire.mark()
    build_worker(redis, WORKER_CLASSES[kind]).work(burst=True, logging_level="ERROR")
    assert redis.get("connector:test:deferred") == b"written"
    assert job.get_status(refresh=True) == ("failed" if fail else "finished")
    # The write went in the same MULTI/EXEC as the job's outcome, no round trip of its own.
    outcome = "HINCRBY"  # the worker's successful / failed job count
    trips = [names for names in wire.trips()[start:] if "APPEND" in names]
    assert len(trips) == 1 and trips[0][0] == "MULTI" and outcome in trips[0] and "ZREM" in trips[0], trips


@pytest.mark.parametrize("kind", ["simple", "fork"])
def test_a_job_whose_result_is_not_kept_leaves_nothing_behind_in_the_same_round_trips(kind, redis, wire):
    queue = get_queue(redis, DELIVERY_QUEUE)
    job = queue.enqueue("os.getpid", result_ttl=0)
    build_worker(redis, WORKER_CLASSES[kind]).work(burst=True, logging_level="ERROR")
    assert redis.keys(f"*{job.id}*") == []  # hash, executions, results: all gone
    assert queue.finished_job_registry.get_job_ids() == []
    assert queue.started_job_registry.get_job_ids(cleanup=False) == []
    # RQ's own Job.delete would read the job's status and executions first (two more).
    assert _per_job(wire, _connector_run(redis, kind, result_ttl=0), 10) <= (3.25 if kind == "simple" else 4.25)
