"""Redis connection, queues, deterministic job ids and the intake's atomic dedup + enqueue.

The retry policy every job follows is :mod:`connector.retry`; the delivery ledger :mod:`connector.ledger`.

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

import contextlib
import hashlib
import json
import logging
import os
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson
from redis import ConnectionPool, Redis
from redis import __version__ as redis_version
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import Sentinel, SentinelManagedConnection
from rq import Queue
from rq.exceptions import DeserializationError, DuplicateJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from connector import metrics
from connector.redis_url import is_sentinel_url, parse_sentinel_url
from connector.retry import retry_for

log = logging.getLogger(__name__)

INGEST_QUEUE = "ingest"
DELIVERY_QUEUE = "delivery"
RELAY_QUEUE = "relay"
# The connection-check queue, worked before the others.
CHECK_QUEUE = "check"
"""The merchant pages' "Test connection" jobs: one short call each, never behind a backlog."""
CHECK_FUNC = "connector.connection_check.check"
QUEUE_NAMES = (CHECK_QUEUE, INGEST_QUEUE, DELIVERY_QUEUE, RELAY_QUEUE)  # the check queue first

RESULT_TTL = 7 * 24 * 3600  # the jobs whose result is read (reconciliations keep their id for a period)
FAILURE_TTL = 90 * 24 * 3600
# -- issue 16 jobs: finished webhook jobs keep no result nothing reads --
FINISHED_JOB_RETENTION_ENV = "CONNECTOR_FINISHED_JOB_RETENTION"
DEFAULT_FINISHED_JOB_RETENTION = 0
MAX_FINISHED_JOB_RETENTION = RESULT_TTL


def finished_job_ttl() -> int:
    """Seconds a finished ingest, delivery or relay job (its hash and result) is kept:
    ``CONNECTOR_FINISHED_JOB_RETENTION`` (0 to 604800; the settings refuse anything else at
    start-up), default 0: deleted once it succeeded. Nothing reads those results: the Activity
    page and ``connector trace`` read the activity records, the ledger makes reruns safe, and a
    failed job keeps its reason for FAILURE_TTL whatever this says. Set it to see finished jobs
    in rq-dashboard (each costs about 5 KB of Redis while kept)."""
    raw = os.environ.get(FINISHED_JOB_RETENTION_ENV, "").strip()
    if raw.isdigit() and int(raw) <= MAX_FINISHED_JOB_RETENTION:
        return int(raw)
    return DEFAULT_FINISHED_JOB_RETENTION


# -- end issue 16 jobs --
JOB_TIMEOUT = 120


# -- issue 15 deploy: Redis Sentinel (REDIS_URL may be redis+sentinel://, see connector.redis_url) --
class _PrimaryConnection(SentinelManagedConnection):
    """A connection to the set's primary that asks the sentinels again on *every* reconnect.

    redis-py's ``send_packed_command`` reconnects a dropped connection with
    ``connect_check_health``, which skips ``SentinelManagedConnection.connect`` (the only place
    that asks the sentinels): after a failover a reused connection (the intake's held one, a
    client's retry) went back to the demoted primary and met READONLY again, measured with a
    real ``SENTINEL FAILOVER`` (redis-py 8.1). Connecting here goes through the sentinels.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Send, first (re)connecting through the sentinels when the socket is closed."""
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call]  # redis.sentinel is unannotated
        super().send_packed_command(command, check_health=check_health)  # type: ignore[no-untyped-call]


DRIVER_INFO = DriverInfo(lib_version=redis_version)
"""What every connection names itself with (``CLIENT SETINFO``, as redis-py's default), built
once: left to redis-py, each new connection looks its own version up in the installed packages'
metadata, about a millisecond, which every forked work horse paid for each of its connections."""


def connect(url: str, *, for_web: bool = False) -> Redis:
    """A Redis client; the web tier uses short timeouts so an outage answers 503 quickly.

    A ``redis+sentinel://`` URL gives a client of the set's current primary
    (``Sentinel(...).master_for``): every (re)connect asks the sentinels where the primary is,
    and a demoted primary's READONLY answer drops the connection, so the client follows a
    failover; while there is no primary, calls raise ``ConnectionError`` (the intake's 503).
    """
    timeouts: dict[str, Any] = (
        {"socket_connect_timeout": 1, "socket_timeout": 2}
        if for_web
        else {"socket_connect_timeout": 5, "socket_timeout": 30}
    )
    if not is_sentinel_url(url):
        return Redis.from_url(url, health_check_interval=30, driver_info=DRIVER_INFO, **timeouts)
    target = parse_sentinel_url(url)
    sentinel_options: dict[str, Any] = {**timeouts, "socket_timeout": timeouts["socket_connect_timeout"]}
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call, unused-ignore]
    primary: Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]  # redis.sentinel is unannotated before redis 8.2
        target.service_name,
        redis_class=Redis,
        connection_class=_PrimaryConnection,
        db=target.db,
        username=target.username,
        password=target.password,
        health_check_interval=30,
        driver_info=DRIVER_INFO,
        **timeouts,
    )
    return primary


# -- end issue 15 deploy --


def get_queue(redis: Redis, name: str) -> Queue:
    """A queue with the JSON serializer (every reader, the dashboard included, must agree)."""
    return Queue(name, connection=redis, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT)


def make_job_id(kind: str, *parts: str) -> str:
    """Deterministic RQ job id (RQ allows letters, digits, '-' and '_' only)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{kind}-{digest}"


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
-- KEYS: 1 marker, 2 job hash, 3 queue list, 4 set of queues, 5 counters hash,
--       6.. further markers of the same event (e.g. Shopify's event id), optional
-- ARGV: 1 job id, 2 dedup ttl, 3 accepted counter field, 4 duplicate counter field,
--       5.. the job hash as field, value, field, value...
for i = 6, #KEYS do
    local seen = redis.call("GET", KEYS[i])
    if seen then
        redis.call("HINCRBY", KEYS[5], ARGV[4], 1)
        return seen
    end
end
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "EX", ARGV[2]) then
    redis.call("HINCRBY", KEYS[5], ARGV[4], 1)
    return redis.call("GET", KEYS[1])
end
for i = 6, #KEYS do
    redis.call("SET", KEYS[i], ARGV[1], "EX", ARGV[2])
end
redis.call("HSET", KEYS[2], unpack(ARGV, 5))
redis.call("RPUSH", KEYS[3], ARGV[1])
redis.call("SADD", KEYS[4], KEYS[3])
redis.call("HINCRBY", KEYS[5], ARGV[3], 1)
return false
"""
ACCEPT_SHA = hashlib.sha1(ACCEPT_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


INGEST_FUNC = "connector.jobs.ingest"
PER_JOB_FIELDS = frozenset({"created_at", "enqueued_at", "description", "data"})


def resp_bulk(value: str | bytes | int) -> bytes:
    """One argument in the Redis protocol (RESP) as a bulk string."""
    raw = value if isinstance(value, bytes) else value.encode() if isinstance(value, str) else b"%d" % value
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


def rq_timestamp(moment: datetime) -> str:
    """A UTC time the way RQ stores it (``rq.utils.utcformat``), without ``strftime``'s cost."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def serialize_job_data(job_tuple: list[Any]) -> bytes:
    """``[func, instance, args, kwargs]`` as JSON that RQ's ``JSONSerializer`` reads back.

    orjson is several times faster than ``json.dumps``; values it cannot encode (non-string
    dict keys, integers beyond 64 bits) fall back to the standard library.
    """
    try:
        return orjson.dumps(job_tuple)
    except TypeError:
        return json.dumps(job_tuple).encode()


class IngestJobHashes:
    """Builds the Redis hash of an ingest job as RQ itself would save it, minus the per-request cost.

    Creating an RQ ``Job`` and calling ``to_dict()`` per webhook costs more than the rest of the
    intake. Every ingest job of a queue has the same fields but four (timestamps, description
    and the serialized arguments), so the rest is taken once from a prototype made by RQ itself
    (leaving out the fields RQ writes as empty strings, which it reads back exactly like absent
    ones), and the arguments are serialized the way RQ's JSON serializer does
    (``[func, instance, args, kwargs]``, zlib-compressed). ``tests/test_queue.py`` compares the hash
    field by field with the one RQ's public ``Queue.enqueue`` saves for the same job, so an RQ
    upgrade that changes the format fails there.
    """

    def __init__(self, queue: Queue, schedule: Sequence[int]) -> None:
        prototype = queue.create_job(
            INGEST_FUNC,
            args=(),
            job_id="ingest-prototype",
            retry=retry_for(schedule),
            result_ttl=finished_job_ttl(),  # issue 16 jobs: nothing reads a finished ingest's result
            failure_ttl=FAILURE_TTL,
        )
        queue._prepare_for_queue(prototype)  # origin, timeout, status: what RQ's enqueue sets
        self.static: list[str] = []
        for key, value in prototype.to_dict().items():
            if value is not None and value != "" and key not in PER_JOB_FIELDS:
                # str() of RQ's JobStatus is "JobStatus.QUEUED"; the hash holds its value, "queued".
                self.static += [key, value.value if isinstance(value, Enum) else str(value)]
        self.key_prefix = prototype.key.removesuffix(prototype.id)
        # The static fields in wire form, encoded once (what redis-py would encode per call).
        self.static_resp = b"".join(resp_bulk(item) for item in self.static)

    def per_job_fields(self, args: tuple[Any, ...], description: str) -> list[str | bytes]:
        """The four fields that differ per job, as ``[field, value, ...]``."""
        now = rq_timestamp(datetime.now(UTC))
        data = zlib.compress(serialize_job_data([INGEST_FUNC, None, list(args), {}]), 1)
        return ["created_at", now, "enqueued_at", now, "description", description, "data", data]


class AcceptCommands:
    """The intake's ``EVALSHA`` of :data:`ACCEPT_SCRIPT`, packed in the Redis protocol by hand.

    redis-py encodes every argument of every call (a few dozen per webhook, most of them the
    same each time); here the unchanging parts (script, queue keys, job fields, counter names)
    are encoded once per (queue, tenant, source) and only the per-webhook values per call.
    """

    def __init__(self, queue: Queue, schedule: Sequence[int], dedup_ttl: int, tenant: str, source: str) -> None:
        self.jobs = IngestJobHashes(queue, schedule)
        self.argc = 3 + 5 + 4 + len(self.jobs.static) + 8  # EVALSHA sha numkeys, keys, args, job hash
        self.after_marker_and_job = (
            resp_bulk(queue.key) + resp_bulk(queue.redis_queues_keys) + resp_bulk(metrics.COUNTERS_KEY)
        )
        self.after_job_id = (
            resp_bulk(dedup_ttl)
            + resp_bulk(metrics.field_name("webhooks", tenant=tenant, source=source, outcome="accepted"))
            + resp_bulk(metrics.field_name("webhooks", tenant=tenant, source=source, outcome="duplicate"))
            + self.jobs.static_resp
        )
        self.head = b"*%d\r\n" % self.argc + resp_bulk("EVALSHA") + resp_bulk(ACCEPT_SHA) + resp_bulk(5)

    def pack(
        self, marker: str, job_id: str, args: tuple[Any, ...], description: str, more_markers: Sequence[str] = ()
    ) -> bytes:
        """The whole command for one webhook, ready to send (``more_markers``: KEYS 6..)."""
        per_job = b"".join(resp_bulk(item) for item in self.jobs.per_job_fields(args, description))
        head = self.head
        if more_markers:
            extra = len(more_markers)
            head = (
                b"*%d\r\n" % (self.argc + extra) + resp_bulk("EVALSHA") + resp_bulk(ACCEPT_SHA) + resp_bulk(5 + extra)
            )
        return b"".join(
            (
                head,
                resp_bulk(marker),
                resp_bulk(self.jobs.key_prefix + job_id),
                self.after_marker_and_job,
                *(resp_bulk(key) for key in more_markers),
                resp_bulk(job_id),
                self.after_job_id,
                per_job,
            )
        )


_accept_commands: dict[tuple[str, tuple[int, ...], int, str, str, int], AcceptCommands] = {}


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
    more_delivery_ids: Sequence[str] = (),
) -> Acceptance:
    """Atomically record the delivery id and enqueue its ingest job, unless already seen.

    ``more_delivery_ids`` are further ids of the same event (Shopify's event id, shared by the
    deliveries to several subscriptions): any of them already seen makes this a duplicate too;
    otherwise all are recorded with the delivery id, in the same single script call.

    Raises:
        redis.exceptions.RedisError: Redis is unreachable; nothing was written.
    """
    # -- issue 16 jobs: the prototype's result_ttl is part of what the commands were built from --
    cache_key = (queue.name, tuple(schedule), dedup_ttl, tenant, source, finished_job_ttl())
    # -- end issue 16 jobs --
    commands = _accept_commands.get(cache_key)
    if commands is None:
        commands = _accept_commands[cache_key] = AcceptCommands(queue, schedule, dedup_ttl, tenant, source)
    job_id = make_job_id("ingest", tenant, source, event_type, delivery_id)
    command = commands.pack(
        dedup_key(tenant, source, event_type, delivery_id),
        job_id,
        job_args,
        f"ingest {source} {event_type} for {tenant}",
        [dedup_key(tenant, source, event_type, other) for other in more_delivery_ids],
    )
    existing = _run_accept_script(redis, command)
    if existing is not None:
        return Acceptance("duplicate", existing.decode() if isinstance(existing, bytes) else str(existing))
    return Acceptance("accepted", job_id)


_connections = threading.local()
# A forked child (gunicorn worker, RQ work horse) must not share its parent's socket. The fork
# generation changes in every child, so a connection held from before the fork is not reused,
# without an os.getpid() system call per webhook.
_fork_generation = [0]
os.register_at_fork(after_in_child=lambda: _fork_generation.__setitem__(0, _fork_generation[0] + 1))


class _HeldConnection:
    """A connection checked out of ``pool`` for one thread, given back to the pool when dropped.

    Checked out once (the pool counts it as in use, so its cap stays true) and kept across
    reconnects: a failed call only disconnects it and the next call reconnects the same object.
    The thread-local that holds it is cleared when its thread ends, which returns it to the pool,
    so servers that start a thread per request do not use the pool up either.
    """

    __slots__ = ("connection", "generation", "pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.generation = _fork_generation[0]
        self.connection: Any = pool.get_connection()

    def __del__(self) -> None:
        # Only the process that checked it out gives it back (a forked child's pool starts afresh).
        if self.generation == _fork_generation[0]:
            with contextlib.suppress(Exception):
                self.pool.release(self.connection)


def _held_connection(redis: Redis) -> Any:
    """This thread's (and process's) own connection to ``redis``, checked out on first use."""
    held: _HeldConnection | None = getattr(_connections, "held", None)
    if held is None or held.pool is not redis.connection_pool or held.generation != _fork_generation[0]:
        _connections.held = None  # gives the old one back before a new one is checked out
        held = _connections.held = _HeldConnection(redis.connection_pool)
    return held.connection


def _run_accept_script(redis: Redis, command: bytes) -> Any:
    """Send the packed ``EVALSHA`` on a connection this thread keeps, loading the script when Redis lacks it.

    The intake's only Redis call; going straight to a held connection skips the pool checkout
    and retry wrappers of every command, a measurable share of the request. A connection that
    went stale while idle is replaced once: re-running the script is safe, because a delivery
    that did get through answers ``duplicate``. Other failures surface as ``RedisError`` (the
    web tier answers 503).
    """
    for attempt in (1, 2):
        conn = _held_connection(redis)
        try:
            try:
                conn.send_packed_command((command,))
                return conn.read_response()
            except NoScriptError:
                conn.send_command("SCRIPT", "LOAD", ACCEPT_SCRIPT)
                conn.read_response()
                conn.send_packed_command((command,))
                return conn.read_response()
        except RedisConnectionError:
            conn.disconnect()  # the same connection object reconnects on its next call
            if attempt == 2:
                raise
        except (RedisTimeoutError, ResponseError):
            conn.disconnect()
            raise
    raise AssertionError("unreachable")


def enqueue_unique(
    queue: Queue,
    func: str,
    *,
    job_id: str,
    args: tuple[Any, ...],
    schedule: Sequence[int],
    description: str,
    result_ttl: int | None = None,
    # -- issue 15 trace: the new job's RQ meta ({"trace": ...}); a job that already exists keeps its own --
    meta: dict[str, Any] | None = None,
    # -- end issue 15 trace --
    at_front: bool = False,
) -> bool:
    """Enqueue with a deterministic id; ``False`` when that job already exists (``result_ttl=0``:
    the job is deleted once it succeeded, e.g. one whose arguments must not outlive it; ``None``:
    :func:`finished_job_ttl`; ``at_front``: ahead of the queued jobs, e.g. a guest's erasure,
    which must overtake the guest's queued webhooks, since these deliver in their ingest job)."""
    try:
        queue.enqueue(
            func,
            args=args,
            job_id=job_id,
            unique=True,
            retry=retry_for(schedule),
            result_ttl=finished_job_ttl() if result_ttl is None else result_ttl,
            failure_ttl=FAILURE_TTL,
            description=description,
            # -- issue 15 trace: the trace id in the new job's meta --
            meta=meta or None,
            # -- end issue 15 trace --
            at_front=at_front,
        )
    except DuplicateJobError:
        return False
    return True


def fetch_job(redis: Redis, job_id: str) -> Job:
    """Fetch a job with the JSON serializer."""
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


UNREADABLE_JOB = (DeserializationError, ValueError, TypeError)
"""What reading a stored job's data can raise: data written by another version, or damaged."""


def job_args(job: Job) -> tuple[Any, ...]:
    """A job's arguments, or ``()`` when its stored data cannot be read (:data:`UNREADABLE_JOB`):
    the readers that only describe a job (failure lines, ``connector failures``) carry on."""
    try:
        return tuple(job.args)
    except UNREADABLE_JOB:
        return ()


def job_func(job: Job) -> str:
    """A job's function name, or ``""`` when its stored data cannot be read."""
    try:
        return str(job.func_name)
    except UNREADABLE_JOB:
        return ""
