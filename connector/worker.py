"""Running RQ workers: the long-lived ``connector worker`` and the burst variant.

Workers listen on every connector queue with the JSON serializer and the scheduler on (retries
with a delay are scheduled jobs). ``--burst`` processes everything that is due, including due
retries, and exits; ``wait_for_retries`` lets it also wait for retries due within that many
seconds (handy in tests and one-off catch-ups).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from connector import redaction
from connector.queue import QUEUE_NAMES, get_queue

log = logging.getLogger(__name__)


class RedactedFailures(BaseWorker):
    """Masks every configured secret, in any encoding, in a failed job's reason before RQ stores it
    (job hash, failed registry, result stream: what the dashboard and ``connector failures`` show)."""

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        """RQ's failure handling with the reason redacted."""
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=redact_reason(exc_string)
        )


def redact_reason(text: str) -> str:
    """A failure reason with every configured secret masked (see :mod:`connector.redaction`)."""
    from connector import jobs

    return redaction.redact(text, redaction.configured_secrets(jobs.settings())) if text else text


class ConnectorWorker(RedactedFailures, Worker):
    """RQ's forking worker that also records its work horse's pid in its Redis hash.

    RQ puts each horse in its own process group, so a worker killed with SIGKILL can leave its
    horse running the job to the end. Knowing the horse's pid lets recovery tell an orphaned
    but still working job from an abandoned one.
    """

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Fork as RQ does, then note the horse pid (only the parent returns here)."""
        super().fork_work_horse(job, queue)
        if self.horse_pid:
            self.connection.hset(self.key, "horse_pid", str(self.horse_pid))


class ConnectorSimpleWorker(RedactedFailures, SimpleWorker):
    """RQ's in-process worker (no fork per job): faster for short jobs, no crash isolation."""


WORKER_CLASSES: dict[str, type[BaseWorker]] = {"fork": ConnectorWorker, "simple": ConnectorSimpleWorker}


def build_worker(redis: Redis, worker_class: type[BaseWorker] = ConnectorWorker) -> BaseWorker:
    """A worker on every connector queue (ingest first, so translation keeps up)."""
    queues = [get_queue(redis, name) for name in QUEUE_NAMES]
    return worker_class(queues, connection=redis, serializer=JSONSerializer)


def next_scheduled(redis: Redis) -> float | None:
    """Seconds until the earliest scheduled job (negative when overdue), or ``None``."""
    earliest: float | None = None
    for name in QUEUE_NAMES:
        registry = get_queue(redis, name).scheduled_job_registry
        for entry in redis.zrange(registry.key, 0, 0, withscores=True):
            value = float(entry[1])
            earliest = value if earliest is None else min(earliest, value)
    if earliest is None:
        return None
    return earliest - datetime.now(UTC).timestamp()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _worker_is_dead(redis: Redis, worker_name: str) -> bool:
    """True when the named worker and its horse are certainly gone (unregistered, or dead pids here)."""
    if not worker_name:
        return False
    data = redis.hgetall(f"rq:worker:{worker_name}")
    if not data:
        return True
    hostname = _text(data.get(b"hostname", b""))
    if hostname != socket.gethostname():
        return False  # another machine: leave it to RQ's heartbeat expiry
    pid = int(data.get(b"pid", b"0") or 0)
    horse = int(data.get(b"horse_pid", b"0") or 0)
    return pid > 0 and not _alive(pid) and not _alive(horse)


def recover_abandoned_jobs(redis: Redis) -> int:
    """Hand jobs of workers that died mid-job (SIGKILL, OOM) back to RQ's own recovery.

    RQ notices an abandoned job only when its started-registry entry expires (about 90 s) and a
    worker runs maintenance (up to 10 min later). A worker killed on this host is known dead at
    once, so its entries are marked expired and RQ's cleanup retries them (or fails them when
    no attempt is left). Delivery is idempotent, so running the job again posts nothing twice.
    """
    recovered = 0
    for name in QUEUE_NAMES:
        registry = get_queue(redis, name).started_job_registry
        for raw in redis.zrange(registry.key, 0, -1):
            entry = raw.decode() if isinstance(raw, bytes) else str(raw)
            job_id = registry.parse_job_id(entry)
            # The execution record is written with the registry entry; the job hash may lag it.
            worker_name = _text(
                redis.hget(f"rq:execution:{entry}", "worker_name")
                or redis.hget(f"rq:job:{job_id}", "worker_name")
                or b""
            )
            if _worker_is_dead(redis, worker_name):
                redis.zadd(registry.key, {entry: 0}, xx=True)
                recovered += 1
        if recovered:
            registry.cleanup(timestamp=0)
    if recovered:
        log.warning("recovered %d job(s) abandoned by dead workers", recovered)
    return recovered


def preload() -> None:
    """Import the job code and read the settings once, before RQ forks a horse per job.

    Heavy imports after the fork are what make forking workers slow (RQ's docs); done here,
    every horse inherits them. A configuration error also stops the worker at start.
    """
    from connector import jobs

    redaction.install_log_redaction(redaction.configured_secrets(jobs.settings()))


def run_worker(
    redis: Redis,
    *,
    burst: bool = False,
    wait_for_retries: float = 0.0,
    worker_class: type[BaseWorker] = ConnectorWorker,
    logging_level: str = "INFO",
) -> None:
    """Work the queues; in burst mode keep going while retries fall due within the wait."""
    recover_abandoned_jobs(redis)
    preload()
    if not burst:
        build_worker(redis, worker_class).work(with_scheduler=True, logging_level=logging_level)
        return
    deadline = time.monotonic() + wait_for_retries
    while True:
        build_worker(redis, worker_class).work(burst=True, with_scheduler=True, logging_level=logging_level)
        due_in = next_scheduled(redis)
        if due_in is None:
            return
        if due_in > 0:
            if time.monotonic() + due_in > deadline:
                return
            time.sleep(due_in + 0.05)
        # Burst workers enqueue due scheduled jobs when they start; the loop starts another.
