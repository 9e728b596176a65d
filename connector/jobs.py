"""RQ entry points: the only place where translation meets I/O.

``ingest`` runs once per accepted webhook: it translates the stored payload (pure) and delivers
each activity (or, for loyalty events coming back from a platform, relays each event) itself,
through the very path the ``deliver`` and ``relay`` jobs take (:func:`deliver_activity`,
:func:`relay_event`: ledger, attempt markers, activity record). Only when that inline attempt
fails does it create the ``deliver`` / ``relay`` job under its deterministic id, for the
retries: scheduled after the retry policy's wait (never before a ``Retry-After``), or, for a
failure no retry fixes, straight in the failed registry with the destination's reason (so that
``connector failures``, ``connector replay`` and the Activity page's Retry button see it). A
stay's activities (PMS) are the exception: their delivery jobs are written in the stay-state
transaction (:mod:`connector.stays`). Both kinds consult the local ledger first so that a
replayed or redelivered job never posts twice (:mod:`connector.ledger`); every job follows
:mod:`connector.retry`. Arguments are JSON-safe and hold no secrets (the dashboard shows them).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from redis import Redis
from redis.exceptions import WatchError
from rq import get_current_job
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.results import Result
from rq.timeouts import JobTimeoutException

from connector import activity_log, completion, erasure, metrics, redaction, stays
from connector.activities import UNKNOWN_CURRENCY, Activity, LoyaltyEvent, hash_identifier
from connector.directory import TenantDirectory
from connector.errors import (
    ConnectorError,
    DestinationError,
    ErasureRequested,
    FatalDestinationError,
    PayloadError,
    RetriableDestinationError,
    UnsupportedEvent,
)
from connector.esps.base import build_esp_client
from connector.esps.config import relay_skip_reason
from connector.ledger import (
    NOT_LOOKED_UP,
    NotLookedUp,
    claim_inline,
    deliver_once,
    inline_claim_key,
    ledger_key,
    relay_ledger_key,
    release_inline,
)
from connector.platforms.base import Receipt, UnconfiguredPlatform
from connector.platforms.registry import build_loyalty_destination
from connector.pms import registry as pms
from connector.queue import (
    DELIVERY_QUEUE,
    FAILURE_TTL,
    INGEST_QUEUE,
    RELAY_QUEUE,
    RESULT_TTL,
    connect,
    enqueue_unique,
    finished_job_ttl,
    get_queue,
    make_job_id,
)
from connector.retry import apply_retry_policy, next_delay, retry_for
from connector.settings import Settings, Tenant, load_settings
from connector.sources.base import Envelope, TranslationContext, load_body_text, translation_guard
from connector.sources.registry import SOURCES
from connector.sources.stay import Translation, group_stays
from connector.vendors.shopify.lifecycle import UNINSTALLED_COUNTER, uninstalled_reason

log = logging.getLogger(__name__)

CONTACT_TTL = 24 * 3600


@cache
def settings() -> Settings:
    """Settings for this worker process (read once; restart workers after config changes)."""
    return load_settings()


@cache
def redis() -> Redis:
    """This process's Redis client."""
    return connect(settings().redis_url)


def _schedule() -> tuple[int, ...]:
    return settings().retry_schedule


_directory: list[TenantDirectory] = []  # this process's, for the settings it was built from


def tenants() -> TenantDirectory:
    """This worker process's tenants: the file's and the Shopify installations, kept current
    (built again when the settings are, e.g. after ``settings.cache_clear()``)."""
    current = settings()
    if not _directory or _directory[0].settings is not current:
        _directory[:] = [TenantDirectory(current, redis())]
    return _directory[0]


def tenant_config(name: str) -> Tenant:
    """The tenant, or a payload error (fatal) when it was removed from the config.

    Raises:
        UnsupportedEvent: the tenant is a Shopify shop that uninstalled the app, or a tenant that
            was removed from the settings since the job was queued (the job ends ``ignored`` with
            that reason, see :func:`_tenant_gone`): removing a tenant never fails its queued work.
    """
    directory = tenants()
    tenant = directory.get(name)
    if tenant is None:
        gone = uninstalled_reason(directory.store, name)
        if gone is not None:
            raise UnsupportedEvent(gone, counter=UNINSTALLED_COUNTER)
        raise UnsupportedEvent(
            f"tenant {name!r} was removed from the settings after this job was queued; nothing was sent",
            counter="tenant_removed",
        )
    return tenant


def _tenant_gone(tenant: str, source: str, gone: UnsupportedEvent) -> dict[str, Any]:
    """The answer of a job whose tenant, source, platform or ESP is gone (uninstalled, removed or
    changed in the settings since it was queued): ignored, with the reason, counted."""
    metrics.count_later(redis(), "ignored", tenant=tenant, source=source, reason=gone.counter)
    log.info("job of %s/%s ignored: %s", tenant, source, gone.reason)
    return {"status": "ignored", "reason": gone.reason}


LOCAL_CONTACTS_KEPT = 10_000
"""Contact ids this process remembers (a bounded LRU in front of Redis: a hit costs no round trip)."""
LOCAL_CONTACT_TTL = 600.0
"""Seconds a remembered id is used: bounds how long another process's erasure or a platform-side
merge can go unnoticed here (a stale id is forgotten at once on the platform's answer anyway)."""

# Per Redis client (its connection pool): a new client, e.g. after the settings changed, starts
# afresh. Redis key -> (contact id, until).
_local_contacts: WeakKeyDictionary[Any, OrderedDict[str, tuple[str, float]]] = WeakKeyDictionary()


def _local(client: Redis) -> OrderedDict[str, tuple[str, float]]:
    pool = client.connection_pool
    found = _local_contacts.get(pool)
    if found is None:
        found = _local_contacts[pool] = OrderedDict()
    return found


class RedisContactCache:
    """Email → contact id memo per tenant and platform, keyed by a hash of the email.

    In Redis for a day (``connector:contact:{tenant}:{platform}:{hash}``), and in a bounded
    process-local LRU for :data:`LOCAL_CONTACT_TTL` (keyed by that same key: tenant, platform
    and the email's hash, never the email)."""

    def __init__(self, client: Redis, tenant: str, platform: str) -> None:
        self.client = client
        self.prefix = f"connector:contact:{tenant}:{platform}:"

    def get(self, email: str) -> str | None:
        """Cached contact id, if any (this process's memory first, then Redis)."""
        key = self.prefix + hash_identifier(email)
        memory = _local(self.client)
        local = memory.get(key)
        if local is not None and local[1] > time.monotonic():
            memory.move_to_end(key)
            return local[0]
        value = self.client.get(key)
        contact = value.decode() if isinstance(value, bytes) else value
        if contact is not None:
            _remember(memory, key, str(contact))
        return str(contact) if contact is not None else None

    def set(self, email: str, contact_id: str) -> None:
        """Remember a contact id for a day."""
        key = self.prefix + hash_identifier(email)
        self.client.set(key, contact_id, ex=CONTACT_TTL)
        _remember(_local(self.client), key, contact_id)

    # -- issue 15 replay: stale contact ids --
    def forget(self, email: str) -> None:
        """Drop a cached id the platform no longer knows (see :func:`deliver_with_fresh_contact`)."""
        key = self.prefix + hash_identifier(email)
        _local(self.client).pop(key, None)
        self.client.delete(key)

    # -- end issue 15 replay --


def _remember(memory: OrderedDict[str, tuple[str, float]], key: str, contact_id: str) -> None:
    memory[key] = (contact_id, time.monotonic() + LOCAL_CONTACT_TTL)
    memory.move_to_end(key)
    while len(memory) > LOCAL_CONTACTS_KEPT:
        memory.popitem(last=False)


def forget_local_contacts(tenant: str, subject_hashes: list[str] | None = None) -> None:
    """Drop what this process remembers of ``tenant``'s contacts (only the guests whose email
    hashes are given, when given), e.g. after an erasure."""
    prefix = f"connector:contact:{tenant}:"
    wanted = set(subject_hashes) if subject_hashes is not None else None
    for memory in list(_local_contacts.values()):
        for key in [k for k in memory if k.startswith(prefix)]:
            if wanted is None or key.rsplit(":", 1)[-1] in wanted:
                memory.pop(key, None)


def _all_secrets() -> tuple[str, ...]:
    """What every activity record is redacted with (as the worker redacts failure reasons)."""
    return tenants().secrets()


def delivery_job_id(tenant: str, platform: str, activity: Activity) -> str:
    """Deterministic id of the delivery job for one activity."""
    return make_job_id("deliver", tenant, platform, activity.type, activity.business_key)


@activity_log.recorded("webhook", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def ingest(envelope: dict[str, str], body: str) -> dict[str, Any]:
    """Translate one accepted webhook and deliver (or relay) what it yields: inline, with a
    job only for what failed (see the module docstring), and a stay's through its state."""
    env = Envelope.from_dict(envelope)
    try:
        tenant = tenant_config(env.tenant)
    except UnsupportedEvent as gone:
        return _tenant_gone(env.tenant, env.source, gone)
    adapter = SOURCES[env.source]
    config = tenant.sources.get(env.source)
    if config is None:  # removed in the pages (or the file) meanwhile: not a failure to fix
        return _tenant_gone(
            env.tenant,
            env.source,
            UnsupportedEvent(
                f"source {env.source} was removed from tenant {env.tenant}'s settings after this webhook "
                "was accepted; nothing was sent",
                counter="source_removed",
            ),
        )
    payload = load_body_text(body)  # the intake's body rules: a BodyError (PayloadError) fails once
    context = TranslationContext(
        tenant=env.tenant, timezone=tenant.zone, platform=tenant.loyalty.platform, now=datetime.now(UTC)
    )
    # Translation is pure: whatever it raises by accident comes from the payload's shape and
    # fails the job once as a PayloadError (translation_guard). The PMS fetch is I/O, outside it.
    pure = f"{env.source} payload"
    try:
        if adapter.is_loyalty_event(env.event_type):
            with translation_guard(pure):
                events: list[LoyaltyEvent] = adapter.to_loyalty_events(env, payload, context, config)
            # -- issue 15 trace: the trace findable by the events' ids and emails (hashed) --
            activity_log.index_translation(redis(), [(f"{e.source}:{e.event_id}", e.email) for e in events])
            # -- end issue 15 trace --
            return {"status": "translated", "relays": follow_up(relay_follow_ups(tenant, events), env.received_at)}
        with translation_guard(pure):
            ids = adapter.references(env, payload, config)
        if ids is not None:  # a thin event: fetch each referenced id once, then translate
            fetched = pms.fetch(env.source, config, ids, timeout=settings().http_timeout)
            payload = {"message": payload, "fetched": fetched}
        with translation_guard(pure):
            activities = adapter.to_activities(env, payload, context, config)
    except ErasureRequested as request:
        return {"status": "erasure", "job": enqueue_erasure(env, request)}
    except UnsupportedEvent as ignored:
        metrics.count_later(redis(), "ignored", tenant=env.tenant, source=env.source, reason=ignored.counter)
        log.info("ingest %s/%s ignored: %s", env.tenant, env.source, ignored.reason)
        return {"status": "ignored", "reason": ignored.reason}
    for skipped in activities.skipped if isinstance(activities, Translation) else ():
        metrics.count_later(redis(), "ignored", tenant=env.tenant, source=env.source, reason=skipped.counter)
        log.warning("ingest %s/%s skipped part of the message: %s", env.tenant, env.source, skipped.reason)
    stay_groups, others = group_stays(activities)
    # -- issue 15 trace: the trace findable by the stays' business keys and emails (hashed) --
    activity_log.index_translation(redis(), [(a.business_key, a.person.email) for g in stay_groups.values() for a in g])
    # -- end issue 15 trace --
    deliveries = follow_up(delivery_follow_ups(tenant, others), env.received_at)
    for implied in stay_groups.values():
        deliveries += stays.apply_stay(redis(), tenant.name, implied, _stay_job_writer(tenant))
    return {"status": "translated", "deliveries": deliveries}


def _stay_job_writer(tenant: Tenant) -> stays.JobWriter:
    """Writes a stay activity's delivery job into the state transaction (see connector.stays)."""
    queue = get_queue(redis(), DELIVERY_QUEUE)
    platform = tenant.loyalty.platform

    def write(pipe: Any, activity: Activity) -> str:
        job_id = delivery_job_id(tenant.name, platform, activity)
        job = queue.create_job(
            "connector.jobs.deliver",
            args=(activity.model_dump(mode="json"), platform),
            job_id=job_id,
            retry=retry_for(_schedule()),
            result_ttl=finished_job_ttl(),
            failure_ttl=FAILURE_TTL,
            description=f"deliver {activity.type} {activity.business_key} to {platform}",
            # -- issue 15 trace: the webhook's trace id in the job's meta --
            meta=activity_log.job_meta() or None,
            # -- end issue 15 trace --
        )
        queue.enqueue_job(job, pipeline=pipe)
        return job_id

    return write


@dataclass(frozen=True)
class FollowUp:
    """A delivery or relay a webhook causes: attempted inline by its ingest job (:func:`follow_up`)
    or left to its job (``func`` with ``args`` under the deterministic ``job_id``)."""

    kind: str  # "delivery" | "relay": the activity record's kind
    job_id: str
    args: tuple[Any, ...]
    description: str
    destination: str  # the platform or ESP
    ledger: str  # the ledger key
    run: Callable[[dict[str, Any] | None], dict[str, Any]]  # the job's work, given the ledger's value

    @property
    def queue(self) -> str:
        """The queue of the item's job."""
        return DELIVERY_QUEUE if self.kind == "delivery" else RELAY_QUEUE

    @property
    def func(self) -> str:
        """The item's job function."""
        return "connector.jobs.deliver" if self.kind == "delivery" else "connector.jobs.relay"


def delivery_follow_ups(tenant: Tenant, activities: list[Activity]) -> list[FollowUp]:
    """The delivery of each activity to the tenant's loyalty platform."""
    platform = tenant.loyalty.platform
    # -- issue 15 trace: the current trace (ingest, reconciliation) findable by business key and email --
    activity_log.index_translation(redis(), [(a.business_key, a.person.email) for a in activities])
    # -- end issue 15 trace --
    return [
        FollowUp(
            kind="delivery",
            job_id=delivery_job_id(tenant.name, platform, activity),
            args=(activity.model_dump(mode="json"), platform),
            description=f"deliver {activity.type} {activity.business_key} to {platform}",
            destination=platform,
            ledger=ledger_key(tenant.name, platform, activity),
            run=functools.partial(deliver_activity, activity, platform),
        )
        for activity in activities
    ]


def enqueue_deliveries(tenant: Tenant, activities: list[Activity]) -> list[str]:
    """One unique delivery job per activity; returns their ids."""
    return [enqueue_follow_up(item) for item in delivery_follow_ups(tenant, activities)]


def enqueue_follow_up(item: FollowUp) -> str:
    """The item's job, unless a job of that id exists; returns its id."""
    enqueue_unique(
        get_queue(redis(), item.queue),
        item.func,
        job_id=item.job_id,
        args=item.args,
        schedule=_schedule(),
        description=item.description,
        # -- issue 15 trace: the webhook's trace id in the job's meta --
        meta=activity_log.job_meta(),
        # -- end issue 15 trace --
    )
    return item.job_id


INLINE_MAX = 20
"""Deliveries or relays one ingest job makes itself; the rest of a larger message go to their jobs."""


def follow_up(items: list[FollowUp], received_at: str) -> list[str]:
    """Deliver (or relay) each item inline, as its job would; after the first inline attempt
    that fails (its job now retries it), and beyond :data:`INLINE_MAX`, the rest go to their jobs
    at once (the destination is likely down: no ingest waits on it item after item). Returns the
    job ids (those that ran inline included: their records are under those ids)."""
    inline = True
    # One item per job id: a message naming the same activity twice sends it once (its ledger
    # write waits for the job's end, so a second inline attempt in this job would not see it).
    unique: dict[str, FollowUp] = {}
    for item in items:
        unique.setdefault(item.job_id, item)
    for number, item in enumerate(unique.values()):
        if inline and number < INLINE_MAX:
            inline = _attempt_inline(item, received_at)
        else:
            enqueue_follow_up(item)
    return list(unique)


def _attempt_inline(item: FollowUp, received_at: str) -> bool:
    """One inline attempt of ``item`` (see the module docstring); ``False`` when it failed and
    its job was created for what follows (a retry, or the failed registry)."""
    client = redis()
    current = get_current_job()
    owner = current.id if current is not None else "direct"
    queue = get_queue(client, item.queue)
    # The dashboard lists the queues in RQ's set: the item's is one even if no job ever waits in it.
    register = functools.partial(_register_queue, queue.redis_queues_keys, queue.key)
    claim = claim_inline(client, item.ledger, item.job_id, Job.key_for(item.job_id), owner, register)
    if claim.job_exists:
        return True  # its job (queued, scheduled, running or failed) does the work, as before
    if not claim.claimed:  # another ingest job sends the same activity right now: its job checks later
        wait = client.ttl(inline_claim_key(item.job_id))
        _create_job(item, retries_left=len(_schedule()), delay=max(int(wait), 1))
        # For when the claim would expire, in case its holder dies. A holder that delivers makes
        # the job due at once (below); one that fails sets it to its retry. One that delivered
        # before the job existed could not: then the claim is gone and the receipt is there.
        with client.pipeline(transaction=False) as pipe:
            pipe.exists(inline_claim_key(item.job_id))
            pipe.exists(item.ledger)
            held, delivered = pipe.execute()
        if not held and delivered:
            _due_in(client, item.queue, item.job_id)
        return True
    try:
        with activity_log.inline_attempt(item.kind, item.job_id, item.args, redis, _all_secrets) as attempt:
            try:
                result = item.run(claim.recorded)
            except JobTimeoutException:
                raise  # the ingest job's own time is up: RQ handles it (the ingest runs again)
            except Exception as exc:
                retry_in = _after_inline_failure(item, exc)
                attempt.failed(exc, retry_in)
                return False
            attempt.succeeded(result)
            if result.get("status") == "delivered":
                _observe_delivered(client, item.destination, received_at)
            # Another webhook of the same activity that found this claim held created the item's
            # job for when the claim would expire (in case this attempt died): due now instead,
            # in the same round trip as the ledger's receipt, which its run finds. It waited the
            # claim's 5 minutes for nothing (make fuzz's drain gave up on such jobs, issue 16).
            completion.defer(client, lambda pipe: _due_in(pipe, item.queue, item.job_id))
            return True
    finally:
        release_inline(client, item.job_id)  # after the ledger write, in the same round trip


def _due_in(target: Any, queue_name: str, job_id: str, seconds: int = 0) -> None:
    """Make job ``job_id`` due in ``seconds`` if it is scheduled (RQ's scheduled registry, a
    sorted set scored by epoch second); a job not scheduled is left alone. ``target``: a Redis
    client, or a pipeline the caller executes."""
    key = ScheduledJobRegistry.key_template.format(queue_name)
    target.zadd(key, {job_id: int(time.time()) + max(seconds, 0)}, xx=True)


def _register_queue(queues_key: str, queue_key: str, pipe: Any) -> None:
    pipe.sadd(queues_key, queue_key)


def _after_inline_failure(item: FollowUp, exc: Exception) -> int | None:
    """Create the item's job after a failed inline attempt: scheduled after the retry policy's
    wait (returned, seconds), or, for a failure no retry fixes, in the failed registry with the
    reason (``None``). Counted and logged as the worker does a job's failed attempt."""
    schedule = _schedule()
    status = str(exc.status) if isinstance(exc, DestinationError) and exc.status else "none"
    reason = _failure_text(exc)
    client = redis()
    if isinstance(exc, FatalDestinationError | PayloadError) or len(schedule) < 1:
        _park_failed(item, reason)
        metrics.count_later(client, "delivery_failures", destination=item.destination, status=status)
        log.error("failed %s: %s", item.description, _failure_line(exc))
        return None
    retry_after = exc.retry_after if isinstance(exc, RetriableDestinationError) else None
    delay = next_delay(schedule, 0, retry_after)
    _create_job(item, retries_left=len(schedule) - 1, delay=delay, reschedule=True)  # the inline attempt was the first
    metrics.count_later(client, "delivery_retries", destination=item.destination, status=status)
    log.warning("retrying %s in %s s: %s", item.description, delay, _failure_line(exc))
    return delay


def _failure_line(exc: Exception) -> str:
    """A failed inline attempt in the worker's one line for a failed attempt (a connector
    error's own message, anything else prefixed by its type), secrets and emails masked."""
    text = str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
    return redaction.mask_emails(redaction.redact(" ".join(text.split()), _all_secrets()))


def _failure_text(exc: Exception) -> str:
    """A failed inline attempt's reason as the failed registry keeps it (its last line as a
    worker's traceback's would read), secrets and email addresses masked."""
    name = (
        type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__qualname__}"
    )
    text = f"attempted inline by the webhook's ingest job\n{name}: {exc}"
    return redaction.mask_emails(redaction.redact(text, _all_secrets()))


def _new_job(item: FollowUp, retries_left: int) -> Job:
    queue = get_queue(redis(), item.queue)
    job = queue.create_job(
        item.func,
        args=item.args,
        job_id=item.job_id,
        retry=retry_for(_schedule()),
        result_ttl=finished_job_ttl(),
        failure_ttl=FAILURE_TTL,
        description=item.description,
        # -- issue 15 trace: the webhook's trace id in the job's meta --
        meta=activity_log.job_meta() or None,
        # -- end issue 15 trace --
    )
    job.retries_left = retries_left
    return job


def _create_job(item: FollowUp, *, retries_left: int, delay: int, reschedule: bool = False) -> None:
    """The item's job, queued now (``delay`` 0) or scheduled, unless one of that id exists
    (``reschedule``: then an existing scheduled one is set to run after ``delay`` instead)."""
    queue = get_queue(redis(), item.queue)
    job = _new_job(item, retries_left)
    try:
        if delay <= 0:
            queue.enqueue_job(job, unique=True)
        else:
            queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay), unique=True)
    except DuplicateJobError:
        # Someone created it meanwhile: that job does the work. After a failed inline attempt
        # it can only be one that another webhook of the same activity created while this
        # attempt held the claim, for when the claim would expire: this failure's retry (its
        # Retry-After included) says when instead.
        if reschedule:
            _due_in(redis(), item.queue, item.job_id, delay)


def _park_failed(item: FollowUp, reason: str) -> None:
    """The item's job, straight in its failed registry with ``reason`` (unless one of that id
    exists), as a worker leaves a job whose failure no retry fixes: replayable, listed."""
    queue = get_queue(redis(), item.queue)
    job = _new_job(item, retries_left=0)
    job.ended_at = datetime.now(UTC)
    with redis().pipeline() as pipe:
        try:
            pipe.watch(job.key)  # type: ignore[no-untyped-call]
            if pipe.exists(job.key):
                pipe.unwatch()
                return
            pipe.multi()
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            queue.failed_job_registry.add(job, ttl=FAILURE_TTL, exc_string=reason, pipeline=pipe)
            Result.create_failure(job, FAILURE_TTL, exc_string=reason, pipeline=pipe)
            pipe.sadd(queue.redis_queues_keys, queue.key)  # the dashboard lists the queue
            pipe.execute()
        except WatchError:
            return  # created meanwhile: that job does the work


def _observe_delivered(client: Redis, destination: str, received_at: str) -> None:
    """Webhook-to-delivered seconds of an inline delivery (the worker observes its jobs')."""
    try:
        started = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return
    moment = started if started.tzinfo else started.replace(tzinfo=UTC)
    seconds = max((datetime.now(UTC) - moment).total_seconds(), 0.0)
    completion.defer(
        client, lambda pipe: metrics.observe(pipe, "webhook_to_delivered_seconds", seconds, destination=destination)
    )


@activity_log.recorded("delivery", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def deliver(activity_data: dict[str, Any], queued_for: str | None = None) -> dict[str, Any]:
    """Post one activity to the tenant's loyalty platform, exactly once.

    ``queued_for``: the platform the activity was queued for; when the tenant has another one now
    (changed or removed in the settings), the job ends ``ignored`` with that reason.
    """
    return deliver_activity(Activity.model_validate(activity_data), queued_for)


def deliver_activity(
    activity: Activity, queued_for: str | None, recorded: dict[str, Any] | NotLookedUp | None = NOT_LOOKED_UP
) -> dict[str, Any]:
    """What a ``deliver`` job does with its activity, and what ingest does inline (one path):
    the tenant and platform checks, then :func:`~connector.ledger.deliver_once`. ``recorded``:
    the ledger's value when the caller already read it (:func:`~connector.ledger.claim_inline`)."""
    try:
        tenant = tenant_config(activity.tenant)
    except UnsupportedEvent as gone:
        return _tenant_gone(activity.tenant, activity.source, gone)
    platform = tenant.loyalty.platform
    if queued_for is not None and queued_for != platform:
        now = "no loyalty platform" if isinstance(tenant.loyalty, UnconfiguredPlatform) else platform
        return _tenant_gone(
            tenant.name,
            activity.source,
            UnsupportedEvent(
                f"queued for {queued_for}, but the tenant's loyalty platform is now {now}; it was not sent "
                "(replay the webhook to send it to the new platform)",
                counter="platform_changed",
            ),
        )
    client = redis()

    def send() -> dict[str, Any]:
        skip = tenant.loyalty.skip_reason(activity.source)  # e.g. queued before the platform took it over
        if skip:
            raise UnsupportedEvent(skip, counter="platform_imports_source")
        destination = build_loyalty_destination(tenant, timeout=settings().http_timeout, redis=client)
        # -- issue 15 replay: a stale cached contact is resolved again, once --
        receipt: Receipt = deliver_with_fresh_contact(
            destination, activity, RedisContactCache(client, tenant.name, platform)
        )
        # -- end issue 15 replay --
        return {"platform": receipt.platform, "remote_id": receipt.remote_id, "created": receipt.created}

    try:
        result = deliver_once(
            client,
            ledger_key(tenant.name, platform, activity),
            platform,
            send,
            recorded=recorded,
        )
    except UnsupportedEvent as skipped:  # the platform takes this activity another way (or not at all)
        metrics.count_later(client, "ignored", tenant=tenant.name, source=activity.source, reason=skipped.counter)
        return {"status": "ignored", "reason": skipped.reason}
    unknown = activity.attributes.get(UNKNOWN_CURRENCY)
    if unknown is not None and result["status"] == "delivered":  # sent, but without its amount
        metrics.count_later(client, "ignored", tenant=tenant.name, source=activity.source, reason="unknown_currency")
        log.warning(
            "deliver %s %s to %s without its amount: currency %r is not an ISO 4217 code",
            activity.type,
            activity.business_key,
            platform,
            unknown,
        )
    return result


# -- issue 15 replay: stale contact ids --
def deliver_with_fresh_contact(destination: Any, activity: Activity, contacts: RedisContactCache) -> Receipt:
    """``destination.deliver``; when the platform answers that the contact id it was given is
    unknown (deleted or merged there since it was cached), forget the cached id and deliver once
    more, which resolves the contact again by email. Once only: a second stale answer fails the
    job (fatal) with the platform's reason."""
    from connector.errors import StaleContactError

    try:
        receipt: Receipt = destination.deliver(activity, contacts)
    except StaleContactError as stale:
        log.warning(
            "deliver %s %s to %s: contact %s is unknown there now; resolving the contact again",
            activity.type,
            activity.business_key,
            stale.destination,
            stale.contact_id,
        )
        metrics.count_later(contacts.client, "stale_contacts", destination=stale.destination or "platform")
        contacts.forget(activity.person.email)
        receipt = destination.deliver(activity, contacts)
    return receipt


# -- end issue 15 replay --


def relay_job_id(tenant: str, provider: str, event: LoyaltyEvent) -> str:
    """Deterministic id of the relay job for one event and ESP."""
    return make_job_id("relay", tenant, provider, event.source, event.event_id)


def relay_follow_ups(tenant: Tenant, events: list[LoyaltyEvent]) -> list[FollowUp]:
    """The relay of each event the tenant's ESP wants (the others are counted and skipped)."""
    found = []
    for event in events:
        reason = relay_skip_reason(tenant.esp, event.type)
        if reason is not None or tenant.esp is None:
            metrics.count_later(redis(), "ignored", tenant=tenant.name, source=event.source, reason="esp_filter")
            log.info("relay %s/%s skipped: %s", tenant.name, event.source, reason)
            continue
        provider = tenant.esp.provider
        found.append(
            FollowUp(
                kind="relay",
                job_id=relay_job_id(tenant.name, provider, event),
                args=(event.model_dump(mode="json"), provider),
                description=f"relay {event.type} {event.source}:{event.event_id} to {provider}",
                destination=provider,
                ledger=relay_ledger_key(tenant.name, provider, event),
                run=functools.partial(relay_event, event, provider),
            )
        )
    return found


def enqueue_relays(tenant: Tenant, events: list[LoyaltyEvent]) -> list[str]:
    """One unique relay job per event the tenant's ESP wants; returns their ids."""
    return [enqueue_follow_up(item) for item in relay_follow_ups(tenant, events)]


@activity_log.recorded("relay", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def relay(event_data: dict[str, Any], queued_for: str | None = None) -> dict[str, Any]:
    """Send one loyalty event to the tenant's ESP, exactly once (ledger + the ESP's own dedup).

    ``queued_for``: the ESP the event was queued for; when the tenant has another one or none now,
    the job ends ``ignored`` with that reason.
    """
    return relay_event(LoyaltyEvent.model_validate(event_data), queued_for)


def relay_event(
    event: LoyaltyEvent, queued_for: str | None, recorded: dict[str, Any] | NotLookedUp | None = NOT_LOOKED_UP
) -> dict[str, Any]:
    """What a ``relay`` job does with its event, and what ingest does inline (one path): the
    tenant and ESP checks, then :func:`~connector.ledger.deliver_once`."""
    try:
        tenant = tenant_config(event.tenant)
    except UnsupportedEvent as gone:
        return _tenant_gone(event.tenant, event.source, gone)
    current = tenant.esp.provider if tenant.esp is not None else None
    if tenant.esp is None or (queued_for is not None and queued_for != current):
        now = f"now {current}" if current else "removed"
        return _tenant_gone(
            tenant.name,
            event.source,
            UnsupportedEvent(
                f"queued for {queued_for or 'the email provider'}, but the tenant's email provider is {now}; "
                "it was not sent",
                counter="esp_changed",
            ),
        )
    provider = tenant.esp.provider
    esp_config = tenant.esp
    client = redis()

    def send() -> dict[str, Any]:
        esp = build_esp_client(esp_config, client, timeout=settings().http_timeout, tenant=tenant.name)
        esp.hide(event.email)  # an ESP echoing the address must not put it in the failed-job reason
        receipt = esp.send(event, esp_config.event_name(event.type))
        return {
            "provider": receipt.provider,
            "name": receipt.name,
            "status": receipt.status,
            "remote_id": receipt.remote_id,
        }

    result = deliver_once(
        client,
        relay_ledger_key(tenant.name, provider, event),
        provider,
        send,
        recorded=recorded,
    )
    if result["status"] == "delivered":
        receipt = result["receipt"]
        log.info("relay %s %s:%s to %s: %s", event.type, event.source, event.event_id, provider, receipt["status"])
    return result


def enqueue_erasure(env: Envelope, request: ErasureRequested) -> str:
    """Enqueue ``erase_guest`` for an erasure request (arguments hold hashes only)."""
    hashes = sorted(request.subject_hashes)
    job_id = make_job_id("erase", env.tenant, env.source, env.delivery_id, *hashes)
    enqueue_unique(
        get_queue(redis(), INGEST_QUEUE),
        "connector.jobs.erase_guest",
        job_id=job_id,
        args=(env.tenant, env.source, hashes, env.received_at),
        schedule=_schedule(),
        description=f"erase a guest for {env.tenant} ({env.source} request)",
        # -- issue 15 trace: the webhook's trace id in the job's meta --
        meta=activity_log.job_meta(),
        # -- end issue 15 trace --
        at_front=True,  # before the guest's queued webhooks, which deliver in their ingest jobs
        result_ttl=RESULT_TTL,  # the trace shows an erasure's end by its job (it keeps no record)
    )
    return job_id


# -- issue 15 trace: the job runs in its trace's log context --
@activity_log.traced("erasure", lambda tenant, source, *_: (str(tenant), str(source)))
# -- end issue 15 trace --
@apply_retry_policy(_schedule)
def erase_guest(tenant: str, source: str, subject_hashes: list[str], requested_at: str) -> dict[str, Any]:
    """Forget what the connector holds for a guest (see :mod:`connector.erasure`)."""
    outcome = erasure.erase(
        redis(), tenant=tenant, source=source, subject_hashes=subject_hashes, requested_at=requested_at
    )
    forget_local_contacts(tenant, subject_hashes)  # this process's; the others' expire (LOCAL_CONTACT_TTL)
    return outcome


# -- Shopify reconciliation (issue 13) -------------------------------------------------------


# -- issue 15 trace: the job runs in its own trace (its job id) --
@activity_log.traced("reconciliation", lambda shop, *_: ("", "shopify"))
# -- end issue 15 trace --
@apply_retry_policy(_schedule)
def reconcile_shopify(shop: str) -> dict[str, Any]:
    """One reconciliation pass over a Shopify shop's orders (see
    :mod:`connector.vendors.shopify.reconcile`; imported here, not at module level, so that the
    Admin API client is loaded only by the processes that run this job)."""
    from connector.vendors.shopify import reconcile

    return reconcile.reconcile_shop(shop)


def schedule_shopify_reconciliations(now: float | None = None) -> list[str]:
    """Enqueue this period's reconciliation of every installed shop (idempotent per period)."""
    store = tenants().store
    if store is None:
        return []
    from connector.vendors.shopify import reconcile

    return reconcile.schedule_reconciliations(redis(), store, settings().shopify_reconcile_interval, now)
