"""``/app/<tenant>/loyalty``: choose the loyalty platform, enter its keys, test the connection.

The page is :class:`~connector.web.merchant.choice.ChosenTable` over ``PLATFORMS`` (``[loyalty]``
chosen by ``platform``): the fields come from the platform's own config model, so the page keeps
no list of vendors or keys of its own; secrets are write-only; saving another platform discards
the old one's table and keys (activities still queued for it end ``ignored``). A tenants-file
tenant is shown read-only.

``POST …/loyalty/test`` tests the *saved* settings through the check job
(:mod:`connector.web.merchant.checks`): the web tier never calls the platform itself.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from connector.platforms.base import UnconfiguredPlatform
from connector.platforms.registry import PLATFORMS
from connector.web.merchant.blueprint import bp
from connector.web.merchant.checks import connection_test, wait_seconds
from connector.web.merchant.choice import ChosenTable
from connector.web.merchant.pages import SettingsRefused, TenantView, render, tenant_page

LOYALTY = ChosenTable(
    key="loyalty",
    tag="platform",
    registry=PLATFORMS,
    noun="loyalty platform",
    served=lambda tenant: None if isinstance(tenant.loyalty, UnconfiguredPlatform) else tenant.loyalty,
)


def page(
    tenant: TenantView,
    chosen: str | None,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    typed: dict[str, Any] | None = None,
    check: dict[str, Any] | None = None,
    saved: bool = False,
) -> Response:
    """The page for ``chosen`` (``None``: only the choice), with what the last action said."""
    return render(
        "merchant/loyalty.html",
        status,
        tenant=tenant,
        **LOYALTY.context(tenant, chosen, typed),
        problems=problems or [],
        check=check,
        saved=saved,
        wait=wait_seconds(),
    )


@bp.get("/<tenant>/loyalty")
@tenant_page
def loyalty(tenant: TenantView) -> Response:
    """The Loyalty platform page (``?platform=`` picks the form to fill in)."""
    asked = LOYALTY.asked(tenant, request.args.get("platform"))
    if isinstance(asked, Response):
        return asked
    return page(tenant, asked, saved=request.args.get("saved") == "1")


@bp.post("/<tenant>/loyalty")
@tenant_page
def save_loyalty(tenant: TenantView) -> Response:
    """Save the chosen platform's table (POST-redirect-GET; a refusal re-renders with status 400)."""
    submitted = LOYALTY.read(tenant, request.form)
    if isinstance(submitted, Response):
        return submitted
    try:
        LOYALTY.save(tenant, submitted)
    except SettingsRefused as refused:
        return page(tenant, submitted.choice, status=400, problems=refused.problems, typed=submitted.table)
    return redirect(url_for("merchant.loyalty", tenant=tenant.name, saved="1"), code=303)


@bp.post("/<tenant>/loyalty/test")
@tenant_page
def test_loyalty(tenant: TenantView) -> Response:
    """Test the saved platform settings (the check job makes the platform's cheapest authenticated call)."""
    return page(tenant, LOYALTY.current(tenant), check=connection_test(tenant.name, "loyalty"))
