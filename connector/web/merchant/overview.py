"""``GET /app/<tenant>/``: a tenant's overview: what is connected, what to do next, and whether
webhooks arrive and deliveries fail (from :mod:`connector.activity_log`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from redis import Redis
from werkzeug.wrappers import Response

from connector import activity_log
from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


def _steps(tenant: TenantView) -> list[dict[str, Any]]:
    """The set-up checklist: each step, whether it is done, and where it is done."""
    served = tenant.served
    sources = sorted(name for name in (served.sources if served else {}) if name != "shopify" or not tenant.shop)
    return [
        {
            "title": "Choose the loyalty platform",
            "done": tenant.loyalty_chosen,
            "detail": served.loyalty.platform if served and tenant.loyalty_chosen else "activities wait for it",
            "endpoint": "merchant.loyalty",
        },
        {
            "title": "Connect the systems that send webhooks",
            "done": bool(sources) or bool(tenant.shop),
            "detail": ", ".join(["shopify (the app)"] * bool(tenant.shop) + sources) or "no source yet",
            "endpoint": "merchant.sources",
        },
        {
            "title": "Connect the email provider (optional)",
            "done": bool(served and served.esp),
            "detail": served.esp.provider if served and served.esp else "loyalty events are not relayed",
            "endpoint": "merchant.email",
        },
    ]


@bp.get("/<tenant>/")
@tenant_page
def overview(tenant: TenantView) -> Response:
    """The tenant's settings at a glance, the next step, and the activity's health."""
    redis: Redis = current_app.extensions["connector.redis"]
    sources = list(tenant.served.sources) if tenant.served else []
    seen = activity_log.last_seen(redis, tenant.name, sources) if sources else {}
    latest: datetime | None = max((moment for moment in seen.values() if moment), default=None)
    zone = tenant.served.zone if tenant.served else None
    return render(
        "merchant/overview.html",
        tenant=tenant,
        steps=_steps(tenant),
        failures=len(activity_log.failures(redis, tenant.name)),
        last_webhook=latest.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if latest and zone else None,
    )
