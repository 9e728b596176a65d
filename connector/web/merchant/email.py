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
from connector.web.merchant.forms import SKIPPED, fields_of, read_form, shown_values
from connector.web.merchant.pages import (
    SettingsRefused,
    TenantView,
    refuse,
    render,
    save_settings,
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


def saved_table(tenant: TenantView) -> dict[str, Any]:
    """The tenant's ``[esp]`` table as saved (the store's, else what is served; secrets never shown)."""
    table = tenant.document.get("esp")
    if isinstance(table, dict):
        return table
    if tenant.served is not None and tenant.served.esp is not None:
        return tenant.served.esp.model_dump()
    return {}


def esp_fields(provider: str) -> list[Any]:
    """The form fields of ``provider``'s model (without ``events``: the checkboxes)."""
    return fields_of(ESPS[provider].config, skip=SKIPPED_HERE)


def secret_paths(provider: str, table: dict[str, Any]) -> list[str]:
    """The secret paths (``esp.api_key``) of a table of ``provider``."""
    return [f"esp.{f.name}" for f in esp_fields(provider) if f.secret and f.name in table]


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
    table = saved_table(tenant)
    current = table.get("provider") if isinstance(table.get("provider"), str) else None
    same = chosen is not None and chosen == current
    fields = esp_fields(chosen) if chosen else []
    source = typed if typed is not None else (table if same else None)
    values = shown_values(fields, source)
    events = (source or {}).get("events")
    picked = list(LOYALTY_EVENT_NAMES) if events is None else [e for e in events if e in LOYALTY_EVENT_NAMES]
    hints = {}
    if same:
        hints = {f.name: h for f in fields if f.secret and (h := tenant.secret_hint(f"esp.{f.name}"))}
    return render(
        "merchant/email.html",
        status,
        tenant=tenant,
        providers=sorted(ESPS),
        current=current,
        chosen=chosen,
        fields=fields,
        values=values,
        hints=hints,
        events=list(LOYALTY_EVENT_NAMES.items()),
        picked=picked,
        problems=problems or [],
        check=check,
        notice=notice,
        targets=webhook_targets(tenant),
        wait=wait_seconds(),
    )


def unknown(provider: str) -> Response:
    """The refusal of a provider that is not registered."""
    return refuse(f"unknown email provider {provider!r} (known: {', '.join(sorted(ESPS))})", 400, "bad_provider")


@bp.get("/<tenant>/email")
@tenant_page
def email(tenant: TenantView) -> Response:
    """The Email provider page (``?provider=`` picks the form to fill in)."""
    current = saved_table(tenant).get("provider")
    asked = request.args.get("provider") or (current if current in ESPS else None)
    if asked is not None and asked not in ESPS:
        return unknown(asked)
    if not tenant.editable:
        asked = current if current in ESPS else None
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
    if not tenant.editable:
        return refuse("this tenant is configured in the tenants file: its settings are changed there", 403, "read_only")
    provider = request.form.get("provider", "")
    if provider not in ESPS:
        return unknown(provider)
    stored = tenant.document.get("esp")
    before: dict[str, Any] = stored if isinstance(stored, dict) else {}
    switching = before.get("provider") != provider
    table, secrets = read_form(esp_fields(provider), request.form, provider, None if switching else before)
    table = {"provider": provider, **table}
    events, problems = read_events(request.form)
    if events is not None:
        table["events"] = events
    if problems:
        return page(tenant, provider, status=400, problems=problems, typed=table)
    removed = secret_paths(str(before["provider"]), before) if switching and before.get("provider") in ESPS else []
    kept = {f"esp.{name}" for name in secrets}
    try:
        save_settings(
            tenant,
            lambda document: {**document, "esp": table},
            secrets_set=sorted(kept),
            secrets_removed=[p for p in removed if p not in kept],
        )
    except SettingsRefused as refused:
        return page(tenant, provider, status=400, problems=refused.problems, typed=table)
    return redirect(url_for("merchant.email", tenant=tenant.name, done="saved"), code=303)


@bp.post("/<tenant>/email/remove")
@tenant_page
def remove_email(tenant: TenantView) -> Response:
    """Remove the email provider: nothing more is relayed; relays still queued end ``ignored``."""
    if not tenant.editable:
        return refuse("this tenant is configured in the tenants file: its settings are changed there", 403, "read_only")
    stored = tenant.document.get("esp")
    before: dict[str, Any] = stored if isinstance(stored, dict) else {}
    removed = secret_paths(str(before["provider"]), before) if before.get("provider") in ESPS else []
    try:
        save_settings(
            tenant,
            lambda document: {k: v for k, v in document.items() if k != "esp"},
            secrets_removed=removed,
        )
    except SettingsRefused as refused:
        return page(tenant, None, status=400, problems=refused.problems)
    return redirect(url_for("merchant.email", tenant=tenant.name, done="removed"), code=303)


@bp.post("/<tenant>/email/test")
@tenant_page
def test_email(tenant: TenantView) -> Response:
    """Test the saved provider settings (the check job makes the provider's cheapest authenticated call)."""
    current = saved_table(tenant).get("provider")
    chosen = current if current in ESPS else None
    return page(tenant, chosen, check=connection_test(tenant.name, "email"))
