"""``GET /app/<tenant>/activity``: the tenant's Activity page (placeholder until its section lands)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


@bp.get("/<tenant>/activity")
@tenant_page
def activity(tenant: TenantView) -> Response:
    """The Activity page."""
    return render("merchant/overview.html", tenant=tenant)
