"""Shopify's mandatory compliance topics as jobs: ``customers/redact``, ``shop/redact`` and
``customers/data_request`` (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance).

The web tier (:mod:`connector.web.shopify_webhooks`) verifies the webhook and enqueues one of the
jobs below with a :class:`ComplianceRequest`-shaped dict: the customer's email and phone only as
:func:`~connector.activities.hash_identifier` digests, so no job argument holds personal data.
Each job follows the connector's retry policy (an erasure waiting for a running job of the customer
is retried) and leaves a record without personal data:

* ``customers/redact`` → :func:`redact_customer`: :func:`connector.erasure.erase` for the tenant,
  the customer's email (and phone) digests, plus the orders listed in ``orders_to_redact`` (their
  ingest and delivery jobs, by order id and business key): job arguments and results in every
  queue and registry, cached contact ids. Ledger entries, attempt markers, stay state and dedup
  markers hold digests, states and remote ids only and are kept (nothing is posted twice).
  Receipt: ``connector:erasure:<tenant>:<digest>``.
* ``shop/redact`` → :func:`redact_shop`: every job of the tenant (or naming the shop), its contact
  cache, erasure receipts, data-request reports, reconciliation watermark
  (:func:`watermark_key`), metrics fields labelled with the tenant, and the installation itself;
  the ledger, stay state, attempt and dedup markers too unless the tenants file still serves the
  shop (then they keep it exactly-once). Receipt: :func:`shop_receipt_key`.
* ``customers/data_request`` → :func:`report_customer`: a JSON report of the jobs (id, function,
  status, dates) and keys held about the customer, under :func:`report_key`, for support staff.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import get_current_job

from connector import erasure, jobs, metrics
from connector.activities import hash_identifier
from connector.errors import PayloadError
from connector.metrics import COUNTERS_KEY
from connector.queue import INGEST_QUEUE
from connector.retry import apply_retry_policy
from connector.vendors.shopify.installations import InstallationStore

log = logging.getLogger(__name__)

REPORT_TTL = 90 * 24 * 3600
"""How long a data-request report is kept for support staff."""
RECEIPT_TTL = erasure.ERASURE_TTL
COMPLIANCE_QUEUE = INGEST_QUEUE
REDACT_CUSTOMER = "connector.vendors.shopify.compliance.redact_customer"
REDACT_SHOP = "connector.vendors.shopify.compliance.redact_shop"
REPORT_CUSTOMER = "connector.vendors.shopify.compliance.report_customer"


def watermark_key(shop: str) -> str:
    """The reconciliation watermark of a shop (written by the reconciliation job)."""
    return f"connector:shopify:watermark:{shop}"


def report_key(shop: str, request_id: str) -> str:
    """Where the report of a ``customers/data_request`` is kept for support staff."""
    return f"connector:shopify:data-request:{shop}:{request_id}"


def shop_receipt_key(shop: str) -> str:
    """The receipt of a ``shop/redact`` (no personal data)."""
    return f"connector:shopify:shop-redact:{shop}"


def phone_digest(phone: str) -> str | None:
    """A phone number's digest over its digits (``None`` for fewer than 7: not a number)."""
    digits = re.sub(r"\D", "", phone)
    return hash_identifier(digits) if len(digits) >= 7 else None


def _schedule() -> tuple[int, ...]:
    return jobs.settings().retry_schedule


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _current_job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


def _store(redis: Redis) -> InstallationStore:
    settings = jobs.settings()
    return InstallationStore.open(redis, settings.secret_key.get_secret_value())


# -- matching a customer's jobs ---------------------------------------------------------------


def _order_ids(value: Any) -> set[int]:
    ids = set()
    for item in value if isinstance(value, list) else []:
        if isinstance(item, int) and not isinstance(item, bool):
            ids.add(item)
        elif isinstance(item, str) and item.isdigit():
            ids.add(int(item))
    return ids


def customer_jobs(request: dict[str, Any]) -> erasure.Selector:
    """Picks the jobs of the customer that :func:`connector.erasure.erase` would not find by their
    email: those of the orders in ``order_ids`` (the stored order webhook, the delivery of its
    activity) and those naming the customer's phone number."""
    shop = str(request["shop"])
    order_ids = _order_ids(request.get("order_ids"))
    business_keys = {f"shopify:{shop}:order:{order_id}" for order_id in order_ids}
    phones = set(request.get("phone_hashes") or ())

    def stored_order(items: list[Any]) -> bool:  # an ingest job: (envelope, the webhook body)
        if len(items) != 2 or not isinstance(items[0], dict) or items[0].get("source") != "shopify":
            return False
        if not isinstance(items[1], str) or items[1][:1] != "{":
            return False
        try:
            body = json.loads(items[1])
        except (ValueError, RecursionError):
            return False
        return isinstance(body, dict) and body.get("id") in order_ids

    def select(args: Any) -> bool:
        items = list(args) if isinstance(args, list | tuple) else [args]
        if any(isinstance(item, dict) and item.get("business_key") in business_keys for item in items):
            return True  # a delivery job of one of the orders
        if order_ids and stored_order(items):
            return True
        if phones:
            for text in erasure.job_strings(args):
                if 7 <= len(text) <= 32:
                    digest = phone_digest(text)
                    if digest is not None and digest in phones:
                        return True
        return False

    return select


def _subjects(request: dict[str, Any]) -> list[str]:
    return sorted({*(request.get("subject_hashes") or ()), *(request.get("phone_hashes") or ())})


def _check(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or not request.get("tenant") or not request.get("shop"):
        raise PayloadError("compliance request without tenant and shop")
    return request


# -- the jobs ------------------------------------------------------------------------------------


@apply_retry_policy(_schedule)
def redact_customer(request: dict[str, Any]) -> dict[str, Any]:
    """``customers/redact``: erase the customer's data for the shop's tenant (module docstring)."""
    request = _check(request)
    tenant = str(request["tenant"])
    result = erasure.erase(
        jobs.redis(),
        tenant=tenant,
        source="shopify",
        subject_hashes=_subjects(request),
        requested_at=str(request.get("requested_at") or _now()),
        current_job=_current_job_id(),
        also=customer_jobs(request),
    )
    log.info("customers/redact for %s: %s job(s) deleted", tenant, result["jobs_deleted"])
    return result


def _scan_delete(redis: Redis, pattern: str, keep: set[str] | None = None) -> int:
    deleted = 0
    for key in list(redis.scan_iter(match=pattern, count=1000)):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if keep and name in keep:
            continue
        deleted += int(redis.delete(key))
    return deleted


def _tenant_metric_fields(redis: Redis, tenant: str) -> list[str]:
    label = f"tenant={tenant.replace('|', '/')}"
    fields = []
    for raw in redis.hkeys(COUNTERS_KEY):
        field = raw.decode() if isinstance(raw, bytes) else str(raw)
        if label in field.split("|")[1:]:
            fields.append(field)
    return fields


@apply_retry_policy(_schedule)
def redact_shop(request: dict[str, Any]) -> dict[str, Any]:
    """``shop/redact``: erase everything held for the shop (module docstring)."""
    request = _check(request)
    tenant, shop = str(request["tenant"]), str(request["shop"]).lower()
    redis = jobs.redis()
    store = _store(redis)
    installation = store.get(shop)
    if installation is not None and installation.installed:  # installed again since: keep it all
        return {"status": "ignored", "reason": "the shop has the app installed again"}
    receipt_key = shop_receipt_key(shop)
    if installation is None and redis.exists(receipt_key):  # a redelivery of an erasure done
        return {"status": "already_erased"}
    file_tenant = tenant in jobs.settings().tenants  # still served from the tenants file

    named = re.compile(rf"(?<![A-Za-z0-9.-]){re.escape(shop)}(?![A-Za-z0-9-])", re.IGNORECASE)

    def of_shop(args: Any) -> bool:
        return erasure.of_tenant(args, tenant) or any(named.search(text) for text in erasure.job_strings(args))

    jobs_deleted = erasure.purge_jobs(redis, of_shop, _current_job_id())
    prefixes = ["contact", "erasure"] + ([] if file_tenant else ["ledger", "stay", "attempt", "seen"])
    # The Activity page's records (connector.activity_log) go with the tenant.
    prefixes += [] if file_tenant else ["activity"]
    keys_deleted = sum(_scan_delete(redis, f"connector:{prefix}:{tenant}:*") for prefix in prefixes)
    keys_deleted += int(redis.delete(watermark_key(shop)))
    for pattern in (f"connector:shopify:*:{shop}", f"connector:shopify:*:{shop}:*"):  # reports and the like
        keys_deleted += _scan_delete(redis, pattern, keep={receipt_key})
    metric_fields = [] if file_tenant else _tenant_metric_fields(redis, tenant)
    if metric_fields:
        redis.hdel(COUNTERS_KEY, *metric_fields)
    installation_deleted = store.delete(shop) if installation is not None else False
    record = {
        "topic": "shop/redact",
        "tenant": tenant,
        "requested_at": str(request.get("requested_at") or ""),
        "erased_at": _now(),
        "jobs_deleted": jobs_deleted,
        "keys_deleted": keys_deleted,
        "metric_fields_deleted": len(metric_fields),
        "installation_deleted": installation_deleted,
        "exactly_once_markers_kept": file_tenant,
    }
    with redis.pipeline() as pipe:
        pipe.set(receipt_key, json.dumps(record), ex=RECEIPT_TTL)
        metrics.count(pipe, "erasures", source="shopify_shop_redact")
        pipe.execute()
    log.info("shop/redact for tenant %s: %s job(s), %s key(s) deleted", tenant, jobs_deleted, keys_deleted)
    return {"status": "erased", **{k: v for k, v in record.items() if k != "tenant"}}


def _job_summary(redis: Redis, job_id: str, status: str) -> dict[str, Any]:
    fields = redis.hmget(f"{erasure.JOB_PREFIX}{job_id}", "origin", "created_at", "ended_at", "description")
    origin, created, ended, description = (f.decode() if isinstance(f, bytes) else f for f in fields)
    kind = (description or "").split(" ", 1)[0] or job_id.split("-", 1)[0]
    return {"id": job_id, "kind": kind, "queue": origin, "status": status, "created_at": created, "ended_at": ended}


def _held_keys(redis: Redis, tenant: str, subjects: list[str]) -> Iterator[str]:
    for subject in subjects:
        for pattern in (f"connector:contact:{tenant}:*:{subject}", erasure.erasure_key(tenant, subject)):
            for key in redis.scan_iter(match=pattern, count=500):
                yield key.decode() if isinstance(key, bytes) else str(key)


@apply_retry_policy(_schedule)
def report_customer(request: dict[str, Any]) -> dict[str, Any]:
    """``customers/data_request``: report what is held about the customer (module docstring)."""
    request = _check(request)
    tenant, shop = str(request["tenant"]), str(request["shop"])
    request_id = str(request.get("request_id") or "unknown")
    redis = jobs.redis()
    subjects = _subjects(request)
    select = erasure.guest_jobs(tenant, set(subjects), customer_jobs(request))
    held = [_job_summary(redis, job_id, status) for job_id, status in erasure.find_jobs(redis, select)]
    keys = sorted(set(_held_keys(redis, tenant, subjects)))
    by_status: dict[str, int] = {}
    for job in held:
        by_status[job["status"]] = by_status.get(job["status"], 0) + 1
    counts = {"jobs": len(held), "jobs_by_status": by_status, "keys": len(keys)}
    report = {
        "topic": "customers/data_request",
        "shop": shop,
        "tenant": tenant,
        "request_id": request_id,
        "customer_id": request.get("customer_id"),
        "requested_at": request.get("requested_at"),
        "generated_at": _now(),
        "jobs": sorted(held, key=lambda job: job["id"]),
        "keys": keys,
        "counts": counts,
        "note": "job arguments hold the customer's data as Shopify sent it (order webhooks) and as "
        "translated (activities); the loyalty platform holds its own copy",
    }
    with redis.pipeline() as pipe:
        pipe.set(report_key(shop, request_id), json.dumps(report), ex=REPORT_TTL)
        metrics.count(pipe, "data_requests", source="shopify")
        pipe.execute()
    log.info(
        "customers/data_request %s for tenant %s: %s job(s), %s key(s); report at %s",
        request_id,
        tenant,
        len(held),
        len(keys),
        report_key(shop, request_id),
    )
    return {"status": "reported", "key": report_key(shop, request_id), **counts}
