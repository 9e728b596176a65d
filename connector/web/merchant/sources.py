"""The Sources page: a tenant's webhook senders, the exact URL each must call, what to paste where
in the vendor's console, and rotating their secrets with an overlap window.

* ``GET /app/<tenant>/sources``: every configured source with its webhook URL, and the form
  that picks a source to add (``GET …/sources/new?source=<slug>`` shows its fields and steps).
* ``POST /app/<tenant>/sources``: add one (``source`` = its slug); its fields come from the
  vendor's own config model (:func:`connector.web.merchant.forms.fields_of`). Credentials the
  *connector* issues (the config model's ``generated``: URL tokens, and secrets the vendor's console
  asks the receiver for) are generated here, never typed; those that are not in the URL are shown
  once, on the answer to the POST that made them, and never again. Credentials the *vendor*
  issues are entered (write-only: only their last four characters are shown back).
* ``GET /app/<tenant>/sources/<slug>``: one source (URL, steps, its settings form, rotation,
  removal); ``POST`` there saves its settings (an empty secret keeps the stored one).
* ``POST …/<slug>/remove``: forget it; its URL then answers 404 and its queued webhooks end
  ``ignored`` (:mod:`connector.jobs`).
* ``POST …/<slug>/rotate``: the current credentials move into the source's ``previous`` table
  (still accepted, see :class:`~connector.sources.base.SourceConfig`), new ones are generated or
  entered; ``POST …/<slug>/rotate/finish`` drops ``previous``. One rotation at a time.

Tenants-file tenants are shown (URL tokens included: the merchant needs the URL), never a signing
secret, and without forms. Shopify's source comes with the app install and is not added here;
the loyalty platforms' own webhook sources (Voucherify, LoyaltyLion: events relayed to the ESP)
are added here like the others, listed under their own heading.
"""

from __future__ import annotations

import secrets
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import redirect, request, url_for
from pydantic import SecretStr
from werkzeug.wrappers import Response

from connector.sources.base import SourceConfig
from connector.sources.registry import SOURCES
from connector.sources.setup import GROUP_TITLES, SetupGuide
from connector.tenant_store import secret_hint
from connector.web.merchant.blueprint import bp
from connector.web.merchant.forms import SKIPPED, FormField, fields_of, read_form, shown_values
from connector.web.merchant.pages import (
    SettingsRefused,
    TenantView,
    refuse,
    render,
    save_settings,
    settings,
    tenant_page,
    tenant_view,
)
from connector.web.merchant.session import current_session
from connector.web.webhooks import MEWS_SHARED

TOKEN_BYTES = 32
"""Randomness of a generated credential (``secrets.token_urlsafe``: 43 characters)."""

ADDABLE = tuple(name for name, source in SOURCES.items() if source.setup is not None and source.setup.addable)
"""The sources a merchant adds on this page: every registered one but Shopify's (the app install adds it)."""

DONE = {
    "saved": "Saved. Every connector process uses the new settings within a second.",
    "removed": "Removed. Its URL now answers 404; webhooks of it still queued end ignored, never failed.",
    "finished": "Rotation finished: only the new credentials are accepted now.",
}
"""The status lines a redirect may ask for (``?done=…``): fixed texts, never echoed input."""

ROTATION_OPEN = "a rotation is already open: finish it first (Finish rotation), then rotate again"


@dataclass
class SourceCard:
    """One configured source as the pages show it."""

    name: str
    guide: SetupGuide | None
    url: str
    previous_url: str | None
    """During a rotation of a URL token: the URL being rotated out (still accepted)."""
    rotating: bool
    editable: bool
    fields: list[FormField] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    hints: dict[str, dict[str, str]] = field(default_factory=dict)
    generated: list[tuple[str, str, bool]] = field(default_factory=list)
    """The generated credentials outside the URL: (label, what is shown of it, whether it is a secret)."""
    rotation_fields: list[FormField] = field(default_factory=list)
    """The vendor-issued credentials a rotation asks for anew."""
    shared_mews_url: str | None = None
    enterprise_id: str | None = None

    @property
    def title(self) -> str:
        """The vendor's name."""
        return self.guide.title if self.guide else self.name


def _title(name: str) -> str:
    guide = SOURCES[name].setup
    return guide.title if guide is not None else name


def _model(name: str) -> type[SourceConfig]:
    return SOURCES[name].config_model


def form_fields(name: str) -> list[FormField]:
    """The fields a merchant fills in for source ``name`` (not the generated ones)."""
    model = _model(name)
    return fields_of(model, skip=SKIPPED | frozenset(model.generated))


def _all_fields(name: str) -> dict[str, FormField]:
    return {f.name: f for f in fields_of(_model(name))}


def generate(model: type[SourceConfig], name: str) -> Any:
    """A new value of the connector-issued credential ``name`` of ``model`` (a one-item list for a
    list of secrets; a readable login name for a plain text field)."""
    annotation = model.model_fields[name].annotation
    if typing.get_origin(annotation) is list:
        return [secrets.token_urlsafe(TOKEN_BYTES)]
    if annotation is str:
        return f"connector-{secrets.token_urlsafe(6)}"
    return secrets.token_urlsafe(TOKEN_BYTES)


def _plain(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value else None


def _origin() -> str:
    return (settings().public_url or request.host_url).rstrip("/")


def webhook_url(tenant: str, source: str, token: str | None) -> str:
    """The exact URL the vendor must call: ``{origin}/webhooks/<tenant>/<source>[/<token>]``."""
    base = f"{_origin()}/webhooks/{tenant}/{source}"
    return f"{base}/{token}" if token else base


def _tables(tenant: TenantView) -> dict[str, Mapping[str, Any] | SourceConfig]:
    """Each configured source: its stored table (a stored tenant), else its served config."""
    found: dict[str, Mapping[str, Any] | SourceConfig] = {}
    if tenant.served is not None:
        found.update(tenant.served.sources)
    stored = tenant.document.get("sources")
    if isinstance(stored, dict):
        found.update({name: table for name, table in stored.items() if isinstance(table, dict)})
    return {name: found[name] for name in sorted(found, key=lambda n: (n not in SOURCES, n))}


def _value(table: Mapping[str, Any] | SourceConfig, key: str) -> Any:
    return table.get(key) if isinstance(table, Mapping) else getattr(table, key, None)


def _previous(table: Mapping[str, Any] | SourceConfig) -> Mapping[str, Any] | SourceConfig | None:
    if isinstance(table, Mapping):
        old = table.get("previous")
        return {**table, **old} if isinstance(old, dict) else None
    return table.previous


def _hints(
    tenant: TenantView, name: str, table: Mapping[str, Any], fields: list[FormField]
) -> dict[str, dict[str, str]]:
    """What is shown of each stored secret: its hint, or for a list of secrets (which the store
    keeps no hint of) the last characters of the first one."""
    hints: dict[str, dict[str, str]] = {}
    for f in fields:
        if not f.secret:
            continue
        hint = tenant.secret_hint(f"sources.{name}.{f.name}")
        value = table.get(f.name)
        if hint is None and isinstance(value, list) and value and isinstance(value[0], str):
            stamp = tenant.stored.updated_at if tenant.stored else ""
            hint = secret_hint(value[0], stamp)
            hint["set_at"] = f"{stamp} ({len(value)} value{'s' if len(value) != 1 else ''})"
        if hint is not None:
            hints[f.name] = hint
    return hints


def source_card(tenant: TenantView, name: str, table: Mapping[str, Any] | SourceConfig) -> SourceCard:
    """The card of one configured source (never a signing secret in it)."""
    adapter = SOURCES.get(name)
    model = adapter.config_model if adapter else None
    key = model.path_credential if model else None
    previous = _previous(table)
    token = _plain(_value(table, key)) if key else None
    old_token = _plain(_value(previous, key)) if key and previous is not None else None
    editable = (
        tenant.editable and isinstance(table, Mapping) and adapter is not None and name in ADDABLE and model is not None
    )
    card = SourceCard(
        name=name,
        guide=adapter.setup if adapter else None,
        url=webhook_url(tenant.name, name, token),
        previous_url=webhook_url(tenant.name, name, old_token) if old_token and old_token != token else None,
        rotating=previous is not None,
        editable=editable,
    )
    if model is None:
        return card
    every = _all_fields(name)
    for generated in model.generated:
        if generated == key or generated not in every:
            continue
        f = every[generated]
        if f.secret:
            hint = tenant.secret_hint(f"sources.{name}.{generated}")
            value = _value(table, generated)
            if hint is None and isinstance(value, list) and value and isinstance(value[0], str):
                hint = secret_hint(value[0])  # the store keeps no hint of a list of secrets
            ending = f", ending in …{hint['last4']}" if hint and hint["last4"] else ""
            shown = f"a secret{ending}: shown once, when it was made (rotate for a new one)"
        else:
            shown = str(_value(table, generated) or "")
        card.generated.append((f.label, shown, f.secret))
    card.fields = form_fields(name)
    if isinstance(table, Mapping):  # a stored tenant's: its form (a file tenant's is shown by its URL only)
        card.values = shown_values(card.fields, table)
        card.hints = _hints(tenant, name, table, card.fields)
    card.rotation_fields = [every[c] for c in model.credentials if c not in model.generated and c in every]
    if name == "mews":
        card.enterprise_id = _plain(_value(table, "enterprise_id"))
        shared = settings().mews_webhook_token
        session = current_session()
        if shared is not None and card.enterprise_id and session is not None and session.admin:
            card.shared_mews_url = f"{_origin()}/webhooks/{MEWS_SHARED}/{shared.get_secret_value()}"
    return card


def _choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The sources to add, by group: (group title, [(slug, title)])."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in ADDABLE:
        guide = SOURCES[name].setup
        assert guide is not None  # ADDABLE holds sources with a guide only
        groups.setdefault(GROUP_TITLES[guide.group], []).append((name, guide.title))
    order = list(GROUP_TITLES.values())
    return sorted(
        ((g, sorted(items, key=lambda i: i[1])) for g, items in groups.items()), key=lambda g: order.index(g[0])
    )


def _page(tenant: TenantView, status: int = 200, **context: Any) -> Response:
    cards = [source_card(tenant, name, table) for name, table in _tables(tenant).items()]
    return render(
        "merchant/sources.html",
        status,
        tenant=tenant,
        cards=cards,
        choices=_choices(),
        done=DONE.get(request.args.get("done", "")),
        **context,
    )


def _source_page(
    tenant: TenantView,
    name: str,
    status: int = 200,
    *,
    problems: list[str] | None = None,
    message: str | None = None,
    revealed: list[tuple[str, str]] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    table = _tables(tenant).get(name)
    if table is None:
        return refuse(f"{tenant.name} has no {name[:40]!r} source: add it on the Sources page", 404, "unknown_source")
    card = source_card(tenant, name, table)
    if values is not None:
        card.values = values
    return render(
        "merchant/source.html",
        status,
        tenant=tenant,
        card=card,
        problems=problems or [],
        message=message or DONE.get(request.args.get("done", "")),
        revealed=revealed or [],
    )


def _may_change(tenant: TenantView) -> Response | None:
    """A refusal when this tenant's settings cannot be changed here, else ``None``."""
    if tenant.file_tenant:
        return refuse(
            "this tenant is configured in the tenants file: its sources are changed there", 403, "file_tenant"
        )
    if not tenant.editable:
        return refuse("settings cannot be saved: the connector has no tenant store", 409, "no_store")
    return None


def _may_add(tenant: TenantView, name: str) -> Response | None:
    """A refusal when ``name`` is no source to add here, or this tenant cannot be changed."""
    if name not in ADDABLE:
        return refuse(_unknown(name), 400, "unknown_source")
    return _may_change(tenant)


def _stored_table(tenant: TenantView, name: str) -> dict[str, Any] | None:
    table = tenant.document.get("sources", {}).get(name)
    return table if isinstance(table, dict) else None


def _changing(name: str, update: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Any:
    """The change of a document that replaces source ``name``'s table by ``update(current table)``
    (``None``: remove it). It is applied to the document as stored at the moment of writing, so
    a concurrent change of another setting is never lost.

    ``update`` raises :class:`SettingsRefused` when the current table no longer allows the change.
    """

    def change(document: dict[str, Any]) -> dict[str, Any]:
        sources = dict(document.get("sources") or {})
        current = sources.pop(name, None)
        table = update(current if isinstance(current, dict) else None)
        if table is not None:
            sources[name] = table
        return {**document, "sources": sources}

    return change


def _existing(name: str, update: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Any:
    """:func:`_changing` of a source that must still be there."""

    def checked(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            raise SettingsRefused([f"the {name} source was removed meanwhile"])
        return update(current)

    return _changing(name, checked)


def _revealed(name: str, table: Mapping[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """The generated secrets outside the URL, to show once: (label, value)."""
    every = _all_fields(name)
    shown = []
    for key in names:
        f = every.get(key)
        if f is None or not f.secret:
            continue
        value = table.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                shown.append((f.label, item))
    return shown


@bp.get("/<tenant>/sources")
@tenant_page
def sources(tenant: TenantView) -> Response:
    """The Sources page: every source with its webhook URL, and the form to add one."""
    return _page(tenant)


@bp.get("/<tenant>/sources/new")
@tenant_page
def new_source(tenant: TenantView) -> Response:
    """The form of a source to add (``?source=<slug>``), with its console steps."""
    name = request.args.get("source", "")
    refused = _may_add(tenant, name)
    if refused is not None:
        return refused
    if name in _tables(tenant):
        return redirect(url_for("merchant.source", tenant=tenant.name, name=name), code=303)
    return _new_form(tenant, name)


def _unknown(name: str) -> str:
    if name in SOURCES:
        return f"the {name} source is added by its app's install, not here"
    return f"there is no source {name[:40]!r}: choose one of {', '.join(ADDABLE)}"


def _new_form(tenant: TenantView, name: str, status: int = 200, **context: Any) -> Response:
    return render(
        "merchant/source_new.html",
        status,
        tenant=tenant,
        name=name,
        guide=SOURCES[name].setup,
        fields=form_fields(name),
        values=context.pop("values", {}),
        generated=[_all_fields(name)[g].label for g in _model(name).generated],
        in_url=_model(name).path_credential is not None,
        **context,
    )


@bp.post("/<tenant>/sources")
@tenant_page
def add_source(tenant: TenantView) -> Response:
    """Add a source: its entered fields, its connector-issued credentials generated."""
    name = request.form.get("source", "")
    refused = _may_add(tenant, name)
    if refused is not None:
        return refused
    if name in _tables(tenant):
        return refuse(f"{tenant.name} already has a {name} source: change it on its page", 409, "source_exists")
    model = _model(name)
    fields = form_fields(name)
    table, secrets_set = read_form(fields, request.form, f"sources.{name}", None)
    for key in model.generated:
        table[key] = generate(model, key)
    every = _all_fields(name)
    paths = [f"sources.{name}.{k}" for k in [*secrets_set, *model.generated] if every[k].secret]
    try:
        save_settings(tenant, _changing(name, lambda current: _added(name, current, table)), secrets_set=paths)
    except SettingsRefused as refusal:
        return _new_form(tenant, name, 400, problems=refusal.problems, values=shown_values(fields, table))
    saved = tenant_view(tenant.name) or tenant
    shown = [k for k in model.generated if k != model.path_credential]
    return _source_page(
        saved,
        name,
        message=f"{_title(name)} added.",
        revealed=_revealed(name, table, shown),
    )


def _added(name: str, current: dict[str, Any] | None, table: dict[str, Any]) -> dict[str, Any]:
    if current is not None:
        raise SettingsRefused([f"a {name} source was added meanwhile: change it on its page"])
    return table


@bp.get("/<tenant>/sources/<name>")
@tenant_page
def source(tenant: TenantView, name: str) -> Response:
    """One source: its URL, the console steps, its settings, rotation and removal."""
    return _source_page(tenant, name)


@bp.post("/<tenant>/sources/<name>")
@tenant_page
def edit_source(tenant: TenantView, name: str) -> Response:
    """Save a source's settings (an empty secret keeps the stored one; generated ones are kept)."""
    refused = _may_change(tenant)
    if refused is not None:
        return refused
    stored = _stored_table(tenant, name)
    if stored is None or name not in ADDABLE:
        return refuse(f"{tenant.name} has no {name[:40]!r} source to change here", 404, "unknown_source")
    model = _model(name)
    fields = form_fields(name)
    table, secrets_set = read_form(fields, request.form, f"sources.{name}", stored)

    def edited(current: dict[str, Any]) -> dict[str, Any]:
        kept = {k: current[k] for k in (*model.generated, "previous") if k in current}
        entered = {k: v for k, v in table.items() if k in secrets_set or not fields_by_name[k].secret}
        secrets_kept = {
            f.name: current[f.name] for f in fields if f.secret and f.name not in secrets_set and f.name in current
        }
        return {**kept, **secrets_kept, **entered}

    fields_by_name = {f.name: f for f in fields}
    try:
        save_settings(tenant, _existing(name, edited), secrets_set=[f"sources.{name}.{k}" for k in secrets_set])
    except SettingsRefused as refusal:
        return _source_page(tenant, name, 400, problems=refusal.problems, values=shown_values(fields, table))
    return redirect(url_for("merchant.source", tenant=tenant.name, name=name, done="saved"), code=303)


@bp.post("/<tenant>/sources/<name>/remove")
@tenant_page
def remove_source(tenant: TenantView, name: str) -> Response:
    """Forget a source: its URL answers 404 from now on, and its queued webhooks end ``ignored``."""
    refused = _may_change(tenant)
    if refused is not None:
        return refused
    if _stored_table(tenant, name) is None:
        return refuse(f"{tenant.name} has no {name[:40]!r} source to remove here", 404, "unknown_source")
    hints = tenant.stored.secrets if tenant.stored else {}
    removed = [path for path in hints if path.startswith(f"sources.{name}.")]
    try:
        save_settings(tenant, _changing(name, lambda current: None), secrets_removed=removed)
    except SettingsRefused as refusal:
        return _source_page(tenant, name, 400, problems=refusal.problems)
    return redirect(url_for("merchant.sources", tenant=tenant.name, done="removed"), code=303)


@bp.post("/<tenant>/sources/<name>/rotate")
@tenant_page
def rotate_source(tenant: TenantView, name: str) -> Response:
    """Start a rotation: the current credentials move into ``previous`` (still accepted), new ones
    are generated (connector-issued) or taken from the form (vendor-issued)."""
    refused = _may_change(tenant)
    if refused is not None:
        return refused
    stored = _stored_table(tenant, name)
    if stored is None or name not in ADDABLE:
        return refuse(f"{tenant.name} has no {name[:40]!r} source to rotate here", 404, "unknown_source")
    if "previous" in stored:
        return _source_page(tenant, name, 409, problems=[ROTATION_OPEN])
    model = _model(name)
    every = _all_fields(name)
    entered = [every[c] for c in model.credentials if c not in model.generated and c in every]
    rotated, _ = read_form(entered, request.form, f"sources.{name}.rotate", None)
    rotated.update({key: generate(model, key) for key in model.generated})
    if not rotated:
        labels = ", ".join(f.label for f in entered)
        return _source_page(tenant, name, 400, problems=[f"enter the new {labels} the vendor issued, then rotate"])
    secret_keys = [k for k in rotated if every[k].secret]
    old_keys = [k for k in secret_keys if stored.get(k) not in (None, "", [])]
    paths = [f"sources.{name}.{k}" for k in secret_keys] + [f"sources.{name}.previous.{k}" for k in old_keys]
    made: dict[str, Any] = {}

    def rotating(current: dict[str, Any]) -> dict[str, Any]:
        if "previous" in current:
            raise SettingsRefused([ROTATION_OPEN])
        previous = {k: current[k] for k in rotated if current.get(k) not in (None, "", [])}
        made.update({**current, **rotated, **({"previous": previous} if previous else {})})
        return dict(made)

    try:
        save_settings(tenant, _existing(name, rotating), secrets_set=paths)
    except SettingsRefused as refusal:
        status = 409 if refusal.problems == [ROTATION_OPEN] else 400
        return _source_page(tenant_view(tenant.name) or tenant, name, status, problems=refusal.problems)
    table = made
    saved = tenant_view(tenant.name) or tenant
    shown = [k for k in model.generated if k != model.path_credential]
    return _source_page(
        saved,
        name,
        message="Rotation started: the old and the new credentials are both accepted until you finish it. "
        "Put the new ones in the vendor's console, then press Finish rotation.",
        revealed=_revealed(name, table, shown),
    )


@bp.post("/<tenant>/sources/<name>/rotate/finish")
@tenant_page
def finish_rotation(tenant: TenantView, name: str) -> Response:
    """End a rotation: the old credentials are no longer accepted."""
    refused = _may_change(tenant)
    if refused is not None:
        return refused
    stored = _stored_table(tenant, name)
    if stored is None or name not in ADDABLE:
        return refuse(f"{tenant.name} has no {name[:40]!r} source here", 404, "unknown_source")
    if "previous" not in stored:
        return _source_page(tenant, name, 409, problems=["no rotation is open for this source"])
    hints = tenant.stored.secrets if tenant.stored else {}
    removed = [path for path in hints if path.startswith(f"sources.{name}.previous.")]
    try:
        save_settings(
            tenant,
            _existing(name, lambda current: {k: v for k, v in current.items() if k != "previous"}),
            secrets_removed=removed,
        )
    except SettingsRefused as refusal:
        return _source_page(tenant, name, 400, problems=refusal.problems)
    return redirect(url_for("merchant.source", tenant=tenant.name, name=name, done="finished"), code=303)
