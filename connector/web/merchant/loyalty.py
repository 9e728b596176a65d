"""``/app/<tenant>/loyalty``: choose the loyalty platform, enter its keys, test the connection.

Two steps that work without JavaScript: choose a platform (``?platform=…``, a GET), then fill in
its fields, which come from the platform's own config model (:func:`fields_of`), so the page
keeps no list of vendors or keys of its own. Secrets are write-only: the page shows their last four
characters and when they were set; a secret field left empty keeps the stored one. Saving another
platform discards the old platform's table and keys (the page says so); activities still queued
for the old platform end ``ignored``. A tenants-file tenant is shown read-only.

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
from connector.web.merchant.forms import fields_of, read_form, shown_values
from connector.web.merchant.pages import SettingsRefused, TenantView, refuse, render, save_settings, tenant_page


def saved_table(tenant: TenantView) -> dict[str, Any]:
    """The tenant's ``[loyalty]`` table as saved (the store's, else what is served), or ``{}``."""
    table = tenant.document.get("loyalty")
    if isinstance(table, dict):
        return table
    served = tenant.served
    if served is not None and not isinstance(served.loyalty, UnconfiguredPlatform):
        # A tenants-file tenant, or a shop that chose on the old Shopify page: shown, secrets never.
        return served.loyalty.model_dump()
    return {}


def secret_paths(platform: str, table: dict[str, Any]) -> list[str]:
    """The secret paths (``loyalty.api_key``) of a table of ``platform``."""
    return [f"loyalty.{f.name}" for f in fields_of(PLATFORMS[platform].config) if f.secret and f.name in table]


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
    table = saved_table(tenant)
    current = table.get("platform") if isinstance(table.get("platform"), str) else None
    fields = fields_of(PLATFORMS[chosen].config) if chosen else []
    same = chosen is not None and chosen == current
    values = shown_values(fields, typed if typed is not None else (table if same else None))
    hints = {}
    if same:
        hints = {f.name: h for f in fields if f.secret and (h := tenant.secret_hint(f"loyalty.{f.name}"))}
    return render(
        "merchant/loyalty.html",
        status,
        tenant=tenant,
        platforms=sorted(PLATFORMS),
        current=current,
        chosen=chosen,
        fields=fields,
        values=values,
        hints=hints,
        problems=problems or [],
        check=check,
        saved=saved,
        wait=wait_seconds(),
    )


@bp.get("/<tenant>/loyalty")
@tenant_page
def loyalty(tenant: TenantView) -> Response:
    """The Loyalty platform page (``?platform=`` picks the form to fill in)."""
    current = saved_table(tenant).get("platform")
    asked = request.args.get("platform") or (current if current in PLATFORMS else None)
    if asked is not None and asked not in PLATFORMS:
        return refuse(
            f"unknown loyalty platform {asked!r} (known: {', '.join(sorted(PLATFORMS))})", 400, "bad_platform"
        )
    if not tenant.editable:
        asked = current if current in PLATFORMS else None
    return page(tenant, asked, saved=request.args.get("saved") == "1")


@bp.post("/<tenant>/loyalty")
@tenant_page
def save_loyalty(tenant: TenantView) -> Response:
    """Save the chosen platform's table (POST-redirect-GET; a refusal re-renders with status 400)."""
    if not tenant.editable:
        return refuse("this tenant is configured in the tenants file: its settings are changed there", 403, "read_only")
    platform = request.form.get("platform", "")
    if platform not in PLATFORMS:
        return refuse(
            f"unknown loyalty platform {platform!r} (known: {', '.join(sorted(PLATFORMS))})", 400, "bad_platform"
        )
    stored = tenant.document.get("loyalty")
    before: dict[str, Any] = stored if isinstance(stored, dict) else {}
    switching = before.get("platform") != platform
    fields = fields_of(PLATFORMS[platform].config)
    table, secrets = read_form(fields, request.form, platform, None if switching else before)
    table = {"platform": platform, **table}
    removed = secret_paths(str(before["platform"]), before) if switching and before.get("platform") in PLATFORMS else []
    kept = {f"loyalty.{name}" for name in secrets}
    try:
        save_settings(
            tenant,
            lambda document: {**document, "loyalty": table},
            secrets_set=sorted(kept),
            secrets_removed=[p for p in removed if p not in kept],
        )
    except SettingsRefused as refused:
        return page(tenant, platform, status=400, problems=refused.problems, typed=table)
    return redirect(url_for("merchant.loyalty", tenant=tenant.name, saved="1"), code=303)


@bp.post("/<tenant>/loyalty/test")
@tenant_page
def test_loyalty(tenant: TenantView) -> Response:
    """Test the saved platform settings (the check job makes the platform's cheapest authenticated call)."""
    current = saved_table(tenant).get("platform")
    chosen = current if current in PLATFORMS else None
    return page(tenant, chosen, check=connection_test(tenant.name, "loyalty"))
