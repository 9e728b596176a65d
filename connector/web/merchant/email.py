"""``/app/<tenant>/email``: the email provider (ESP) the loyalty events are relayed to.

Like the Loyalty platform page: choose one of :data:`connector.esps.registry.ESPS`
(``?provider=…``), then its credentials from its own config model; secrets are write-only. Which
loyalty events are relayed is a set of checkboxes of
:data:`connector.activities.LOYALTY_EVENT_NAMES`, saved as ``esp.events`` (all checked: no filter,
the key is left out); ``names`` renames events (``customer.loyalty.tier.upgraded = TierUp``).
"Remove email provider" deletes the table: relays still queued then end ``ignored``.

The page also shows where the loyalty platform must send its ``customer.*`` webhooks: the URL of
each of the tenant's sources that relays them, or which source to add when there is none.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from connector.activities import LOYALTY_EVENT_NAMES
from connector.esps.registry import ESPS
from connector.platforms.base import UnconfiguredPlatform
from connector.sources.registry import SOURCES
from connector.web.merchant.blueprint import bp
from connector.web.merchant.checks import connection_test, wait_seconds
from connector.web.merchant.choice import ChosenTable
from connector.web.merchant.forms import SKIPPED
from connector.web.merchant.pages import (
    SettingsRefused,
    TenantView,
    read_only,
    render,
    settings,
    tenant_page,
)

EVENTS_KEY = "esp.events"
SKIPPED_HERE = SKIPPED | {"events"}  # the events are the page's own checkboxes
RELAY_SOURCES = tuple(
    name for name, source in SOURCES.items() if any(source.is_loyalty_event(t) for t in LOYALTY_EVENT_NAMES)
)
"""The sources whose webhooks carry loyalty events to relay (the platforms' own, and ``standard``)."""
NOTICES = {
    "saved": "Saved. Every connector process uses the new settings within a second.",
    "removed": "Email provider removed: nothing more is relayed; relays still queued end ignored.",
}


EMAIL = ChosenTable(
    key="esp",
    tag="provider",
    registry=ESPS,
    noun="email provider",
    served=lambda tenant: tenant.esp,
    skip=SKIPPED | {"events"},  # the events are the page's own checkboxes
)


def webhook_targets(tenant: TenantView) -> dict[str, Any]:
    """Where the platform sends its ``customer.*`` webhooks: the tenant's relay sources' URLs, or
    the source to add (the platform's own when it has one, else ``standard``)."""
    base = (settings().public_url or request.host_url).rstrip("/")
    served = tenant.served
    sources = served.sources if served is not None else {}
    urls = [(name, f"{base}/webhooks/{tenant.name}/{name}") for name in RELAY_SOURCES if name in sources]
    platform = None
    if served is not None and not isinstance(served.loyalty, UnconfiguredPlatform):
        platform = served.loyalty.platform
    suggested = platform if platform in RELAY_SOURCES else "standard"
    return {"urls": urls, "suggested": suggested, "platform": platform}


def page(
    tenant: TenantView,
    chosen: str | None,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    typed: dict[str, Any] | None = None,
    check: dict[str, Any] | None = None,
    notice: str = "",
) -> Response:
    """The page for ``chosen`` (``None``: only the choice), with what the last action said."""
    context = EMAIL.context(tenant, chosen, typed)
    events = (context["source_table"] or {}).get("events")
    picked = list(LOYALTY_EVENT_NAMES) if events is None else [e for e in events if e in LOYALTY_EVENT_NAMES]
    return render(
        "merchant/email.html",
        status,
        tenant=tenant,
        **context,
        events=list(LOYALTY_EVENT_NAMES.items()),
        picked=picked,
        problems=problems or [],
        check=check,
        notice=notice,
        targets=webhook_targets(tenant),
        wait=wait_seconds(),
    )


@bp.get("/<tenant>/email")
@tenant_page
def email(tenant: TenantView) -> Response:
    """The Email provider page (``?provider=`` picks the form to fill in)."""
    asked = EMAIL.asked(tenant, request.args.get("provider"))
    if isinstance(asked, Response):
        return asked
    return page(tenant, asked, notice=NOTICES.get(request.args.get("done", ""), ""))


def read_events(form: Any) -> tuple[list[str] | None, list[str]]:
    """``esp.events`` from the checkboxes (``None``: all, no filter) and the problems found."""
    picked = form.getlist(EVENTS_KEY)
    bad = [e for e in picked if e not in LOYALTY_EVENT_NAMES]
    if bad:
        return None, [f"{EVENTS_KEY}: unknown event type {bad[0]!r}"]
    if not picked:
        return [], [f"{EVENTS_KEY}: pick at least one event to relay (or remove the email provider)"]
    if set(picked) == set(LOYALTY_EVENT_NAMES):
        return None, []
    return [e for e in LOYALTY_EVENT_NAMES if e in picked], []


@bp.post("/<tenant>/email")
@tenant_page
def save_email(tenant: TenantView) -> Response:
    """Save the chosen provider's table (POST-redirect-GET; a refusal re-renders with status 400)."""
    submitted = EMAIL.read(tenant, request.form)
    if isinstance(submitted, Response):
        return submitted
    events, problems = read_events(request.form)
    if events is not None:
        submitted.table["events"] = events
    if problems:
        return page(tenant, submitted.choice, status=400, problems=problems, typed=submitted.table)
    try:
        EMAIL.save(tenant, submitted)
    except SettingsRefused as refused:
        return page(tenant, submitted.choice, status=400, problems=refused.problems, typed=submitted.table)
    return redirect(url_for("merchant.email", tenant=tenant.name, done="saved"), code=303)


@bp.post("/<tenant>/email/remove")
@tenant_page
def remove_email(tenant: TenantView) -> Response:
    """Remove the email provider: nothing more is relayed; relays still queued end ``ignored``."""
    if not tenant.editable:
        return read_only()
    try:
        EMAIL.remove(tenant)
    except SettingsRefused as refused:
        return page(tenant, None, status=400, problems=refused.problems)
    return redirect(url_for("merchant.email", tenant=tenant.name, done="removed"), code=303)


@bp.post("/<tenant>/email/test")
@tenant_page
def test_email(tenant: TenantView) -> Response:
    """Test the saved provider settings (the check job makes the provider's cheapest authenticated call)."""
    return page(tenant, EMAIL.current(tenant), check=connection_test(tenant.name, "email"))
