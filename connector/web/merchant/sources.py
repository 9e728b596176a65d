"""``GET /app/<tenant>/sources``: the tenant's Sources page (placeholder until its section lands)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


@bp.get("/<tenant>/sources")
@tenant_page
def sources(tenant: TenantView) -> Response:
    """The Sources page."""
    return render("merchant/overview.html", tenant=tenant)
