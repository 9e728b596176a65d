"""``GET /app/<tenant>/``: a tenant's overview: where it comes from, what is connected."""

from __future__ import annotations

from werkzeug.wrappers import Response

from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, tenant_page


@bp.get("/<tenant>/")
@tenant_page
def overview(tenant: TenantView) -> Response:
    """The tenant's settings at a glance, with a link to each section."""
    return render("merchant/overview.html", tenant=tenant)
