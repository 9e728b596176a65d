"""What every merchant page shares: rendering with the security headers, refusals, the tenant
being looked at (:class:`TenantView`) and saving its settings (:func:`save_settings`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec

from flask import current_app, make_response, render_template, request
from werkzeug.wrappers import Response

from connector.directory import TenantDirectory
from connector.errors import ConfigError
from connector.platforms.base import UnconfiguredPlatform
from connector.settings import Settings, Tenant, config_problems, mews_enterprises, parse_tenant_document
from connector.tenant_store import StoredTenant, TenantStore
from connector.web.errors import error_response
from connector.web.merchant.session import csrf_token, current_session

P = ParamSpec("P")

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECTIONS = (
    ("merchant.overview", "Overview"),
    ("merchant.loyalty", "Loyalty platform"),
    ("merchant.sources", "Sources"),
    ("merchant.email", "Email provider"),
    ("merchant.activity", "Activity"),
)
"""The navigation of a tenant's pages: (endpoint, title)."""


def settings() -> Settings:
    """This process's settings."""
    found: Settings = current_app.extensions["connector.settings"]
    return found


def directory() -> TenantDirectory:
    """This process's tenants."""
    found: TenantDirectory = current_app.extensions["connector.tenants"]
    return found


def secure(response: Response, csp: str = CSP) -> Response:
    """The headers every page of ours carries (a CSP without inline scripts, no caching, no
    framing); ``csp``: another page's policy (the admin trace page's inline styles)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def wants_json() -> bool:
    """Whether the client asked for JSON rather than a page."""
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page with the common context (session, CSRF token, navigation) and headers."""
    session = current_session()
    page = render_template(
        template,
        session=session,
        csrf_token=csrf_token(),
        sections=SECTIONS,
        **context,
    )
    return secure(make_response(page, status))


def refuse(reason: str, status: int, code: str) -> Response:
    """A refusal: a short page (or ``{"error": …}`` for a JSON client) saying what to do."""
    if wants_json():
        return secure(error_response(status, code, reason))
    return render("merchant/refused.html", status, reason=reason, status_code=status, code=code)


@dataclass
class TenantView:
    """The tenant a page shows: what is served, where it comes from, and its stored settings."""

    name: str
    served: Tenant | None
    """The tenant as the intake and the workers see it (``None``: its stored settings are invalid)."""
    stored: StoredTenant | None
    """The settings written by the pages (``None``: none yet, or a tenants-file tenant)."""
    file_tenant: bool
    """From the tenants file: shown, never changed by the pages."""
    shop: str | None
    """The Shopify shop of an installation tenant."""
    problems: list[str]

    @property
    def document(self) -> dict[str, Any]:
        """The stored document (a copy; empty for none)."""
        return json.loads(json.dumps(self.stored.document)) if self.stored else {}

    @property
    def editable(self) -> bool:
        """Whether the pages may change this tenant (not a tenants-file one, and a store exists)."""
        return not self.file_tenant and directory().tenant_store is not None

    @property
    def loyalty_chosen(self) -> bool:
        """Whether a loyalty platform is configured."""
        return self.served is not None and not isinstance(self.served.loyalty, UnconfiguredPlatform)

    def secret_hint(self, path: str) -> dict[str, str] | None:
        """``{"last4", "set_at"}`` of a stored secret (``loyalty.api_key``), or ``None``."""
        return self.stored.secret_hint(path) if self.stored else None


def tenant_view(name: str) -> TenantView | None:
    """The tenant called ``name`` as the pages see it, or ``None`` when there is none."""
    found = directory()
    served = found.get(name)
    stored = found.stored(name)
    installation = found.installation_tenants().get(name)
    if served is None and stored is None and installation is None:
        return None
    return TenantView(
        name=name,
        served=served,
        stored=stored,
        file_tenant=found.is_file_tenant(name),
        shop=installation.shop if installation is not None else None,
        problems=found.problems(name),
    )


def tenant_page(view: Callable[..., Response]) -> Callable[..., Response]:
    """A page of one tenant (``/app/<tenant>/…``): signed in, allowed to open that tenant,
    the tenant exists; the view gets its :class:`TenantView` as ``tenant``."""

    @wraps(view)
    def wrapper(tenant: str, **kwargs: Any) -> Response:
        session = current_session()
        if session is None:
            return refuse(
                "sign in first: open the sign-in link your operator sent you, or the app from your Shopify admin",
                401,
                "no_session",
            )
        if not session.may_open(tenant):
            return refuse(
                "this session belongs to another tenant: sign in with that tenant's link", 403, "other_tenant"
            )
        found = tenant_view(tenant)
        if found is None:
            return refuse(f"there is no tenant {tenant!r}", 404, "unknown_tenant")
        return view(tenant=found, **kwargs)

    return wrapper


def admin_page(view: Callable[P, Response]) -> Callable[P, Response]:
    """A page for support staff only (signed in with the admin password)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        session = current_session()
        if session is None or not session.admin:
            return refuse("support staff only: sign in with the admin password", 403, "not_admin")
        return view(*args, **kwargs)

    return wrapper


READ_ONLY = "this tenant is configured in the tenants file: its settings are changed there"


def read_only() -> Response:
    """The refusal of a change to a tenants-file tenant (403)."""
    return refuse(READ_ONLY, 403, "read_only")


class SettingsRefused(Exception):  # noqa: N818 - a refusal the page shows, one line per problem
    """The new settings were not saved; ``problems`` says why (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _store() -> TenantStore:
    store = directory().tenant_store
    if store is None:
        raise SettingsRefused(["settings cannot be saved: the connector has no stable CONNECTOR_SECRET_KEY"])
    return store


def save_settings(
    tenant: TenantView,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    secrets_set: Iterable[str] = (),
    secrets_removed: Iterable[str] = (),
) -> StoredTenant:
    """Apply ``change`` to the tenant's stored document after validating the result like a
    tenants-file table (and that no other tenant claims its Mews enterprise); every process
    serves it within a second.

    Raises:
        SettingsRefused: a tenants-file tenant, no store, or the new settings are not valid
            (problems named by key, ``tenants.<name>.loyalty.api_key: …``).
    """
    if tenant.file_tenant:
        raise SettingsRefused([READ_ONLY])
    store = _store()
    candidate = change(tenant.document)
    try:
        parsed = parse_tenant_document(tenant.name, candidate, UnconfiguredPlatform())
    except ConfigError as exc:
        raise SettingsRefused(config_problems(exc)) from None
    others = {name: t for name, t in directory().all().items() if name != tenant.name}
    conflicts = [p for p in mews_enterprises({**others, tenant.name: parsed})[1] if tenant.name in p]
    if conflicts:
        raise SettingsRefused(conflicts)
    saved = store.update(
        tenant.name,
        change,
        secrets_set=secrets_set,
        secrets_removed=secrets_removed,
        create=tenant.shop is not None,
    )
    directory().refresh()
    return saved
