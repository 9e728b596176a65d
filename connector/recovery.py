"""Finding work that a dead worker or scheduler left behind, and handing it back at once.

Three things can be left behind, each with its own record of who holds it (and one kind of job
that keeps leaving itself behind):

* **Claimed jobs.** A worker takes the next job id from the queues into its own *claim list*
  (``connector:claimed:<worker>``) in one atomic step (:data:`CLAIM_SCRIPT`), and removes it from
  there in the same transaction that writes the started registry. A job id is therefore always
  in a queue, a claim list or the started registry, never in none of them. The hash
  :data:`CLAIMANTS_KEY` names each claim list's owner (host and process); when that process is
  gone, :func:`recover_claimed_jobs` puts its ids back at the front of their queues.
* **Started jobs** of a worker killed mid-job: :func:`recover_abandoned_jobs` hands them to RQ's
  own abandoned-job handling (a retry, or the failed registry when no attempt is left).
* **Jobs that kill their worker** (out of memory, a native crash): every death of a worker
  process while it ran a job is counted in the job's hash; after :data:`WORKER_DEATH_LIMIT`
  deaths the job goes to the failed registry with a reason a person can act on.
* **Scheduler locks** held by a dead scheduler: :func:`free_scheduler_locks` releases them so a
  live worker's scheduler takes over at once instead of after the lock's 61 s TTL.

"Dead" is decided only where it is certain: a process on this host (same hostname, boot and
pid namespace) that no longer exists, or has been replaced by another process with the same
pid. Elsewhere RQ's own expiry rules apply (a worker's hash expires; a scheduler stops
refreshing its lock).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterable
from functools import cache

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock

from connector.queue import QUEUE_NAMES, get_queue

log = logging.getLogger(__name__)

# What a Redis outage raises (BusyLoadingError, "Redis is loading the dataset", is a ConnectionError).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)

CLAIM_PREFIX = "connector:claimed:"
CLAIMANTS_KEY = "connector:claimants"
RELEASED_KEY = "connector:claims-released"
RELEASED_WATCH_SECONDS = 600
"""How long a handed-back claim list is looked at again: a wait a dead worker left in Redis
(its socket held open by another process) can still move a job into it after it was handed back."""
RECOVERY_LOCK_KEY = "connector:recovery-lock"
RECOVERY_LOCK_TTL = 30

# KEYS[1]: the worker's claim list; KEYS[2..]: the queues in priority order. ARGV[1]: job key prefix.
# A claim left over from an earlier call (whose answer the worker never got, e.g. Redis restarted
# mid-reply) comes first: it is this worker's already. Returns the id with the job's hash (flat
# field/value list, empty when the job is gone), so taking a job and reading it is one round trip.
CLAIM_SCRIPT = """
local function taken(id) return {id, redis.call("HGETALL", ARGV[1] .. id)} end
local left = redis.call("LINDEX", KEYS[1], 0)
if left then return taken(left) end
for i = 2, #KEYS do
    local id = redis.call("LPOP", KEYS[i])
    if id then
        redis.call("RPUSH", KEYS[1], id)
        return taken(id)
    end
end
return false
"""

# KEYS[1]: a claim list, KEYS[2]: the claimants hash. ARGV[1]: job key prefix, ARGV[2]: queue key prefix.
# Every claimed id whose job is still queued goes back to the front of its queue, in claim order.
RELEASE_SCRIPT = """
local returned = 0
while true do
    local id = redis.call("RPOP", KEYS[1])
    if not id then break end
    local job = ARGV[1] .. id
    if redis.call("HGET", job, "status") == "queued" then
        local origin = redis.call("HGET", job, "origin")
        if origin then
            redis.call("LPUSH", ARGV[2] .. origin, id)
            returned = returned + 1
        end
    end
end
redis.call("HDEL", KEYS[2], KEYS[1])
redis.call("ZADD", KEYS[3], ARGV[3], KEYS[1])
return returned
"""


class Backoff:
    """Exponential waits (with a little jitter) for riding out a Redis outage."""

    def __init__(self, first: float = 0.25, cap: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def wait(self) -> float:
        """Sleep the current wait, then double it (up to the cap); returns the seconds slept."""
        seconds = self.current * (0.9 + 0.2 * random.random())
        time.sleep(seconds)
        self.current = min(self.current * 2, self.cap)
        return seconds

    def reset(self) -> None:
        """Back to the first wait (Redis answered)."""
        self.current = self.first


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return ""


@cache
def host_identity() -> str:
    """This host as processes see it: hostname, boot and pid namespace.

    Two processes with the same identity see the same pids, so one can tell whether the other
    is alive; a container with the same hostname but its own pid namespace, or the same machine
    after a reboot, has another identity.
    """
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{boot}|{namespace}"


def _start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot, ``/proc/<pid>/stat``), "" where unknown."""
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)
    parts = fields[1].split() if len(fields) == 2 else []
    return parts[19] if len(parts) > 19 else ""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a zombie nobody reaped counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return True  # no /proc: the signal check is all there is
    parts = stat.rsplit(")", 1)
    return len(parts) != 2 or not parts[1].split() or parts[1].split()[0] != "Z"


def process_token(pid: int | None = None) -> str:
    """Names a process on this host beyond its pid: ``<host identity>|<pid>|<start time>``."""
    pid = os.getpid() if pid is None else pid
    return f"{host_identity()}|{pid}|{_start_time(pid)}"


def token_is_dead(token: str) -> bool | None:
    """``True``/``False`` for a process of this host, ``None`` when it runs elsewhere (unknown)."""
    identity, _, rest = token.rpartition("|")
    identity, _, pid_text = identity.rpartition("|")
    if identity != host_identity():
        return None
    pid = int(pid_text) if pid_text.isdigit() else 0
    return not _alive(pid) or (bool(rest) and _start_time(pid) != rest)


# --- claimed jobs -------------------------------------------------------------------------------


def claim_key(worker_name: str) -> str:
    """The claim list of a worker."""
    return CLAIM_PREFIX + worker_name


def register_claimant(redis: Redis, worker_name: str) -> None:
    """Record that this process owns ``worker_name``'s claim list."""
    redis.hset(CLAIMANTS_KEY, claim_key(worker_name), process_token())


def release_claims(redis: Redis, key: str) -> int:
    """Put every still-queued job of a claim list back at the front of its queue; forget its
    owner, and note the list among the handed-back ones (:func:`recover_released_claims`)."""
    script = redis.register_script(RELEASE_SCRIPT)
    return int(
        script(
            keys=[key, CLAIMANTS_KEY, RELEASED_KEY],
            args=[Job.redis_job_namespace_prefix, Queue.redis_queue_namespace_prefix, time.time()],
        )
    )


def recover_released_claims(redis: Redis) -> int:
    """Hand back what reached a claim list after the list was handed back (within
    :data:`RELEASED_WATCH_SECONDS`). A claim list belongs to one worker name, never reused, so
    one that was handed back has no live owner. Looking again is one round trip while they are
    all empty; older ones are forgotten."""
    now = time.time()
    redis.zremrangebyscore(RELEASED_KEY, "-inf", now - RELEASED_WATCH_SECONDS)
    keys = [_text(raw) for raw in redis.zrange(RELEASED_KEY, 0, -1) if isinstance(raw, bytes | str)]
    if not keys:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        lengths = pipe.execute()
    returned = 0
    for key, length in zip(keys, lengths, strict=True):
        if length:
            count = release_claims(redis, key)
            returned += count
            if count:
                log.warning(
                    "requeued %d job(s) that reached the claim list of dead worker %s after it was handed back",
                    count,
                    key.removeprefix(CLAIM_PREFIX),
                )
    return returned


def _claimant_is_dead(redis: Redis, key: str, token: str) -> bool:
    dead = token_is_dead(token)
    if dead is not None:
        return dead
    # Another host: its worker is gone once RQ's worker hash has expired (no heartbeat).
    return not redis.exists(f"rq:worker:{key.removeprefix(CLAIM_PREFIX)}")


def recover_claimed_jobs(redis: Redis) -> int:
    """Hand the claimed but never started jobs of dead workers back to their queues."""
    returned = 0
    for raw_key, raw_token in redis.hgetall(CLAIMANTS_KEY).items():
        key, token = _text(raw_key), _text(raw_token)
        if _claimant_is_dead(redis, key, token):
            count = release_claims(redis, key)
            returned += count
            if count:
                log.warning("requeued %d job(s) claimed by dead worker %s", count, key.removeprefix(CLAIM_PREFIX))
    return returned


# --- workers that died ----------------------------------------------------------------------------


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


# --- jobs that kill their worker process ---------------------------------------------------------

WORKER_DEATH_LIMIT = 3
"""A job whose worker process died while running it this many times goes to the failed registry."""
DEATHS_FIELD = "connector_worker_deaths"  # in the job's hash: survives its retries, goes with it


def note_worker_death(redis: Redis, job_id: str) -> int:
    """Count one death of a worker process (or fork horse) while it ran ``job_id``; the count so far."""
    return int(redis.hincrby(Job.redis_job_namespace_prefix + job_id, DEATHS_FIELD, 1))


def worker_death_reason(deaths: int, last: str) -> str:
    """The failure reason of a job that kept killing its worker process, for a person to act on."""
    return (
        f"the worker process died while running this job {deaths} times (last: {last}); the job "
        "itself probably kills it (out of memory, a crash in native code, a signal): look at the "
        "worker's log and the host's kernel log (OOM killer) around the last time, fix the cause, "
        "then replay it (connector replay)"
    )


def fail_worker_killer(redis: Redis, queue: Queue, entry: str, deaths: int, last: str) -> None:
    """Move the job of started-registry ``entry`` to its failed registry with :func:`worker_death_reason`."""
    registry = queue.started_job_registry
    job_id = registry.parse_job_id(entry)
    reason = worker_death_reason(deaths, last)
    try:
        job = Job.fetch(job_id, connection=redis, serializer=queue.serializer)
    except NoSuchJobError:
        redis.zrem(registry.key, entry)
        return
    with redis.pipeline() as pipeline:
        pipeline.zrem(registry.key, entry)
        pipeline.delete(f"rq:execution:{entry}")
        job.set_status(JobStatus.FAILED, pipeline=pipeline)
        job._handle_failure(reason, pipeline, worker_name="")
        pipeline.execute()
    log.error("job %s failed: %s", job_id, reason)


# --- started jobs of dead workers ---------------------------------------------------------------


def recover_abandoned_jobs(redis: Redis) -> int:
    """Hand jobs of workers that died mid-job (SIGKILL, OOM) back to RQ's own recovery.

    RQ notices an abandoned job only when its started-registry entry expires (about 90 s) and a
    worker runs maintenance (up to 10 min later). A worker killed on this host is known dead at
    once, so its entries are marked expired and RQ's cleanup retries them (or fails them when
    no attempt is left). Delivery is idempotent, so running the job again posts nothing twice.

    Each such death is counted in the job's hash; a job that has now killed its worker
    :data:`WORKER_DEATH_LIMIT` times goes to the failed registry with a reason instead of being
    retried (it would otherwise kill a worker on every attempt).
    """
    recovered = 0
    for name in QUEUE_NAMES:
        queue = get_queue(redis, name)
        registry = queue.started_job_registry
        marked = 0
        for raw in redis.zrange(registry.key, 0, -1):
            entry = raw.decode() if isinstance(raw, bytes) else str(raw)
            job_id = registry.parse_job_id(entry)
            # The execution record is written with the registry entry; the job hash may lag it.
            worker_name = _text(
                redis.hget(f"rq:execution:{entry}", "worker_name") or redis.hget(f"rq:job:{job_id}", "worker_name")
            )
            if not _worker_is_dead(redis, worker_name):
                continue
            deaths = note_worker_death(redis, job_id)
            if deaths >= WORKER_DEATH_LIMIT:
                fail_worker_killer(redis, queue, entry, deaths, f"worker {worker_name} on {socket.gethostname()}")
                recovered += 1
                continue
            redis.zadd(registry.key, {entry: 0}, xx=True)
            marked += 1
        if marked:
            registry.cleanup(timestamp=0)
            recovered += marked
    if recovered:
        log.warning("recovered %d job(s) abandoned by dead workers", recovered)
    return recovered


def recover_lost_jobs(redis: Redis, *, wait: float = 0.0) -> int:
    """Both recoveries, by one process at a time (two at once could retry a job twice).

    Waits up to ``wait`` seconds for another process's run to finish; returns the number of
    jobs handed back (0 when another process holds the lock).
    """
    token = process_token()
    deadline = time.monotonic() + wait
    while not redis.set(RECOVERY_LOCK_KEY, token, nx=True, ex=RECOVERY_LOCK_TTL):
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.05)
    try:
        return recover_claimed_jobs(redis) + recover_released_claims(redis) + recover_abandoned_jobs(redis)
    finally:
        release_lock(redis, RECOVERY_LOCK_KEY, token)


# --- scheduler locks ----------------------------------------------------------------------------

# A live scheduler refreshes its locks to this TTL every second (RQ: interval + 60).
SCHEDULER_LOCK_TTL = 61
# A lock not refreshed for this long belongs to a scheduler that is dead or stuck.
SCHEDULER_STALE_AFTER = 10
SCHEDULER_UNREGISTERED_AFTER = 3


def scheduler_is_dead(redis: Redis, owner: str, lock_key: str) -> bool:
    """Whether the scheduler named ``owner``, holding ``lock_key``, is certainly gone.

    On this host: its process no longer exists. Anywhere: it has not refreshed the lock for
    :data:`SCHEDULER_STALE_AFTER` seconds (a live scheduler refreshes it every second), or for
    :data:`SCHEDULER_UNREGISTERED_AFTER` seconds without ever registering.
    """
    data = redis.hgetall(SCHEDULER_KEY_TEMPLATE % owner)
    if data and _text(data.get(b"hostname")) == socket.gethostname():
        pid = int(_text(data.get(b"pid")) or 0)
        if pid > 0 and not _alive(pid):
            return True
    ttl = int(redis.ttl(lock_key))
    if ttl < 0:
        return False  # gone meanwhile (-2), or no TTL (-1): not a lock RQ wrote
    unrefreshed = SCHEDULER_LOCK_TTL - ttl
    # No hash: its worker took the lock but the scheduler never registered (it does so within
    # milliseconds of the fork, then refreshes both every second), e.g. killed at start.
    return unrefreshed >= (SCHEDULER_UNREGISTERED_AFTER if not data else SCHEDULER_STALE_AFTER)


def free_scheduler_locks(redis: Redis, queue_names: Iterable[str], own_name: str) -> bool:
    """Release locks of dead schedulers; ``True`` when some lock is now free for ``own_name``.

    A lock already held by ``own_name`` counts as free: the caller knows whether its own
    scheduler process still runs.
    """
    available = False
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        owner = _text(redis.get(key))
        if not owner or owner == own_name:
            available = True
        elif scheduler_is_dead(redis, owner, key) and release_lock(redis, key, owner):
            log.warning("scheduler %s is gone; released its lock on %s", owner, name)
            available = True
    return available
