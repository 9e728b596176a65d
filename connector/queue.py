"""Redis connection, queues, deterministic job ids, transport dedup and the one retry policy.

* Webhook intake is one atomic Redis script: the dedup marker and the ingest job are written
  together or not at all, in one round trip, so a 2xx always means a durable job and a failure
  never leaves a marker that would swallow the sender's retry.
* Delivery jobs get an id derived from (tenant, destination, activity type, business key) and
  are enqueued ``unique``, so the same activity is never queued twice at once.
* Retries: RQ's ``Retry`` carries the attempt budget; :func:`apply_retry_policy` picks each
  wait from ``CONNECTOR_RETRY_SCHEDULE`` plus jitter, never shorter than the server's
  ``Retry-After``, and makes fatal errors skip the remaining attempts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, get_current_job
from rq.serializers import JSONSerializer

from connector import metrics
from connector.errors import FatalDestinationError, PayloadError, RetriableDestinationError

log = logging.getLogger(__name__)

INGEST_QUEUE = "ingest"
DELIVERY_QUEUE = "delivery"
RELAY_QUEUE = "relay"
QUEUE_NAMES = (INGEST_QUEUE, DELIVERY_QUEUE, RELAY_QUEUE)

RESULT_TTL = 7 * 24 * 3600  # keeps unique delivery ids reserved for a week after success
FAILURE_TTL = 90 * 24 * 3600
JOB_TIMEOUT = 120

P = ParamSpec("P")
R = TypeVar("R")


def connect(url: str, *, for_web: bool = False) -> Redis:
    """A Redis client; the web tier uses short timeouts so an outage answers 503 quickly."""
    if for_web:
        return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30)
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)


def get_queue(redis: Redis, name: str) -> Queue:
    """A queue with the JSON serializer (every reader, the dashboard included, must agree)."""
    return Queue(name, connection=redis, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT)


def make_job_id(kind: str, *parts: str) -> str:
    """Deterministic RQ job id (RQ allows letters, digits, '-' and '_' only)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{kind}-{digest}"


def retry_for(schedule: Sequence[int]) -> Retry:
    """RQ retry budget: one attempt per schedule entry (waits are set per attempt)."""
    return Retry(max=len(schedule), interval=list(schedule))


@dataclass(frozen=True)
class Acceptance:
    """Outcome of :func:`accept_webhook`."""

    status: str  # "accepted" | "duplicate"
    job_id: str


def dedup_key(tenant: str, source: str, event_type: str, delivery_id: str) -> str:
    """Redis key of a transport delivery marker."""
    digest = hashlib.sha256(f"{event_type}\x1f{delivery_id}".encode()).hexdigest()[:40]
    return f"connector:seen:{tenant}:{source}:{digest}"


# One round trip, atomic: the delivery marker, the job hash, the queue push and the counter are
# written together or not at all (Lua scripts run atomically and are persisted as a unit).
ACCEPT_SCRIPT = """
-- KEYS: 1 marker, 2 job hash, 3 queue list, 4 set of queues, 5 counters hash
-- ARGV: 1 job id, 2 dedup ttl, 3 accepted counter field, 4 duplicate counter field, 5.. job hash fields
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "EX", ARGV[2]) then
    redis.call("HINCRBY", KEYS[5], ARGV[4], 1)
    return redis.call("GET", KEYS[1])
end
redis.call("HSET", KEYS[2], unpack(ARGV, 5))
redis.call("RPUSH", KEYS[3], ARGV[1])
redis.call("SADD", KEYS[4], KEYS[3])
redis.call("HINCRBY", KEYS[5], ARGV[3], 1)
return false
"""


def _job_fields(job: Job) -> list[Any]:
    """The job hash as HSET arguments, exactly as RQ saves it."""
    fields: list[Any] = []
    for key, value in job.to_dict().items():
        if value is not None:
            fields += [key, value if isinstance(value, bytes | str) else str(value)]
    return fields


def accept_webhook(
    redis: Redis,
    queue: Queue,
    *,
    tenant: str,
    source: str,
    event_type: str,
    delivery_id: str,
    job_args: tuple[Any, ...],
    dedup_ttl: int,
    schedule: Sequence[int],
) -> Acceptance:
    """Atomically record the delivery id and enqueue its ingest job, unless already seen.

    Raises:
        redis.exceptions.RedisError: Redis is unreachable; nothing was written.
    """
    key = dedup_key(tenant, source, event_type, delivery_id)
    job_id = make_job_id("ingest", tenant, source, event_type, delivery_id)
    job = queue.create_job(
        "connector.jobs.ingest",
        args=job_args,
        job_id=job_id,
        retry=retry_for(schedule),
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description=f"ingest {source} {event_type} for {tenant}",
    )
    queue._prepare_for_queue(job)  # origin, enqueued_at, timeout, status: what RQ's enqueue sets
    script = _accept_scripts.get(id(redis))
    if script is None:
        script = _accept_scripts[id(redis)] = redis.register_script(ACCEPT_SCRIPT)
    existing = script(
        keys=[key, job.key, queue.key, queue.redis_queues_keys, metrics.COUNTERS_KEY],
        args=[
            job_id,
            dedup_ttl,
            metrics.field_name("webhooks", tenant=tenant, source=source, outcome="accepted"),
            metrics.field_name("webhooks", tenant=tenant, source=source, outcome="duplicate"),
            *_job_fields(job),
        ],
    )
    if existing is not None:
        return Acceptance("duplicate", existing.decode() if isinstance(existing, bytes) else str(existing))
    return Acceptance("accepted", job_id)


_accept_scripts: dict[int, Any] = {}


def enqueue_unique(
    queue: Queue,
    func: str,
    *,
    job_id: str,
    args: tuple[Any, ...],
    schedule: Sequence[int],
    description: str,
) -> bool:
    """Enqueue with a deterministic id; ``False`` when that job already exists."""
    try:
        queue.enqueue(
            func,
            args=args,
            job_id=job_id,
            unique=True,
            retry=retry_for(schedule),
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            description=description,
        )
    except DuplicateJobError:
        return False
    return True


def next_delay(
    schedule: Sequence[int],
    attempt: int,
    retry_after: float | None,
    rng: Callable[[], float] = random.random,
) -> int:
    """Seconds before attempt ``attempt + 1``: schedule entry + up to 10% jitter, >= Retry-After."""
    base = schedule[min(attempt, len(schedule) - 1)]
    delay = base + base * 0.1 * rng()
    if retry_after is not None:
        # RQ schedules on whole seconds (truncating), so add one to never run before Retry-After.
        delay = max(delay, math.ceil(retry_after) + 1)
    return round(delay) if delay >= 1 or delay == 0 else 1


def apply_retry_policy(schedule_source: Callable[[], Sequence[int]]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an RQ job function with the connector's retry policy.

    Retriable errors reschedule the job after :func:`next_delay`; fatal errors (and payload
    errors, which no retry can fix) use up the remaining attempts so the job lands in the
    failed registry at once, with the reason as its exception.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except RetriableDestinationError as exc:
                job = get_current_job()
                if job is not None and job.retries_left:
                    schedule = schedule_source()
                    attempt = max(len(schedule) - job.retries_left, 0)
                    delay = next_delay(schedule, attempt, exc.retry_after)
                    job.retry_intervals = [delay]
                    log.warning("job %s: retriable failure, next attempt in %ss: %s", job.id, delay, exc)
                raise
            except (FatalDestinationError, PayloadError):
                job = get_current_job()
                if job is not None:
                    job.retries_left = 0
                raise

        return wrapper

    return decorate


def fetch_job(redis: Redis, job_id: str) -> Job:
    """Fetch a job with the JSON serializer."""
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
