"""``GET /app/<tenant>/email``: the tenant's Email provider page (placeholder until its section lands)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


@bp.get("/<tenant>/email")
@tenant_page
def email(tenant: TenantView) -> Response:
    """The Email provider page."""
    return render("merchant/overview.html", tenant=tenant)
