"""Reconciliation and backfill: the paid orders whose webhook never came, found and posted once.

Shopify does not guarantee webhook delivery and asks apps to reconcile (shopify.dev webhooks
best practices, "Implement reconciliation jobs"). Per installed shop, every
``settings.shopify_reconcile_interval`` seconds, :func:`reconcile_shop` asks the GraphQL Admin API
for the orders updated since the shop's watermark (``connector:shopify:watermark:<shop>``, ISO
8601; first run: the installation time) minus :data:`OVERLAP` for clock skew, turns each paid order
into the webhook shape (:mod:`connector.vendors.shopify.order_shape`) and through the Shopify
source's own translation, and enqueues the deliveries with :func:`connector.jobs.enqueue_deliveries`,
exactly as ``ingest`` does. Same business key, same delivery job id, same ledger: an order already
delivered by its webhook is not posted again. The watermark advances after each page to the
latest ``updatedAt`` seen (Shopify's clock, not ours).

Scheduling: the worker's scheduler process (:class:`connector.worker.ConnectorScheduler`, one
per deployment holds its locks) calls :func:`schedule_reconciliations` every
:data:`SCHEDULE_CHECK_SECONDS`; it enqueues one ``connector.jobs.reconcile_shopify`` job per
installed shop and period under a deterministic id (shop, period number), so however many
processes ask, a shop is reconciled once per period. Uninstalled shops are not scheduled, and a
queued job of a shop uninstalled meanwhile ends ``ignored``.

``connector backfill`` uses :func:`sync_orders` on demand over a date range (watermark untouched).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq.exceptions import DuplicateJobError

from connector import jobs, metrics
from connector.activities import Activity
from connector.errors import PayloadError, UnsupportedEvent
from connector.ledger import ledger_key
from connector.queue import DELIVERY_QUEUE, FAILURE_TTL, RESULT_TTL, get_queue, make_job_id
from connector.retry import retry_for
from connector.settings import Settings, Tenant
from connector.sources.base import Envelope, TranslationContext, translation_guard
from connector.sources.registry import SOURCES
from connector.vendors.shopify import orders
from connector.vendors.shopify.admin import ShopifyAdminClient
from connector.vendors.shopify.installations import InstallationStore
from connector.vendors.shopify.order_shape import OrderShapeError, counts_for, to_webhook_order
from connector.vendors.shopify.orders import iter_pages, search_query
from connector.vendors.shopify.source import ShopifyConfig

log = logging.getLogger(__name__)

WATERMARK_PREFIX = "connector:shopify:watermark:"
OVERLAP = timedelta(minutes=5)
SCHEDULE_CHECK_SECONDS = 30.0
RECONCILE_TIMEOUT = 1800
"""Seconds one reconciliation job may run (many pages, throttle waits); its progress is kept per page."""
RECONCILE_FUNC = "connector.jobs.reconcile_shopify"


def watermark_key(shop: str) -> str:
    """Redis key of a shop's reconciliation watermark."""
    return WATERMARK_PREFIX + shop


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; a date alone is midnight UTC), as an aware UTC datetime.

    Raises:
        ValueError: not an ISO 8601 time.
    """
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def shopify_time(moment: datetime) -> str:
    """A time as Shopify's search syntax takes it (UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_watermark(redis: Redis, shop: str) -> str | None:
    """The latest ``updatedAt`` a reconciliation of ``shop`` has seen, or ``None``."""
    raw = redis.get(watermark_key(shop))
    return raw.decode() if isinstance(raw, bytes) else raw


def advance_watermark(redis: Redis, shop: str, value: str) -> None:
    """Move the watermark to ``value`` unless it is already later (it never goes back)."""
    current = read_watermark(redis, shop)
    if current is None or parse_time(value) > parse_time(current):
        redis.set(watermark_key(shop), value)


@dataclass
class Summary:
    """What one pass over a shop's orders found and did."""

    shop: str
    tenant: str
    dry_run: bool = False
    seen: int = 0
    paid: int = 0
    queued: int = 0  # delivery jobs enqueued (in a dry run: that would be)
    already_delivered: int = 0
    ignored: int = 0  # paid, but no activity (test order, no email, unreadable)
    pages: int = 0
    latest_update: str | None = None
    would_post: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (the job's result; no personal data)."""
        return asdict(self)


def translate(tenant: Tenant, config: ShopifyConfig, node: dict[str, Any], now: datetime) -> Activity:
    """One GraphQL order → its activity through the Shopify source's own translation.

    Raises:
        UnsupportedEvent: test order, no email (as for its webhook).
        PayloadError: the order cannot be read.
    """
    try:
        payload = to_webhook_order(node)
    except OrderShapeError as exc:
        raise PayloadError(str(exc)) from exc
    envelope = Envelope(
        source="shopify",
        tenant=tenant.name,
        event_type="orders/paid",
        delivery_id=f"reconcile:{payload['id']}",
        received_at=now.isoformat(),
    )
    context = TranslationContext(tenant=tenant.name, timezone=tenant.zone, platform=tenant.loyalty.platform, now=now)
    with translation_guard("shopify order"):
        activities = SOURCES["shopify"].to_activities(envelope, payload, context, config)
    if len(activities) != 1:
        raise PayloadError(f"the order made {len(activities)} activities")
    return activities[0]


def sync_orders(
    redis: Redis,
    tenant: Tenant,
    client: ShopifyAdminClient,
    query: str,
    *,
    dry_run: bool = False,
    keep_watermark: bool = False,
    on_page: Callable[[Summary], None] | None = None,
    page_size: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Page through the orders matching ``query``; enqueue a delivery for each paid order not
    delivered yet (``dry_run``: only list them). ``keep_watermark``: advance the shop's watermark
    after each page. Nothing in a dry run changes Redis."""
    config = tenant.sources.get("shopify")
    if not isinstance(config, ShopifyConfig):
        raise PayloadError(f"tenant {tenant.name!r} has no Shopify source")
    shop = config.shop_domain
    platform = tenant.loyalty.platform
    summary = Summary(shop=shop, tenant=tenant.name, dry_run=dry_run)
    latest: datetime | None = None
    size = page_size or orders.PAGE_SIZE  # read now: tests and operators may lower it
    for page in iter_pages(client, query, page_size=size, sleep=sleep):
        summary.pages += 1
        now = datetime.now(UTC)
        new: list[Activity] = []
        for node in page.nodes:
            summary.seen += 1
            updated = node.get("updatedAt")
            if isinstance(updated, str):
                try:
                    moment = parse_time(updated)
                except ValueError:
                    moment = None
                if moment is not None and (latest is None or moment > latest):
                    latest, summary.latest_update = moment, updated
            if not counts_for(node, config.topics):
                continue
            summary.paid += 1
            try:
                activity = translate(tenant, config, node, now)
            except (UnsupportedEvent, PayloadError) as exc:
                reason = exc.counter if isinstance(exc, UnsupportedEvent) else "unreadable"
                summary.ignored += 1
                summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
                continue
            if redis.exists(ledger_key(tenant.name, platform, activity)):
                summary.already_delivered += 1
                continue
            summary.queued += 1
            if dry_run:
                summary.would_post.append(
                    {
                        "business_key": activity.business_key,
                        "order": activity.attributes.get("order_name"),
                        "happened_at": activity.happened_at.isoformat(),
                        "spend": activity.spend,
                        "currency": activity.currency_code,
                    }
                )
            else:
                new.append(activity)
        if new:
            jobs.enqueue_deliveries(tenant, new)  # the one path ingest uses
        if keep_watermark and not dry_run and summary.latest_update:
            advance_watermark(redis, shop, summary.latest_update)
        if on_page is not None:
            on_page(summary)
    if not dry_run:
        for outcome in ("queued", "already_delivered", "ignored"):
            amount = getattr(summary, outcome)
            if amount:
                metrics.count(redis, "reconciled", amount, tenant=tenant.name, source="shopify", outcome=outcome)
    return summary


def admin_client(settings: Settings, shop: str, token: str) -> ShopifyAdminClient:
    """The shop's Admin API client (``CONNECTOR_SHOPIFY_ADMIN_URL``, the pinned API version)."""
    version, timeout = settings.shopify_api_version, settings.http_timeout
    return ShopifyAdminClient(settings.shopify_admin(shop), api_version=version, token=token, timeout=timeout)


def reconcile_shop(shop: str, *, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The reconciliation job's body: one pass over ``shop``'s orders since its watermark."""
    settings = jobs.settings()
    directory = jobs.tenants()
    store = directory.store
    if store is None:
        return {"status": "ignored", "reason": "the Shopify app is not enabled"}
    installation = store.get(shop)
    token = store.token(shop) if installation is not None and installation.installed else None
    if installation is None or not installation.installed or token is None:
        return {"status": "ignored", "reason": f"{shop} does not have the app installed"}
    tenant = directory.by_shop(shop)
    if tenant is None:
        return {"status": "ignored", "reason": f"{shop} is not served by any tenant"}
    skip = tenant.loyalty.skip_reason("shopify")
    if skip:
        # Its webhooks are answered ignored meanwhile; the orders of that time are not posted later.
        advance_watermark(jobs.redis(), shop, shopify_time(datetime.now(UTC)))
        return {"status": "ignored", "reason": skip}
    redis = jobs.redis()
    start = read_watermark(redis, shop) or installation.installed_at
    since = shopify_time(parse_time(start) - OVERLAP)
    client = admin_client(settings, shop, token)
    summary = sync_orders(redis, tenant, client, search_query(since), keep_watermark=True, sleep=sleep)
    log.info(
        "reconciled %s since %s: %d orders, %d paid, %d queued, %d already delivered",
        shop,
        since,
        summary.seen,
        summary.paid,
        summary.queued,
        summary.already_delivered,
    )
    return {"status": "reconciled", "since": since, **summary.as_dict()}


def period_of(shop: str, interval: int, now: float) -> int:
    """The number of the reconciliation period ``now`` falls in for ``shop`` (periods are offset
    per shop, so that the shops of a deployment are not all reconciled at the same second)."""
    offset = int(hashlib.sha256(shop.encode()).hexdigest()[:8], 16) % max(interval, 1)
    return int((now + offset) // max(interval, 1))


def reconcile_job_id(shop: str, period: int) -> str:
    """Deterministic id of a shop's reconciliation job in one period."""
    return make_job_id("reconcile", shop, str(period))


def schedule_reconciliations(
    redis: Redis, store: InstallationStore, interval: int, now: float | None = None
) -> list[str]:
    """Enqueue this period's reconciliation of every installed shop that does not have it yet;
    returns the ids enqueued now (a second caller in the same period enqueues nothing)."""
    moment = time.time() if now is None else now
    queue = get_queue(redis, DELIVERY_QUEUE)
    enqueued = []
    for installation in store.installed():
        job_id = reconcile_job_id(installation.shop, period_of(installation.shop, interval, moment))
        try:
            queue.enqueue(
                RECONCILE_FUNC,
                args=(installation.shop,),
                job_id=job_id,
                unique=True,
                retry=retry_for(jobs.settings().retry_schedule),
                result_ttl=max(RESULT_TTL, 2 * interval),  # the id stays taken for the whole period
                failure_ttl=max(FAILURE_TTL, 2 * interval),
                job_timeout=RECONCILE_TIMEOUT,
                description=f"reconcile the Shopify orders of {installation.shop}",
            )
        except DuplicateJobError:
            continue
        enqueued.append(job_id)
    return enqueued
