"""``GET /app/<tenant>/loyalty``: the tenant's Loyalty platform page (placeholder until its section lands)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


@bp.get("/<tenant>/loyalty")
@tenant_page
def loyalty(tenant: TenantView) -> Response:
    """The Loyalty platform page."""
    return render("merchant/overview.html", tenant=tenant)
