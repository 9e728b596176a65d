"""RQ entry points: the only place where translation meets I/O.

``ingest`` runs once per accepted webhook: it translates the stored payload (pure) and enqueues
one ``deliver`` job per activity under a deterministic id (or, for loyalty events coming back from
a platform, one ``relay`` job per event). ``deliver`` resolves the contact and posts one activity;
``relay`` sends one event to the tenant's ESP. Both consult the local ledger first so that a
replayed or redelivered job never posts twice (:mod:`connector.ledger`); every job follows
:mod:`connector.retry`. Arguments are JSON-safe and hold no secrets (the dashboard shows them).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from typing import Any

from redis import Redis

from connector import activity_log, erasure, metrics, stays
from connector.activities import UNKNOWN_CURRENCY, Activity, LoyaltyEvent, hash_identifier
from connector.directory import TenantDirectory
from connector.errors import ErasureRequested, UnsupportedEvent
from connector.esps.base import build_esp_client
from connector.esps.config import relay_skip_reason
from connector.ledger import deliver_once, ledger_key, relay_ledger_key
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
    get_queue,
    make_job_id,
)
from connector.retry import apply_retry_policy, retry_for
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
    metrics.count(redis(), "ignored", tenant=tenant, source=source, reason=gone.counter)
    log.info("job of %s/%s ignored: %s", tenant, source, gone.reason)
    return {"status": "ignored", "reason": gone.reason}


class RedisContactCache:
    """Email → contact id memo per tenant and platform, keyed by a hash of the email."""

    def __init__(self, client: Redis, tenant: str, platform: str) -> None:
        self.client = client
        self.prefix = f"connector:contact:{tenant}:{platform}:"

    def get(self, email: str) -> str | None:
        """Cached contact id, if any."""
        value = self.client.get(self.prefix + hash_identifier(email))
        return value.decode() if isinstance(value, bytes) else value

    def set(self, email: str, contact_id: str) -> None:
        """Remember a contact id for a day."""
        self.client.set(self.prefix + hash_identifier(email), contact_id, ex=CONTACT_TTL)

    # -- issue 15 replay: stale contact ids --
    def forget(self, email: str) -> None:
        """Drop a cached id the platform no longer knows (see :func:`deliver_with_fresh_contact`)."""
        self.client.delete(self.prefix + hash_identifier(email))

    # -- end issue 15 replay --


def _all_secrets() -> tuple[str, ...]:
    """What every activity record is redacted with (as the worker redacts failure reasons)."""
    return tenants().secrets()


def delivery_job_id(tenant: str, platform: str, activity: Activity) -> str:
    """Deterministic id of the delivery job for one activity."""
    return make_job_id("deliver", tenant, platform, activity.type, activity.business_key)


@activity_log.recorded("webhook", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def ingest(envelope: dict[str, str], body: str) -> dict[str, Any]:
    """Translate one accepted webhook and enqueue a delivery job per activity."""
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
            return {"status": "translated", "relays": enqueue_relays(tenant, events)}
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
        metrics.count(redis(), "ignored", tenant=env.tenant, source=env.source, reason=ignored.counter)
        log.info("ingest %s/%s ignored: %s", env.tenant, env.source, ignored.reason)
        return {"status": "ignored", "reason": ignored.reason}
    for skipped in activities.skipped if isinstance(activities, Translation) else ():
        metrics.count(redis(), "ignored", tenant=env.tenant, source=env.source, reason=skipped.counter)
        log.warning("ingest %s/%s skipped part of the message: %s", env.tenant, env.source, skipped.reason)
    stay_groups, others = group_stays(activities)
    # -- issue 15 trace: the trace findable by the stays' business keys and emails (hashed) --
    activity_log.index_translation(redis(), [(a.business_key, a.person.email) for g in stay_groups.values() for a in g])
    # -- end issue 15 trace --
    deliveries = enqueue_deliveries(tenant, others)
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
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            description=f"deliver {activity.type} {activity.business_key} to {platform}",
            # -- issue 15 trace: the webhook's trace id in the job's meta --
            meta=activity_log.job_meta() or None,
            # -- end issue 15 trace --
        )
        queue.enqueue_job(job, pipeline=pipe)
        return job_id

    return write


def enqueue_deliveries(tenant: Tenant, activities: list[Activity]) -> list[str]:
    """One unique delivery job per activity; returns their ids."""
    queue = get_queue(redis(), DELIVERY_QUEUE)
    platform = tenant.loyalty.platform
    # -- issue 15 trace: the current trace (ingest, reconciliation) findable by business key and email --
    activity_log.index_translation(redis(), [(a.business_key, a.person.email) for a in activities])
    # -- end issue 15 trace --
    ids = []
    for activity in activities:
        job_id = delivery_job_id(tenant.name, platform, activity)
        enqueue_unique(
            queue,
            "connector.jobs.deliver",
            job_id=job_id,
            args=(activity.model_dump(mode="json"), platform),
            schedule=_schedule(),
            description=f"deliver {activity.type} {activity.business_key} to {platform}",
            # -- issue 15 trace: the webhook's trace id in the job's meta --
            meta=activity_log.job_meta(),
            # -- end issue 15 trace --
        )
        ids.append(job_id)
    return ids


@activity_log.recorded("delivery", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def deliver(activity_data: dict[str, Any], queued_for: str | None = None) -> dict[str, Any]:
    """Post one activity to the tenant's loyalty platform, exactly once.

    ``queued_for``: the platform the activity was queued for; when the tenant has another one now
    (changed or removed in the settings), the job ends ``ignored`` with that reason.
    """
    activity = Activity.model_validate(activity_data)
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
        result = deliver_once(client, ledger_key(tenant.name, platform, activity), platform, send)
    except UnsupportedEvent as skipped:  # the platform takes this activity another way (or not at all)
        metrics.count(client, "ignored", tenant=tenant.name, source=activity.source, reason=skipped.counter)
        return {"status": "ignored", "reason": skipped.reason}
    unknown = activity.attributes.get(UNKNOWN_CURRENCY)
    if unknown is not None and result["status"] == "delivered":  # sent, but without its amount
        metrics.count(client, "ignored", tenant=tenant.name, source=activity.source, reason="unknown_currency")
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
        metrics.count(contacts.client, "stale_contacts", destination=stale.destination or "platform")
        contacts.forget(activity.person.email)
        receipt = destination.deliver(activity, contacts)
    return receipt


# -- end issue 15 replay --


def relay_job_id(tenant: str, provider: str, event: LoyaltyEvent) -> str:
    """Deterministic id of the relay job for one event and ESP."""
    return make_job_id("relay", tenant, provider, event.source, event.event_id)


def enqueue_relays(tenant: Tenant, events: list[LoyaltyEvent]) -> list[str]:
    """One unique relay job per event the tenant's ESP wants; returns their ids."""
    queue = get_queue(redis(), RELAY_QUEUE)
    ids = []
    for event in events:
        reason = relay_skip_reason(tenant.esp, event.type)
        if reason is not None or tenant.esp is None:
            metrics.count(redis(), "ignored", tenant=tenant.name, source=event.source, reason="esp_filter")
            log.info("relay %s/%s skipped: %s", tenant.name, event.source, reason)
            continue
        provider = tenant.esp.provider
        job_id = relay_job_id(tenant.name, provider, event)
        enqueue_unique(
            queue,
            "connector.jobs.relay",
            job_id=job_id,
            args=(event.model_dump(mode="json"), provider),
            schedule=_schedule(),
            description=f"relay {event.type} {event.source}:{event.event_id} to {provider}",
            # -- issue 15 trace: the webhook's trace id in the job's meta --
            meta=activity_log.job_meta(),
            # -- end issue 15 trace --
        )
        ids.append(job_id)
    return ids


@activity_log.recorded("relay", redis, _all_secrets)  # outside the retry policy: sees if RQ retries
@apply_retry_policy(_schedule)
def relay(event_data: dict[str, Any], queued_for: str | None = None) -> dict[str, Any]:
    """Send one loyalty event to the tenant's ESP, exactly once (ledger + the ESP's own dedup).

    ``queued_for``: the ESP the event was queued for; when the tenant has another one or none now,
    the job ends ``ignored`` with that reason.
    """
    event = LoyaltyEvent.model_validate(event_data)
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

    result = deliver_once(client, relay_ledger_key(tenant.name, provider, event), provider, send)
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
    )
    return job_id


# -- issue 15 trace: the job runs in its trace's log context --
@activity_log.traced("erasure", lambda tenant, source, *_: (str(tenant), str(source)))
# -- end issue 15 trace --
@apply_retry_policy(_schedule)
def erase_guest(tenant: str, source: str, subject_hashes: list[str], requested_at: str) -> dict[str, Any]:
    """Forget what the connector holds for a guest (see :mod:`connector.erasure`)."""
    return erasure.erase(
        redis(), tenant=tenant, source=source, subject_hashes=subject_hashes, requested_at=requested_at
    )


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
