"""Signing in and out, and the support staff's list of tenants.

* ``GET /app/sign-in?token=…``: the page of a link made by ``connector merchant-link``; its
  button POSTs the token, which is spent once and opens the tenant's session.
* ``GET/POST /app/admin``: support staff sign in with ``CONNECTOR_ADMIN_PASSWORD`` (five
  wrong passwords per address and minute, then 429).
* ``POST /app/sign-out``.
* ``GET /app/``: the signed-in tenant's pages, or for support staff every tenant, with a form
  to onboard a new one into the store (``POST /app/tenants``).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import current_app, redirect, request, url_for
from redis import Redis
from werkzeug.wrappers import Response

from connector.merchant_links import LinkRefused, read_link_token, spend_link
from connector.platforms.base import UnconfiguredPlatform
from connector.settings import TENANT_NAME, Tenant
from connector.tenant_store import RESERVED_NAMES
from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import admin_page, directory, refuse, render, settings
from connector.web.merchant.session import current_session, end_session, start_session

log = logging.getLogger(__name__)

ADMIN_ATTEMPTS_KEY = "connector:merchant:admin-attempts:"
ADMIN_ATTEMPTS = 5
ADMIN_WINDOW_SECONDS = 60


def _redis() -> Redis:
    redis: Redis = current_app.extensions["connector.redis"]
    return redis


def _secret_key() -> str:
    return settings().secret_key.get_secret_value()


@bp.get("/sign-in")
def sign_in_page() -> Response:
    """The page of a sign-in link: who it opens, and the button that signs in."""
    token = request.args.get("token", "")
    try:
        link = read_link_token(_secret_key(), token)
    except LinkRefused as refused:
        return refuse(refused.reason, 403, "bad_link")
    return render("merchant/sign_in.html", tenant_name=link.tenant, token=token)


@bp.post("/sign-in")
def sign_in() -> Response:
    """Spend the link and open its tenant's pages."""
    try:
        link = read_link_token(_secret_key(), request.form.get("token", ""))
        if directory().get(link.tenant) is None and directory().stored(link.tenant) is None:
            raise LinkRefused(f"there is no tenant {link.tenant!r} any more: ask your operator")
        spend_link(_redis(), link)
    except LinkRefused as refused:
        return refuse(refused.reason, 403, "bad_link")
    response = redirect(url_for("merchant.overview", tenant=link.tenant), code=303)
    start_session(response, tenant=link.tenant)
    log.info("merchant pages: %s signed in with a link", link.tenant)
    return response


def _too_many_attempts() -> bool:
    key = f"{ADMIN_ATTEMPTS_KEY}{request.remote_addr or 'unknown'}"
    raw = _redis().get(key)
    return raw is not None and int(raw) >= ADMIN_ATTEMPTS


def _count_attempt() -> None:
    key = f"{ADMIN_ATTEMPTS_KEY}{request.remote_addr or 'unknown'}"
    with _redis().pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, ADMIN_WINDOW_SECONDS)
        pipe.execute()


@bp.route("/admin", methods=["GET", "POST"])
def admin_sign_in() -> Response:
    """Support staff sign in with the admin password (no password configured: 404)."""
    configured = settings().admin_password
    if configured is None or not configured.get_secret_value():
        return refuse("support staff sign-in is off: set CONNECTOR_ADMIN_PASSWORD to enable it", 404, "admin_disabled")
    if request.method == "GET":
        return render("merchant/admin_sign_in.html")
    if _too_many_attempts():
        return refuse("too many wrong passwords: wait a minute and try again", 429, "too_many_attempts")
    given = request.form.get("password", "")
    if not given or not hmac.compare_digest(given.encode(), configured.get_secret_value().encode()):
        _count_attempt()
        return render("merchant/admin_sign_in.html", 401, error="that is not the admin password")
    response = redirect(url_for("merchant.home"), code=303)
    start_session(response, admin=True)
    log.info("merchant pages: support staff signed in from %s", request.remote_addr)
    return response


@bp.post("/sign-out")
def sign_out() -> Response:
    """Sign this browser out."""
    response = render("merchant/signed_out.html")
    end_session(response)
    return response


def _tenant_rows() -> list[dict[str, Any]]:
    found = directory()
    served = found.all()
    installations = found.installation_tenants()
    names = sorted(set(served) | set(found.tenant_store.names() if found.tenant_store else []))
    rows = []
    for name in names:
        tenant: Tenant | None = served.get(name)
        origin = "tenants file" if found.is_file_tenant(name) else "Shopify app" if name in installations else "store"
        rows.append(
            {
                "name": name,
                "origin": origin,
                "platform": tenant.loyalty.platform if tenant else "not valid",
                "sources": sorted(tenant.sources) if tenant else [],
            }
        )
    return rows


@bp.get("/")
def home() -> Response:
    """A merchant's own pages, or the support staff's list of tenants."""
    session = current_session()
    if session is None:
        return refuse(
            "sign in first: open the sign-in link your operator sent you, or the app from your Shopify admin",
            401,
            "no_session",
        )
    if not session.admin and session.tenant:
        return redirect(url_for("merchant.overview", tenant=session.tenant), code=303)
    return _tenants_page()


@admin_page
def _tenants_page(error: str | None = None, status: int = 200) -> Response:
    return render(
        "merchant/tenants.html",
        status,
        rows=_tenant_rows(),
        error=error,
        store=directory().tenant_store is not None,
    )


@bp.post("/tenants")
@admin_page
def create_tenant() -> Response:
    """Onboard a tenant into the store (support staff): a name and a timezone, the rest in its pages."""
    name = (request.form.get("name") or "").strip().lower()
    timezone = (request.form.get("timezone") or "UTC").strip() or "UTC"
    store = directory().tenant_store
    if store is None:
        return _tenants_page("no tenant store: set CONNECTOR_SECRET_KEY", 400)
    if not TENANT_NAME.match(name):
        return _tenants_page("a tenant name is lower-case letters, digits, '-' and '_' (up to 63)", 400)
    if name in RESERVED_NAMES:
        return _tenants_page(f"{name!r} is reserved for the pages' own addresses: choose another name", 400)
    if directory().name_taken(name):
        return _tenants_page(f"there is already a tenant {name!r}", 409)
    try:
        Tenant(name=name, timezone=timezone, loyalty=UnconfiguredPlatform())
    except ValueError:
        return _tenants_page(f"unknown timezone {timezone!r} (an IANA name, e.g. Europe/London)", 400)
    try:
        store.create(name, {"timezone": timezone})
    except KeyError:
        return _tenants_page(f"there is already a tenant {name!r}", 409)
    directory().refresh()
    log.info("merchant pages: tenant %s created", name)
    return redirect(url_for("merchant.overview", tenant=name), code=303)
