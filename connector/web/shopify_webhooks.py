"""``POST /shopify/webhooks``: the Shopify app's webhook URL (``shopify.app.toml`` points every app
subscription at it), registered when the app is enabled.

Every request is first verified: ``X-Shopify-Hmac-Sha256`` (or ``Shopify-Hmac-Sha256``), the base64
HMAC-SHA256 of the raw body with ``SHOPIFY_API_SECRET``, constant time. A missing or bad one is
answered 401, as Shopify requires of the mandatory compliance webhooks ("Privacy law compliance":
"If a mandatory compliance webhook sends a request with an invalid Shopify HMAC header, then the
app must return a 401 Unauthorized HTTP status"). Then by ``X-Shopify-Topic`` and
``X-Shopify-Shop-Domain``:

* order topics (``orders/paid``…): the installed shop's tenant, through exactly the per-tenant
  intake of ``/webhooks/<tenant>/shopify`` (:func:`connector.web.webhooks._intake`: the tenant's
  HMAC and shop check, identify, dedup, the same ingest job). A shop without a current
  installation (never installed, or uninstalled) is refused, 401, and no job is made.
* ``app/uninstalled``: the installation is marked uninstalled now (its token deleted), the
  directory refreshed; jobs of the tenant still queued end ``ignored`` (see
  :mod:`connector.vendors.shopify.lifecycle`).
* ``customers/redact``, ``shop/redact``, ``customers/data_request``: one job each
  (:mod:`connector.vendors.shopify.compliance`), answered 200 at once. The job arguments hold
  the customer's email and phone as digests only.
* any other topic: 200 ``ignored``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from connector import metrics
from connector.activities import hash_identifier, normalise_email
from connector.directory import TenantDirectory
from connector.errors import SignatureError
from connector.queue import INGEST_QUEUE, RESULT_TTL, enqueue_unique, make_job_id
from connector.settings import Settings
from connector.sources.base import BodyError, InboundRequest, decode_base64, require_any_hmac
from connector.vendors.shopify.installations import valid_shop
from connector.vendors.shopify.source import ORDER_TOPICS
from connector.vendors.shopify.source import SOURCE as SHOPIFY
from connector.web.errors import error_response
from connector.web.webhooks import REDIS_RETRY_AFTER, WsgiHeaders, _intake, _now, _read_post, read_json

bp = Blueprint("shopify_webhooks", __name__)

LABEL = "_shopify_app"
"""The ``tenant`` label of this URL's counters until a shop is routed (no tenant has that name)."""
UNINSTALLED = "app/uninstalled"
# The job functions by path: the web tier never imports the worker side.
COMPLIANCE_JOBS = {
    "customers/redact": "connector.vendors.shopify.compliance.redact_customer",
    "shop/redact": "connector.vendors.shopify.compliance.redact_shop",
    "customers/data_request": "connector.vendors.shopify.compliance.report_customer",
}


def _header(inbound: InboundRequest, name: str) -> str:
    return (inbound.header(f"x-shopify-{name}") or inbound.header(f"shopify-{name}") or "").strip()


def _count(metric: str, **labels: str) -> None:
    try:
        metrics.count(current_app.extensions["connector.redis"], metric, 1, **labels)
    except RedisError:
        pass


def _phone_digest(phone: Any) -> str | None:
    # The same digest as connector.vendors.shopify.compliance.phone_digest (digits only, >= 7).
    digits = "".join(ch for ch in str(phone or "") if ch.isdigit())
    return hash_identifier(digits) if len(digits) >= 7 else None


@bp.post("/shopify/webhooks")
def receive_app_webhook() -> Response | tuple[Response, int]:
    """One webhook of the Shopify app (see the module docstring)."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    extensions = current_app.extensions
    settings: Settings = extensions["connector.settings"]
    raw = _read_post(req, settings, SHOPIFY, LABEL, "shopify")
    if isinstance(raw, Response):
        return raw
    inbound = InboundRequest(raw, WsgiHeaders(req.environ), req.method, None, {}, _now(), parser=read_json)
    try:
        secret = settings.shopify_api_secret
        require_any_hmac(raw, decode_base64(_header(inbound, "hmac-sha256")), [secret] if secret else [])
    except SignatureError as exc:
        _count("webhooks", tenant=LABEL, source="shopify", outcome="unauthorized")
        return error_response(401, "invalid_signature", str(exc))
    topic = _header(inbound, "topic")
    shop = valid_shop(_header(inbound, "shop-domain"))
    if not topic or shop is None:
        _count("webhooks", tenant=LABEL, source="shopify", outcome="bad_payload")
        return error_response(400, "invalid_payload", "missing X-Shopify-Topic or a valid X-Shopify-Shop-Domain")
    tenants: TenantDirectory = extensions["connector.tenants"]
    try:
        if topic in ORDER_TOPICS:
            return _order(inbound, tenants, shop)
        if topic == UNINSTALLED:
            return _uninstalled(tenants, shop)
        if topic in COMPLIANCE_JOBS:
            return _compliance(inbound, tenants, settings, topic, shop)
    except RedisError:
        current_app.logger.warning("redis unavailable; answering 503 to the Shopify app webhook %s", topic)
        return error_response(
            503, "queue_unavailable", "the queue is unavailable; retry later", {"Retry-After": REDIS_RETRY_AFTER}
        )
    _count("ignored", tenant=LABEL, source="shopify", reason="app_topic_not_handled")
    return jsonify({"status": "ignored", "reason": f"topic {topic[:64]} is not handled by the connector"})


def _not_installed() -> Response | tuple[Response, int]:
    _count("webhooks", tenant=LABEL, source="shopify", outcome="unauthorized")
    return error_response(401, "not_installed", "the shop has not installed the app")


def _order(inbound: InboundRequest, tenants: TenantDirectory, shop: str) -> Response | tuple[Response, int]:
    """An order topic: the installed shop's tenant, on through the per-tenant intake."""
    installation = tenants.store.get(shop) if tenants.store is not None else None
    if installation is None or not installation.installed:
        return _not_installed()
    tenant_cfg = tenants.by_shop(shop)
    if tenant_cfg is None:  # installed a moment ago in another process: read the installations now
        tenants.refresh()
        tenant_cfg = tenants.by_shop(shop)
    if tenant_cfg is None or "shopify" not in tenant_cfg.sources:
        return _not_installed()
    return _intake(
        request.environ, inbound, tenant_cfg, "shopify", SHOPIFY, tenant_cfg.sources["shopify"], SHOPIFY.verify
    )  # issue 16 intake: _intake takes the environ the intake line reads


def _uninstalled(tenants: TenantDirectory, shop: str) -> Response:
    """``app/uninstalled``: stop serving the shop now (its token is deleted with it)."""
    installation = tenants.store.get(shop) if tenants.store is not None else None
    if tenants.store is None or installation is None or not installation.installed:
        return jsonify({"status": "ignored", "reason": "the shop has no current installation"})
    tenants.store.mark_uninstalled(shop)
    tenants.refresh()
    _count("webhooks", tenant=LABEL, source="shopify", outcome="uninstalled")
    current_app.logger.info("shopify app uninstalled by tenant %s", installation.tenant)
    return jsonify({"status": "uninstalled"})


def _compliance(
    inbound: InboundRequest, tenants: TenantDirectory, settings: Settings, topic: str, shop: str
) -> Response | tuple[Response, int]:
    """A mandatory compliance topic: its job, enqueued once per webhook id."""
    try:
        body = inbound.json()
    except BodyError as exc:
        return error_response(400, exc.code, str(exc))
    if not isinstance(body, dict):
        return error_response(400, "invalid_payload", "the body is not a JSON object")
    installation = tenants.store.get(shop) if tenants.store is not None else None
    served = tenants.by_shop(shop)
    tenant = installation.tenant if installation is not None else (served.name if served is not None else None)
    if tenant is None:
        _count("ignored", tenant=LABEL, source="shopify", reason="compliance_unknown_shop")
        return jsonify({"status": "ignored", "reason": "the connector holds nothing for this shop"})
    raw_customer = body.get("customer")
    customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
    email = normalise_email(customer.get("email") if isinstance(customer.get("email"), str) else None)
    phone = _phone_digest(customer.get("phone"))
    raw_request = body.get("data_request")
    data_request: dict[str, Any] = raw_request if isinstance(raw_request, dict) else {}
    webhook_id = _header(inbound, "webhook-id") or _header(inbound, "event-id")
    orders = body.get("orders_to_redact") if topic == "customers/redact" else body.get("orders_requested")
    job_request: dict[str, Any] = {
        "topic": topic,
        "tenant": tenant,
        "shop": shop,
        "requested_at": inbound.received_at,
        "webhook_id": webhook_id[:128],
    }
    if topic != "shop/redact":
        job_request.update(
            customer_id=customer.get("id") if isinstance(customer.get("id"), int | str) else None,
            subject_hashes=[hash_identifier(email)] if email else [],
            phone_hashes=[phone] if phone else [],
            order_ids=[o for o in orders if isinstance(o, int | str)][:10000] if isinstance(orders, list) else [],
            request_id=str(data_request.get("id") or webhook_id or "unknown")[:128],
        )
    identity = webhook_id or repr(sorted(job_request.items()))
    job_id = make_job_id("shopify-compliance", topic, shop, identity)
    created = enqueue_unique(
        current_app.extensions["connector.queues"][INGEST_QUEUE],
        COMPLIANCE_JOBS[topic],
        job_id=job_id,
        args=(job_request,),
        schedule=settings.retry_schedule,
        description=f"shopify {topic} for {tenant}",
        # shop/redact: once it succeeded its receipt is all that is left of the shop
        result_ttl=0 if topic == "shop/redact" else RESULT_TTL,
        # -- issue 16 jobs: ingest jobs deliver their orders themselves; an erasure overtakes them --
        at_front=True,
        # -- end issue 16 jobs --
    )
    _count("compliance", topic=topic, outcome="accepted" if created else "duplicate")
    return jsonify({"status": "accepted" if created else "duplicate", "job": job_id})
