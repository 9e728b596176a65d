# mypy: disallow-untyped-calls=False
# (this module extends RQ's worker and scheduler, whose methods are mostly unannotated)
"""Running RQ workers: the long-lived ``connector worker`` and the burst variant.

Workers listen on every connector queue (ingest first) with the JSON serializer and the
scheduler on (retries with a delay are scheduled jobs). On top of RQ they guarantee:

* **No accepted job is lost between queue and worker.** RQ pops from several queues with
  ``BLPOP``, after which the job id exists only in the worker's memory until the started
  registry is written. Here the id moves atomically into the worker's own claim list
  (:data:`connector.recovery.CLAIM_SCRIPT`) and leaves it in the transaction that writes the
  started registry; a dead worker's claims go back to their queues (:mod:`connector.recovery`).
* **A Redis outage is ridden out**, by both worker classes: every call the worker itself makes
  waits with backoff (at most 2 s between tries) and carries on when Redis answers. A job whose
  outcome could not be recorded is queued again (the ledger makes the rerun safe).
* **Scheduled jobs (retries) start on time.** Each worker checks its scheduler every second and
  restarts it; the scheduler rides out outages, exits when its worker dies, and locks held by a
  dead scheduler are taken over at once.

* **Few round trips per job** (issue 16): taking a job reads it in the same script, its start
  is one transaction and its outcome another (RQ's status, result or deletion, registries and
  counters, the writes the job deferred with :mod:`connector.completion`, the failure counters
  and the delivery latency, the worker's idle state and heartbeat). A no-op job costs 3 round
  trips in the simple worker (stock RQ: 18) and 4 in the fork worker plus the horse's new
  connection (stock RQ: 24). A transaction whose answer an outage lost is sent again only if
  the job's started-registry entry shows it did not run; the job itself is not run again.

**The default: a pool of simple workers** (``connector worker``: ``--worker-class simple``,
``--processes`` = the CPU count). Fork workers ran the same short jobs 3.8-4.2x slower, so the crash
isolation is kept another way: each worker is a process of its own under one pool process
(:func:`run_pool`) that replaces a child that dies (SIGKILL, out of memory, a crash in native
code) and hands its work back at once; a job whose worker died while running it is retried by
recovery, and after :data:`connector.recovery.WORKER_DEATH_LIMIT` such deaths it goes to the
failed registry with a reason a person can act on, instead of killing workers forever. The fork
worker (``--worker-class fork``) has the same guard for a horse that dies. The pool process, never
busy with a job, runs the scheduler (RQ's lock picks one among pools and single workers).

``--burst`` processes everything that is due, including due retries, and exits;
``wait_for_retries`` lets it also wait for retries due within that many seconds (handy in tests
and one-off catch-ups).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from uuid import uuid4

from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import NoSuchJobError, StopRequested
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus, Retry
from rq.logutils import blue, green
from rq.registry import FailedJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import BaseWorker, WorkerStatus

from connector import completion, logs, metrics, redaction  # issue 15 logs: logs, metrics
from connector.errors import DestinationError, PayloadError  # issue 15 logs
from connector.queue import FAILURE_TTL, INGEST_QUEUE, QUEUE_NAMES, get_queue, job_args, job_func
from connector.recovery import (
    CLAIM_SCRIPT,
    REDIS_ERRORS,
    WORKER_DEATH_LIMIT,
    Backoff,
    claim_key,
    free_scheduler_locks,
    note_worker_death,
    recover_abandoned_jobs,  # noqa: F401 - importable from here as before
    recover_lost_jobs,
    register_claimant,
    release_claims,
    worker_death_reason,
)
from connector.supervisor import die_with_parent

log = logging.getLogger(__name__)

BLOCK_SECONDS = 1  # an idle worker blocks on the ingest queue this long, then looks at every queue
SCHEDULER_CHECK_SECONDS = 1.0
SCHEDULER_OUTAGE_RETRY_SECONDS = 1.0  # the longest a scheduler waits between tries in an outage
RECOVERY_SECONDS = 2.0  # how often a worker looks for what dead workers left (a few reads)
HEARTBEAT_SECONDS = 30.0
SUSPENSION_CHECK_SECONDS = 1.0  # how often ``rq suspend`` is looked for (RQ: before every job)
# A fork horse exits with this status when its job's outcome is not (certainly) recorded: its
# worker then settles the job itself. RQ's own meaning of a non-zero status (the horse died) stays.
HORSE_UNRECORDED = 100
PERIODIC_CHECK_SECONDS = 30.0  # how often the scheduler enqueues the jobs due once per period
# RQ raises the socket timeout to its 405 s BLPOP + 10; no call here blocks longer than BLOCK_SECONDS,
# so the client's own timeout (30 s from connector.queue.connect) stands and a hung Redis shows soon.
SOCKET_TIMEOUT = 30


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

    # -- issue 15 logs: one line per expected failure, counted; the delivery latency --
    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """One log line per failed attempt instead of RQ's chained tracebacks: ``retrying <job> in
        N s: <reason>`` or ``failed <job>: <reason>``. An expected failure (a destination's answer,
        a payload no retry can fix) has no traceback; an unexpected exception keeps its traceback,
        once. Failed and retried deliveries are counted per destination and status. RQ's exception
        handlers (none by default) still run."""
        exc = exc_info[1]
        retry_in = _retry_in(job)
        reason = failure_reason(exc)
        what = _description(job)
        try:
            # In the job's completion transaction (connector.completion) when the worker records it.
            completion.defer(self.connection, lambda pipe: _count_failure(pipe, job, exc, retry_in))
        except REDIS_ERRORS:
            pass  # the job's own failure handling reports the outage
        expected = isinstance(exc, DestinationError | PayloadError)
        extra = {"job_id": job.id, "retry_in": retry_in, **_job_context(job)}
        trace = exc_info if not expected else None
        if retry_in is not None:
            self.log.log(
                logging.WARNING if expected else logging.ERROR,
                "retrying %s in %s s: %s",
                what,
                retry_in,
                reason,
                exc_info=trace,
                extra=extra,
            )
        else:
            self.log.error("failed %s: %s", what, reason, exc_info=trace, extra=extra)
        for handler in self._exc_handlers:
            if handler(job, *exc_info) is False:
                break

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any) -> None:
        """RQ's success handling, then the webhook-to-delivered latency of a delivery or relay
        (only where RQ's own ``perform_job`` runs; the connector's records both in one transaction)."""
        super().handle_job_success(job, queue, started_job_registry)
        try:
            _observe_delivered(self.connection, job, _trace_created(self.connection, job))
        except REDIS_ERRORS:
            pass  # a metric, never the job's outcome

    # -- end issue 15 logs --


# -- issue 15 logs: failure lines and delivery metrics --
DELIVERY_JOBS = {"connector.jobs.deliver", "connector.jobs.relay"}
REASON_LIMIT = 500


def failure_reason(exc: BaseException | None) -> str:
    """An exception as one line: a connector error's own message, anything else prefixed by its
    type; whitespace collapsed, at most :data:`REASON_LIMIT` characters."""
    if exc is None:
        return "unknown failure"
    text = " ".join(str(exc).split())
    if not isinstance(exc, DestinationError | PayloadError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = text or type(exc).__name__
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _description(job: Job) -> str:
    return str(job.description or job_func(job) or job.id)  # an unreadable job: its id says enough


def _job_context(job: Job) -> dict[str, str]:
    """The trace (``meta["trace"]``), tenant and source of a job, for its failure line: RQ handles
    the failure after the job's own bound log context has been cleared."""
    context: dict[str, str] = {}
    trace = job.meta.get("trace") if isinstance(job.meta, dict) else None
    if isinstance(trace, str) and trace:
        context["trace_id"] = trace
    args = job_args(job)
    data = args[0] if args else None
    if isinstance(data, dict):
        for name in ("tenant", "source"):
            if isinstance(data.get(name), str) and data[name]:
                context[name] = str(data[name])[:64]
    return context


def _retry_in(job: Job) -> int | None:
    """Seconds until RQ runs ``job`` again (``None``: it will not: the failure is final)."""
    if not job.should_retry:
        return None
    try:
        return int(job.get_retry_interval())
    except (AssertionError, IndexError, TypeError, ValueError):
        return 0


def _destination(job: Job, exc: BaseException | None) -> str:
    """The platform or ESP a delivery or relay job was queued for (a bounded label)."""
    args = job_args(job)
    if len(args) > 1 and isinstance(args[1], str) and args[1]:
        return args[1]
    if isinstance(exc, DestinationError) and exc.destination:
        return exc.destination.split()[0].lower()
    return "unknown"


def _count_failure(redis: Any, job: Job, exc: BaseException | None, retry_in: int | None) -> None:
    if job_func(job) not in DELIVERY_JOBS:
        return
    status = str(exc.status) if isinstance(exc, DestinationError) and exc.status else "none"
    name = "delivery_retries" if retry_in is not None else "delivery_failures"
    metrics.count(redis, name, destination=_destination(job, exc), status=status)


def _trace_key(job: Job) -> str | None:
    """The hash of the ingest job (``meta["trace"]``) whose creation time a delivery or relay
    measures its latency from, when it is another job than this one."""
    if job_func(job) not in DELIVERY_JOBS:
        return None
    trace = job.meta.get("trace") if isinstance(job.meta, dict) else None
    if not isinstance(trace, str) or not trace or trace == job.id:
        return None
    return Job.redis_job_namespace_prefix + trace


def _trace_created(redis: Redis, job: Job) -> Any:
    key = _trace_key(job)
    return redis.hget(key, "created_at") if key else None


def _observe_delivered(redis: Any, job: Job, created: Any) -> None:
    """Webhook-to-delivered seconds of a delivery or relay that sent something: from when the
    webhook's ingest job (the trace, ``meta["trace"]``) was created at the intake (``created``,
    its ``created_at`` field, read with the job's start), else from when this job was.
    ``redis`` may be a pipeline."""
    if job_func(job) not in DELIVERY_JOBS:
        return
    result = getattr(job, "_result", None)
    if not isinstance(result, dict) or result.get("status") != "delivered":
        return
    started: float | None = None
    if created:
        text = created.decode() if isinstance(created, bytes) else str(created)
        try:
            started = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            started = None
    if started is None and job.created_at is not None:
        moment = job.created_at
        started = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if started is None:
        return
    seconds = max(datetime.now(UTC).timestamp() - started, 0.0)
    metrics.observe(redis, "webhook_to_delivered_seconds", seconds, destination=_destination(job, None))


# -- end issue 15 logs --


def _run(job: Job) -> Any:
    """``Job.perform`` without its PERSIST round trip (the job's start sent it)."""
    from rq.job import _job_stack

    _job_stack.push(job)
    try:
        job._result = job._execute()
    finally:
        _job_stack.pop()
    return job._result


def redact_reason(text: str) -> str:
    """A failure reason with every configured secret masked (see :mod:`connector.redaction`)."""
    from connector import jobs

    if not text:
        return text
    return redaction.redact(text, jobs.tenants().secrets())


# One round trip after every job: the worker is idle again, and an execution whose outcome never
# reached Redis (its started-registry entry is still there) is queued again.
# KEYS: 1 worker hash, 2 started registry, 3 execution hash, 4 the job's execution registry,
#       5 job hash, 6 the job's queue. ARGV: 1 worker state, 2 started entry, 3 execution id, 4 job id.
SETTLE_SCRIPT = """
redis.call("HSET", KEYS[1], "state", ARGV[1])
if redis.call("ZREM", KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call("DEL", KEYS[3])
redis.call("ZREM", KEYS[4], ARGV[3])
redis.call("HDEL", KEYS[1], "current_job")
if redis.call("EXISTS", KEYS[5]) == 0 then return 0 end
redis.call("HSET", KEYS[5], "status", "queued")
redis.call("LPUSH", KEYS[6], ARGV[4])
return 1
"""


class ConnectorScheduler(RQScheduler):
    """RQ's scheduler that survives Redis outages, follows its worker, and takes over dead locks.

    RQ's scheduler process ends on the first Redis error (in its heartbeat) and retries a lock
    it lacks only every two minutes. This one keeps going through outages, tries missing locks
    every second (releasing those of dead schedulers first), exits when it holds none (its
    worker starts it again when one is free) and exits when its worker is gone.
    """

    _parent_pid = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        connection = kwargs.get("connection", args[1] if len(args) > 1 else None)
        self._worker_pool = getattr(connection, "connection_pool", None)

    def start(self) -> Any:
        """Fork the scheduler process (remembering the worker that owns it)."""
        self._parent_pid = os.getpid()
        return super().start()

    def _close_inherited_connections(self) -> None:
        """Close, in the scheduler process, its copies of the worker's Redis sockets (this
        process has connections of its own).

        A forked process holds every socket its parent had open. When the worker was SIGKILLed
        while it waited in ``BLMOVE`` for a job, its socket stayed open here, so Redis kept
        the wait: the next webhook's job was moved into the dead worker's claim list after
        recovery had already handed that list back, and stayed there (the fault suite's "never
        run" job). redis-py closes another process's connection without shutting the socket
        down, so the worker's own copy is untouched.
        """
        pool = self._worker_pool
        if pool is None:
            return
        # The pool's lists as they were at the fork: its own disconnect() would first notice the
        # new pid and start afresh, forgetting them.
        inherited = [*getattr(pool, "_available_connections", ()), *getattr(pool, "_in_use_connections", ())]
        for connection in inherited:
            connection.disconnect()

    @property
    def should_reacquire_locks(self) -> bool:
        """Every round while a lock is missing (RQ: every two minutes)."""
        return bool(self._queue_names != self.acquired_locks)

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        """Release locks of dead schedulers, then acquire or refresh ours as RQ does."""
        free_scheduler_locks(self.connection, self._queue_names, self.name)
        return set(super().acquire_locks(auto_start))

    _next_periodic = 0.0

    def enqueue_periodic_jobs(self) -> None:
        """Every :data:`PERIODIC_CHECK_SECONDS`: the jobs due once per period (the Shopify shops'
        reconciliations, :func:`connector.jobs.schedule_shopify_reconciliations`), under ids
        unique per period, so another scheduler asking too enqueues nothing."""
        if time.monotonic() < self._next_periodic:
            return
        self._next_periodic = time.monotonic() + PERIODIC_CHECK_SECONDS
        from connector import jobs

        try:
            jobs.schedule_shopify_reconciliations()
        except REDIS_ERRORS:
            raise
        except Exception:  # a broken installation record must not stop the retries' scheduler
            self.log.exception("Scheduler %s: scheduling the Shopify reconciliations failed", self.name)

    def work(self) -> None:
        """The scheduler loop: heartbeat, enqueue due jobs, sleep a second; outages are waited out."""
        self._close_inherited_connections()
        self._install_signal_handlers()
        # Retries fall due during an outage too: once Redis answers they must be enqueued within
        # a second or so (the fault suite's < 5 s lateness, a 3 s outage included), so the
        # scheduler tries at least once a second rather than backing off to 2 s as workers do.
        backoff = Backoff(cap=SCHEDULER_OUTAGE_RETRY_SECONDS)
        registered = False
        while True:
            if self._stop_requested or (self._parent_pid and os.getppid() != self._parent_pid):
                if not self._stop_requested:
                    self.log.warning("Scheduler %s: its worker is gone, stopping", self.name)
                try:
                    self.stop()
                except REDIS_ERRORS:
                    pass  # the locks expire on their own
                return
            try:
                if not registered:
                    self.register_birth()
                    registered = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                if not self.acquired_locks:
                    self.log.info("Scheduler %s: another scheduler holds every lock, stopping", self.name)
                    self._stop_requested = True
                    continue
                self.heartbeat()
                self.enqueue_scheduled_jobs()
                self.enqueue_periodic_jobs()
                backoff.reset()
            except REDIS_ERRORS as exc:
                self._status = self.Status.STARTED
                self.log.warning("Scheduler %s: Redis unavailable (%s); trying again", self.name, exc)
                backoff.wait()
                continue
            time.sleep(self.interval)


def keep_scheduler_running(redis: Redis, scheduler: RQScheduler, owner: str) -> None:
    """Start ``scheduler``'s process again when it is not running and a lock is free."""
    process = scheduler._process
    if process is not None and process.is_alive():
        return
    # The owner's own connection decides whether to try, so an owner that does not hold the locks
    # costs a few reads a second and no new connection.
    if free_scheduler_locks(redis, scheduler._queue_names, scheduler.name):
        scheduler.acquire_locks(auto_start=True)
        if scheduler._process is not None and scheduler._process.is_alive():
            log.info("%s: scheduler started (PID %s)", owner, scheduler._process.pid)


class ReliableWorker(BaseWorker):
    """What both connector worker classes add to RQ's: claim lists, outage riding, scheduler care."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claim_key = claim_key(self.name)
        self._claim = self.connection.register_script(CLAIM_SCRIPT)
        self._settle = self.connection.register_script(SETTLE_SCRIPT)
        self._next_heartbeat = 0.0
        self._next_suspension_check = 0.0
        self._working_time_written: float | None = None
        self._prepared_job_id: str | None = None
        self._trace_created: Any = None
        self._retrying = False
        self._next_scheduler_check = 0.0
        self._next_recovery = time.monotonic() + RECOVERY_SECONDS
        self.stop_signalled = False
        self._burst = True  # until work() starts the scheduler: no supervision

    @property
    def connection_timeout(self) -> int:
        """The least socket timeout RQ lets the worker's connection have (see :data:`SOCKET_TIMEOUT`)."""
        return SOCKET_TIMEOUT

    # --- lifecycle --------------------------------------------------------------------------

    def register_birth(self) -> None:
        """RQ's registration, plus the owner record of this worker's claim list."""
        super().register_birth()
        register_claimant(self.connection, self.name)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Note that a stop was asked for (``run_worker`` then does not start a new worker)."""
        self.stop_signalled = True
        super().request_stop(signum, frame)

    def teardown(self) -> None:
        """Give back claimed jobs that never started, then RQ's teardown; tolerates Redis being down."""
        if not self.is_horse:
            try:
                release_claims(self.connection, self.claim_key)
            except REDIS_ERRORS:
                self.log.warning("Worker %s: Redis unavailable; its claims are recovered later", self.name)
        try:
            super().teardown()
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: Redis unavailable at shutdown (%s)", self.name, exc)

    def _wait_out(self, backoff: Backoff, what: str, exc: Exception) -> None:
        """One backoff step of an outage; a requested stop ends the wait."""
        if self._stop_requested:
            raise StopRequested()
        self.log.error("Worker %s: Redis unavailable while %s (%s); retrying", self.name, what, exc)
        backoff.wait()

    # --- calls RQ makes that must not end the worker in an outage ---------------------------------

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat; a missed one during an outage is skipped (the hash has minutes of TTL).

        RQ sends one (two round trips) after every job; here every job's start and completion
        transactions carry one, so a separate one is sent only when none went for
        :data:`HEARTBEAT_SECONDS` (the worker hash lives ``worker_ttl`` + 60 s, minutes).
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            if timeout is None or timeout >= HEARTBEAT_SECONDS:
                self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            return
        if timeout is None and time.monotonic() < self._next_heartbeat:
            return
        try:
            super().heartbeat(timeout)
            self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: heartbeat skipped, Redis unavailable (%s)", self.name, exc)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's state write; in an outage only the in-memory state changes."""
        if pipeline is not None:
            super().set_state(state, pipeline)
            return
        try:
            super().set_state(state)
        except REDIS_ERRORS:
            self._state = state

    def set_current_job_working_time(self, current_job_working_time: float, pipeline: Any = None) -> None:
        """RQ's progress note (informational); skipped in an outage, and when it would write the
        value this process wrote last (RQ resets it to 0 after every job; the start wrote 0)."""
        if pipeline is None and current_job_working_time == self._working_time_written:
            self.current_job_working_time = current_job_working_time
            return
        try:
            super().set_current_job_working_time(current_job_working_time, pipeline)
            self._working_time_written = current_job_working_time
        except REDIS_ERRORS:
            pass

    def maintain_heartbeats(self, job: Job) -> None:
        """RQ's heartbeats during a job; skipped in an outage (the horse keeps working)."""
        try:
            super().maintain_heartbeats(job)
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: job heartbeat skipped, Redis unavailable (%s)", self.name, exc)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's suspension check (with a heartbeat), at most every :data:`SUSPENSION_CHECK_SECONDS`
        (RQ: a round trip before every job); unknown in an outage, and the next dequeue waits for
        Redis anyway."""
        if time.monotonic() < self._next_suspension_check:
            return
        try:
            super().check_for_suspension(burst)
            self._next_suspension_check = time.monotonic() + SUSPENSION_CHECK_SECONDS
        except REDIS_ERRORS:
            pass

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (registry cleaning); tried again on the next round after an outage."""
        try:
            super().run_maintenance_tasks()
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: maintenance postponed, Redis unavailable (%s)", self.name, exc)

    # --- the scheduler ------------------------------------------------------------------------

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's scheduler start with :class:`ConnectorScheduler`; an outage now is retried by supervision."""
        self.scheduler = ConnectorScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        try:
            self.scheduler.acquire_locks()
            if self.scheduler.acquired_locks:
                if burst:
                    try:
                        self.scheduler.register_birth()
                        self.scheduler.enqueue_scheduled_jobs()
                    finally:
                        self.scheduler.release_locks()
                        self.scheduler.register_death()
                else:
                    self.scheduler.start()
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: scheduler not started yet, Redis unavailable (%s)", self.name, exc)
        self._burst = burst

    def supervise_scheduler(self) -> None:
        """Every second: restart this worker's scheduler when it is not running and a lock is free."""
        scheduler = self.scheduler
        if scheduler is None or self._burst or self._stop_requested or time.monotonic() < self._next_scheduler_check:
            return
        self._next_scheduler_check = time.monotonic() + SCHEDULER_CHECK_SECONDS
        keep_scheduler_running(self.connection, scheduler, f"Worker {self.name}")

    # --- taking a job -------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self.heartbeat()
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()
        self.supervise_scheduler()
        if now >= self._next_recovery:
            self._next_recovery = now + RECOVERY_SECONDS
            recover_lost_jobs(self.connection)

    def _claim_next(self, block: bool) -> tuple[Job, Queue] | None:
        """The next job, moved into this worker's claim list on the way (see the module docstring)."""
        queue_keys = [queue.key for queue in self._ordered_queues]
        while True:
            # The claim also reads the job's hash: one round trip for taking and reading a job.
            claimed = self._claim(keys=[self.claim_key, *queue_keys], args=[Job.redis_job_namespace_prefix])
            raw, fields = (claimed[0], claimed[1]) if claimed else (None, None)
            if raw is None and block:
                if self.get_redis_server_version() < (6, 2, 0):  # no BLMOVE: look again in a second
                    time.sleep(BLOCK_SECONDS)
                    return None
                # Blocks on the queue webhooks arrive in (not the first in priority: that is the
                # connection checks'); the others are looked at every BLOCK_SECONDS.
                raw = self.connection.blmove(
                    self._block_key(queue_keys), self.claim_key, BLOCK_SECONDS, "LEFT", "RIGHT"
                )
            if raw is None:
                return None
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                job = self._read_job(job_id, fields)
            except NoSuchJobError:
                self.connection.lrem(self.claim_key, 1, job_id)  # deleted meanwhile, as RQ skips it
                continue
            except REDIS_ERRORS:
                raise  # the claim stays; the next call returns it first
            except Exception as exc:
                # An unreadable job hash would stop every worker that claims it (RQ drops the id):
                # it goes to its queue's failed registry with the reason, for a person to look at.
                self.log.exception("Worker %s: job %s cannot be read; moved to failed", self.name, job_id)
                self._fail_unreadable(job_id, exc)
                continue
            queue = self.queue_class(
                job.origin,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
                death_penalty_class=self.death_penalty_class,
            )
            return job, queue

    def _block_key(self, queue_keys: list[str]) -> str:
        """The queue an idle worker blocks on: the ingest queue when it listens on it, else its first."""
        ingest = Queue.redis_queue_namespace_prefix + INGEST_QUEUE
        return ingest if ingest in queue_keys else queue_keys[0]

    def _read_job(self, job_id: str, fields: list[Any] | None) -> Job:
        """The job from the flat field list the claim returned (``None``: read it now)."""
        if fields is None:
            return self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        if not fields:
            raise NoSuchJobError(f"No such job: {job_id}")
        job = self.job_class(job_id, connection=self.connection, serializer=self.serializer)
        job.restore(dict(zip(fields[::2], fields[1::2], strict=True)))
        return job

    def _fail_unreadable(self, job_id: str, exc: Exception) -> None:
        job_key = Job.redis_job_namespace_prefix + job_id
        origin = self.connection.hget(job_key, "origin")
        with self.connection.pipeline() as pipeline:
            pipeline.lrem(self.claim_key, 1, job_id)
            if origin:
                name = origin.decode() if isinstance(origin, bytes) else str(origin)
                registry = FailedJobRegistry(name, connection=self.connection)
                pipeline.zadd(registry.key, {job_id: time.time() + FAILURE_TTL})
                pipeline.hset(job_key, mapping={"status": "failed", "exc_info": f"unreadable job: {exc!r}"})
            pipeline.execute()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's dequeue loop, with the claim-list pop and Redis outages waited out with backoff."""
        qnames = ",".join(self.queue_names())
        if self.get_state() != WorkerStatus.IDLE:  # a recorded job's transaction wrote it already
            self.set_state(WorkerStatus.IDLE)
        self.procline("Listening on " + qnames)
        backoff = Backoff()
        idle_since = time.monotonic()
        while True:
            if self._stop_requested:
                return None
            try:
                self._housekeeping()
                result = self._claim_next(block=timeout is not None)
                backoff.reset()
            except REDIS_ERRORS as exc:
                self._wait_out(backoff, "waiting for a job", exc)
                continue
            if result is not None:
                job, queue = result
                self.reorder_queues(reference_queue=queue)
                job.redis_server_version = self.get_redis_server_version()
                if self.log_job_description:
                    self.log.info("Worker %s: %s: %s (%s)", self.name, green(queue.name), blue(job.description), job.id)
                else:
                    self.log.info("Worker %s: %s: %s", self.name, green(queue.name), job.id)
                return result
            if timeout is None:
                return None  # burst: nothing left
            if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                self.log.info("Worker %s: idle for %d seconds, quitting", self.name, max_idle_time)
                return None

    def prepare_execution(self, job: Job) -> Execution:
        """Start the job in one transaction: the started registry, the claim dropped (RQ: no
        claim), and what RQ's ``prepare_job_execution`` and ``Job.perform`` write in rounds of
        their own (the job's status, heartbeats, the worker's current job); a delivery's trace's
        creation time is read on the way (its latency metric).

        The execution id is chosen first, so a transaction whose answer was lost in an outage can
        simply be sent again: it writes the same entries a second time.
        """
        execution = Execution(id=uuid4().hex, job_id=job.id, connection=self.connection, worker_name=self.name)
        ttl = self.get_heartbeat_ttl(job)
        trace_key = _trace_key(job)
        backoff = Backoff()
        while True:
            try:
                with self.connection.pipeline() as pipeline:
                    execution.save(ttl=ttl, pipeline=pipeline)
                    ExecutionRegistry(job_id=job.id, connection=pipeline).add(
                        execution=execution, ttl=ttl, pipeline=pipeline
                    )
                    job.started_job_registry.add_execution(execution, pipeline=pipeline, ttl=ttl, xx=False)
                    self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
                    pipeline.lrem(self.claim_key, 1, job.id)
                    # RQ's prepare_job_execution and Job.perform's PERSIST, here instead of later.
                    self.set_current_job_id(job.id, pipeline=pipeline)
                    self.set_current_job_working_time(0, pipeline=pipeline)
                    self.heartbeat(ttl, pipeline=pipeline)
                    job.heartbeat(now(), ttl, pipeline=pipeline)
                    job.prepare_for_execution(self.name, pipeline=pipeline)
                    pipeline.persist(job.key)
                    if trace_key:
                        pipeline.hget(trace_key, "created_at")
                    results = pipeline.execute()
                break
            except REDIS_ERRORS as exc:
                self._wait_out(backoff, f"starting job {job.id}", exc)
        self._trace_created = results[-1] if trace_key else None
        self._prepared_job_id = job.id
        self.execution = execution
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")
        return execution

    # --- running a job and recording its outcome ---------------------------------------------

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """Run the job as RQ does, then record its outcome in one transaction (:meth:`_record`).

        RQ spends about ten round trips around a job; its start is already written here
        (:meth:`prepare_execution`) and everything after it, RQ's bookkeeping (status, result or
        deletion, registries, counters), the writes the job deferred (:mod:`connector.completion`,
        on success and on failure), the failure counters and the delivery latency, the worker's
        idle state and heartbeat, goes in one. Returns whether that transaction ran (else the
        caller settles the job: :meth:`settle`).
        """
        if self._prepared_job_id != job.id:  # not started by prepare_execution: RQ's own start
            self.prepare_job_execution(job)
            self.connection.persist(job.key)
            self._trace_created = _trace_created(self.connection, job)
        self._prepared_job_id = None
        exc_string: str | None = None
        with completion.collecting() as writes:
            try:
                job.started_at = now()
                timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
                with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                    return_value = _run(job)
                job.ended_at = now()
                job._result = return_value
                if isinstance(return_value, Retry):  # RQ's own path (the connector's jobs raise instead)
                    completion.flush(self.connection, writes)
                    assert self.execution
                    self.handle_job_retry(job, queue, return_value, queue.started_job_registry, self.execution)
                    return False
                job._status = JobStatus.FINISHED
                job.execute_success_callback(self.death_penalty_class, return_value)
            except BaseException:  # as RQ: whatever the job raises is its failure
                exc_string = self._job_failed(job, sys.exc_info())
            if exc_string is None:
                try:
                    recorded = self._record(job, queue, writes, None)
                except REDIS_ERRORS:
                    raise
                except Exception:  # a result that cannot be stored (RQ: the job fails with it)
                    exc_string = self._job_failed(job, sys.exc_info())
            if exc_string is not None:
                recorded = self._record(job, queue, writes, exc_string)
                return recorded
        job.send_webhooks(JobStatus.FINISHED)
        self.log.info("Worker %s: %s: %s (%s)", self.name, green(job.origin), blue("Job OK"), job.id)
        return recorded

    def _job_failed(self, job: Job, exc_info: Any) -> str:
        """RQ's handling of a raised exception (failure callback, exception handlers); the reason."""
        job._status = JobStatus.FAILED
        job.ended_at = now()
        exc_string = "".join(traceback.format_exception(*exc_info))
        try:
            job.execute_failure_callback(self.death_penalty_class, *exc_info)
        except BaseException:  # as RQ: the callback's failure becomes the job's
            exc_info = sys.exc_info()
            exc_string = "".join(traceback.format_exception(*exc_info))
        self.handle_exception(job, *exc_info)
        return exc_string

    def _record(self, job: Job, queue: Queue, writes: list[completion.Write], exc_string: str | None) -> bool:
        """Send the job's outcome in one transaction; through an outage, until it is recorded.

        The transaction removes the job's started-registry entry, so after a lost answer the
        entry tells whether it ran: still there, it is sent again (the job is not run again);
        gone, it ran, or recovery took the job meanwhile (``False``: the caller settles).
        """
        execution = self.execution
        assert execution is not None
        retries_left, status = job.retries_left, job._status
        backoff = Backoff()
        sent = False
        while True:
            try:
                if sent and self.connection.zscore(job.started_job_registry.key, execution.composite_key) is None:
                    self.log.warning("Worker %s: job %s was recorded meanwhile", self.name, job.id)
                    return False
                self.execution, job.retries_left, job._status = execution, retries_left, status
                with self.connection.pipeline() as pipeline:
                    if exc_string is None:
                        self._queue_success(job, queue, pipeline)
                    else:
                        self._queue_failure(job, queue, redact_reason(exc_string), pipeline)
                    self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
                    self.heartbeat(pipeline=pipeline)
                    for write in writes:
                        write(pipeline)
                    pipeline.smembers(job.dependents_key)
                    sent = True
                    results = pipeline.execute()
                break
            except REDIS_ERRORS as exc:
                self._wait_out(backoff, f"recording the outcome of job {job.id}", exc)
        writes.clear()
        self.execution = None
        stopped = exc_string is not None and self._stopped_job_id == job.id
        if stopped:
            self._stopped_job_id = None
        final = exc_string is None or not self._retrying
        if exc_string is not None and final and not stopped:
            job.send_webhooks(JobStatus.FAILED, exc_string=exc_string)  # RQ: only a final failure's
        if final and results[-1]:  # dependents (the connector has none): RQ enqueues them after the outcome
            queue.enqueue_dependents(job)
        return True

    def _queue_success(self, job: Job, queue: Queue, pipeline: Any) -> None:
        """What RQ's ``handle_job_success`` writes, on ``pipeline``; a result kept for 0 s deletes
        the job without RQ's reads."""
        assert job.started_at and job.ended_at and self.execution
        self.increment_successful_job_count(pipeline=pipeline)
        self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        if result_ttl != 0:
            job._handle_success(
                result_ttl,
                pipeline=pipeline,
                worker_name=self.name,
                execution_id=self.execution.id,
                execution_started_at=self.execution.created_at,
                execution_ended_at=job.ended_at,
            )
        if job.repeats_left is not None and job.repeats_left > 0:
            from rq.repeat import Repeat

            Repeat.schedule(job, queue, pipeline=pipeline)
        elif result_ttl == 0 and not job.group_id:
            # RQ's Job.delete reads the job's status and executions first; a finished job of this
            # worker is in no registry yet, and its one execution goes with cleanup_execution.
            execution_registry = ExecutionRegistry(job_id=job.id, connection=self.connection)
            pipeline.delete(job.key, job.dependents_key, job.dependencies_key, execution_registry.key)
        else:
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
        _observe_delivered(pipeline, job, self._trace_created)
        self.cleanup_execution(job, pipeline=pipeline)

    def _queue_failure(self, job: Job, queue: Queue, exc_string: str, pipeline: Any) -> None:
        """What RQ's ``handle_job_failure`` writes (in two round trips), on ``pipeline``."""
        job_is_stopped = self._stopped_job_id == job.id
        retry = self._retrying = bool(job.should_retry and not job_is_stopped)
        if job_is_stopped:
            job.set_status(JobStatus.STOPPED, pipeline=pipeline)
        elif not retry:
            job.set_status(JobStatus.FAILED, pipeline=pipeline)
        execution = self.execution
        self.cleanup_execution(job, pipeline=pipeline)
        if not self.disable_default_exception_handler and not retry:
            job._handle_failure(
                exc_string,
                pipeline=pipeline,
                worker_name=self.name,
                execution_id=execution.id if execution else None,
                execution_started_at=execution.created_at if execution else None,
                execution_ended_at=job.ended_at,
            )
        self.increment_failed_job_count(pipeline)
        if job.started_at and job.ended_at:
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
        if retry:
            job.retry(queue, pipeline)

    def _recorded(self) -> None:
        """The job's transaction made this worker idle and sent its heartbeat."""
        self._state = WorkerStatus.IDLE
        self.execution = None
        self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS

    def settle(self, job: Job, execution: Execution) -> None:
        """After a job: idle again, and queue the job again if its outcome never reached Redis."""
        backoff = Backoff()
        keys = [
            self.key,
            job.started_job_registry.key,
            execution.key,
            ExecutionRegistry(job_id=job.id, connection=self.connection).key,
            job.key,
            Queue.redis_queue_namespace_prefix + job.origin,
        ]
        args = [WorkerStatus.IDLE.value, execution.composite_key, execution.id, job.id]
        while True:
            try:
                requeued = self._settle(keys=keys, args=args)
                break
            except REDIS_ERRORS as exc:
                self._wait_out(backoff, f"recording the end of job {job.id}", exc)
        self._state = WorkerStatus.IDLE
        self.execution = None
        if requeued:
            self.log.warning(
                "Worker %s: the outcome of job %s was not recorded (Redis); queued again", self.name, job.id
            )


class ConnectorWorker(RedactedFailures, ReliableWorker, Worker):
    """RQ's forking worker that also records its work horse's pid in its Redis hash.

    RQ puts each horse in its own process group, so a worker killed with SIGKILL can leave its
    horse running the job to the end. Knowing the horse's pid lets recovery tell an orphaned
    but still working job from an abandoned one.
    """

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Fork as RQ does, then note the horse pid (only the parent returns here)."""
        super().fork_work_horse(job, queue)
        if self.horse_pid:
            try:
                self.connection.hset(self.key, "horse_pid", str(self.horse_pid))
            except REDIS_ERRORS:
                pass  # only recovery's liveness check reads it, and it also checks the worker itself

    _horse_recorded = False
    _killer_reason: tuple[str, str] | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Fork a horse for the job and watch it, as RQ does; then settle the job's record
        unless the horse recorded its outcome (it exits 0 only then)."""
        execution = self.prepare_execution(job)
        self._horse_recorded = False
        self.fork_work_horse(job, queue)
        try:
            self.monitor_work_horse(job, queue)
        except REDIS_ERRORS as exc:
            # Only RQ's bookkeeping after the horse ended talks to Redis unguarded.
            self.log.warning("Worker %s: Redis unavailable after job %s (%s)", self.name, job.id, exc)
            if self.horse_pid:
                self.wait_for_horse()
                self._horse_pid = 0
        if self._horse_recorded:
            self._recorded()
        else:
            self.settle(job, execution)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """The horse: RQ's, except that it exits :data:`HORSE_UNRECORDED` when the job's outcome
        is not known to be recorded."""
        random.seed()
        self.setup_work_horse_signals()
        self._is_horse = True
        self.log = logging.getLogger("rq.worker")
        try:
            recorded = self.perform_job(job, queue)
        except BaseException:  # as RQ: the worker handles a horse that failed
            os._exit(1)
        os._exit(0 if recorded else HORSE_UNRECORDED)

    def wait_for_horse(self) -> tuple[int | None, int | None, Any]:
        """RQ's wait; a horse that exited :data:`HORSE_UNRECORDED` ended normally for RQ."""
        pid, status, rusage = super().wait_for_horse()
        if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == HORSE_UNRECORDED:
            return pid, 0, rusage
        if pid is not None:
            self._horse_recorded = status == 0
        return pid, status, rusage

    def handle_work_horse_killed(self, job: Job, retpid: Any, ret_val: Any, rusage: Any) -> None:
        """A horse that died running the job: counted; the job fails with a reason at the limit."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        how = f"signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val) else f"status {ret_val}"
        try:
            deaths = note_worker_death(self.connection, job.id)
        except REDIS_ERRORS:
            return  # RQ's failure handling meets the outage too
        if deaths >= WORKER_DEATH_LIMIT:
            job.retries_left = 0  # no retry: the failure is final
            last = f"work horse {retpid} of worker {self.name}, {how}, at {datetime.now(UTC).isoformat()}"
            self._killer_reason = (job.id, worker_death_reason(deaths, last))

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        """RQ's failure handling; a job that killed its horse too often fails with that reason."""
        if self._killer_reason and self._killer_reason[0] == job.id:
            exc_string, self._killer_reason = self._killer_reason[1], None
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)


class ConnectorSimpleWorker(RedactedFailures, ReliableWorker, SimpleWorker):
    """RQ's in-process worker (no fork per job): several times faster for short jobs. Its crash
    isolation is the process: under :func:`run_pool` a dead one is replaced and its job recovered."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job in this process, as RQ does; then settle the job's record unless its
        outcome's transaction did."""
        execution = self.prepare_execution(job)
        recorded = False
        try:
            recorded = self.perform_job(job, queue)
        except REDIS_ERRORS as exc:
            self.log.warning("Worker %s: Redis unavailable during job %s (%s)", self.name, job.id, exc)
        if recorded:
            self._recorded()
        else:
            self.settle(job, execution)


WORKER_CLASSES: dict[str, type[ReliableWorker]] = {"fork": ConnectorWorker, "simple": ConnectorSimpleWorker}


def build_worker(redis: Redis, worker_class: type[ReliableWorker] = ConnectorWorker) -> ReliableWorker:
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


def preload() -> None:
    """Import the job code and read the settings once, before RQ forks a horse per job.

    Heavy imports after the fork are what make forking workers slow (RQ's docs); done here,
    every horse inherits them. A configuration error also stops the worker at start.
    """
    from connector import jobs
    from connector.apps.registry import APPS
    from connector.esps.registry import ESPS
    from connector.platforms.registry import PLATFORMS
    from connector.pms.registry import PMS_APIS

    redaction.install_log_redaction(redaction.configured_secrets(jobs.settings()))
    # The registries name their clients lazily (the web tier must not load them); a worker needs
    # them all, so it loads them here rather than once per forked horse.
    for registry in (PLATFORMS, ESPS, PMS_APIS, APPS):
        for registration in registry.values():
            registration.client.load()


def warm_up() -> None:
    """Do once, before any horse is forked, what each job would otherwise do first in its own
    horse (and lose with it): this process's Redis client, the tenants read from Redis, the
    compiled redactor for their secrets (a few regular expressions of every encoding of every
    secret: milliseconds), and the module ``requests`` imports on its first request. A fork
    worker's horses then start warm; a simple worker's first job does. Redis not answering
    here only leaves the warm-up to the first job."""
    import netrc  # noqa: F401  # requests imports it per request, lazily (a fresh horse: each job)

    from connector import jobs

    try:
        jobs.redis()
        redaction.redact("", jobs._all_secrets())
    except REDIS_ERRORS as exc:
        log.warning("warm-up skipped, Redis not answering: %s", exc)


def _until_redis_answers(redis: Redis, what: str) -> None:
    backoff = Backoff()
    while True:
        try:
            recover_lost_jobs(redis, wait=2.0)
            return
        except REDIS_ERRORS as exc:
            log.error("Redis unavailable before %s (%s); retrying", what, exc)
            backoff.wait()


def run_worker(
    redis: Redis,
    *,
    burst: bool = False,
    wait_for_retries: float = 0.0,
    worker_class: type[ReliableWorker] = ConnectorWorker,
    logging_level: str = "INFO",
    processes: int = 1,
) -> None:
    """Work the queues; in burst mode keep going while retries fall due within the wait.

    ``processes`` > 1: that many worker processes under this one (:func:`run_pool`).
    """
    # -- issue 15 logs: the one log format, before RQ would install its own handlers --
    logs.configure_logging("worker")
    # -- end issue 15 logs --
    preload()
    _until_redis_answers(redis, "starting")  # also hands back what dead workers left behind
    warm_up()
    if processes > 1:
        # The pool process runs the scheduler (never busy with a job); a burst child runs its own.
        work = lambda: _work(redis, burst, wait_for_retries, worker_class, logging_level, scheduler=burst)  # noqa: E731
        run_pool(redis, processes, work, burst)
        return
    _work(redis, burst, wait_for_retries, worker_class, logging_level)


def _work(
    redis: Redis,
    burst: bool,
    wait_for_retries: float,
    worker_class: type[ReliableWorker],
    logging_level: str,
    scheduler: bool = True,
) -> None:
    if not burst:
        _work_until_stopped(redis, worker_class, logging_level, scheduler)
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


def _work_until_stopped(
    redis: Redis, worker_class: type[ReliableWorker], logging_level: str, scheduler: bool = True
) -> None:
    """Run a worker until a stop is asked for; one that ends otherwise is replaced in this process."""
    backoff = Backoff(first=1.0, cap=10.0)
    while True:
        worker = build_worker(redis, worker_class)
        try:
            worker.work(with_scheduler=scheduler, logging_level=logging_level)
        except REDIS_ERRORS as exc:  # at start-up (registration), before RQ's loop catches anything
            log.error("worker could not start, Redis unavailable (%s)", exc)
        if worker.stop_signalled:
            return
        log.error("worker %s ended without a stop request; starting a new one", worker.name)
        try:
            backoff.wait()
        except StopRequested:
            return
        if worker.stop_signalled:  # a stop signal during the wait reaches the old worker's handler
            return


# --- several worker processes under one ---------------------------------------------------------

POOL_BACKOFF_FIRST = 0.5
POOL_BACKOFF_MAX = 10.0
POOL_STABLE_SECONDS = 10.0  # a child that ran this long starts the backoff afresh when it dies


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


class _Pool:
    """The children of :func:`run_pool`, by pid, with when each started."""

    def __init__(self, work: Any, burst: bool) -> None:
        self.work = work
        self.burst = burst
        self.children: dict[int, float] = {}
        self.parent = os.getpid()
        self.stopping = False
        self.backoff = POOL_BACKOFF_FIRST

    def start_child(self) -> None:
        pid = os.fork()
        if pid == 0:  # the child: its worker installs its own signal handlers
            # Its own process group: a Ctrl-C or a group SIGTERM reaches the pool only, which
            # passes it on once (twice would be RQ's cold shutdown, killing the job mid-way).
            os.setpgid(0, 0)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            die_with_parent()  # a warm shutdown when the pool process dies, even by SIGKILL
            if os.getppid() != self.parent:  # it died before that
                os._exit(0)
            code = 0
            try:
                self.work()
            except BaseException:  # logged; the pool starts another
                log.exception("worker process %s failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()

    def stop(self, signum: int, frame: FrameType | None) -> None:
        """Pass a stop to every child (a second one too: RQ's cold shutdown)."""
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def _ended(children: dict[int, float]) -> list[tuple[int, int, float]]:
    """The children that have ended (pid, status, start), taken out of ``children`` (only these
    pids are waited for: a wait for any child would also reap the scheduler's process)."""
    ended = []
    for pid in list(children):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped already: gone, status unknown
            done, status = pid, 0
        if done:
            ended.append((pid, status, children.pop(pid)))
    return ended


def run_pool(redis: Redis, processes: int, work: Any, burst: bool = False) -> None:
    """Run ``work`` (one worker's loop) in ``processes`` forked children until a stop is asked for.

    A child that dies (SIGKILL, out of memory, a crash) is replaced after a backoff (0.5 s
    doubling to 10 s, afresh once a child ran 10 s), and what it left behind is handed back at
    once (:func:`connector.recovery.recover_lost_jobs`): its claimed jobs go back to their queues,
    its started job is retried, or failed once it has killed a worker
    :data:`connector.recovery.WORKER_DEATH_LIMIT` times. SIGTERM or SIGINT reach every child (a
    warm shutdown: each finishes its job); the children get SIGTERM if this process dies. This
    process, never busy with a job, keeps the scheduler running (checked every second, as a
    worker does; RQ's lock picks one among pools); in burst mode each child enqueues what is due
    itself, nothing is replaced and this returns once every child is done.
    """
    pool = _Pool(work, burst)
    queues = [get_queue(redis, name) for name in QUEUE_NAMES]
    scheduler = None if burst else ConnectorScheduler(queues, connection=redis, serializer=JSONSerializer)
    previous = {signum: signal.signal(signum, pool.stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(processes):
            pool.start_child()
        log.info("worker pool %s: %d worker processes", os.getpid(), processes)
        next_check = 0.0
        while pool.children:
            ended = _ended(pool.children)
            if not ended:
                if scheduler is not None and not pool.stopping and time.monotonic() >= next_check:
                    next_check = time.monotonic() + SCHEDULER_CHECK_SECONDS
                    try:
                        keep_scheduler_running(redis, scheduler, f"worker pool {os.getpid()}")
                    except REDIS_ERRORS as exc:
                        log.warning("worker pool: scheduler not started, Redis unavailable (%s)", exc)
                time.sleep(0.1)
                continue
            if pool.stopping or burst:
                continue
            for pid, status, _ in ended:
                log.error("worker process %s %s; starting another", pid, _describe_status(status))
            try:
                recover_lost_jobs(redis, wait=2.0)
            except REDIS_ERRORS as exc:
                log.warning("worker pool: recovery postponed, Redis unavailable (%s)", exc)
            if min(time.monotonic() - started for _, _, started in ended) >= POOL_STABLE_SECONDS:
                pool.backoff = POOL_BACKOFF_FIRST
            deadline = time.monotonic() + pool.backoff
            while time.monotonic() < deadline and not pool.stopping:
                time.sleep(0.05)
            pool.backoff = min(pool.backoff * 2, POOL_BACKOFF_MAX)
            for _ in ended:
                if not pool.stopping:
                    pool.start_child()
    finally:
        if scheduler is not None and scheduler._process is not None and scheduler._process.is_alive():
            os.kill(scheduler._process.pid or 0, signal.SIGTERM)  # it releases its locks
            scheduler._process.join(10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
