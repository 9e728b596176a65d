"""Who is looking at the merchant pages: sessions, CSRF tokens and the access rule.

A session is a signed cookie (:data:`SESSION_COOKIE`, itsdangerous under ``CONNECTOR_SECRET_KEY``):
``HttpOnly``, ``SameSite=Lax``, ``Secure`` behind https, expiring after :data:`SESSION_SECONDS`.
It opens one tenant's pages (a merchant: from a sign-in link or the Shopify admin) or every
tenant's (support staff, signed in with ``CONNECTOR_ADMIN_PASSWORD``).

Every POST carries a CSRF token bound to the browser: to the session, or before sign-in to a
short-lived pre-session cookie (:data:`PRE_COOKIE`), so that the sign-in forms are protected too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from connector.settings import Settings

SESSION_COOKIE = "connector_merchant"
PRE_COOKIE = "connector_merchant_pre"
COOKIE_PATH = "/app"
SESSION_SECONDS = 8 * 3600
"""How long a session lasts after sign-in (a working day)."""
PRE_SECONDS = 3600


@dataclass(frozen=True)
class MerchantSession:
    """A signed-in browser: one tenant's merchant, or support staff (``admin``) for every tenant."""

    tenant: str | None
    admin: bool
    sid: str

    def may_open(self, tenant: str) -> bool:
        """Whether this session may see and change ``tenant``'s pages."""
        return self.admin or self.tenant == tenant


def _settings() -> Settings:
    settings: Settings = current_app.extensions["connector.settings"]
    return settings


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_settings().secret_key.get_secret_value(), salt=f"connector.merchant.{purpose}")


def _secure_cookies() -> bool:
    return request.is_secure or (_settings().public_url or "").startswith("https://")


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """A cookie of the merchant pages: HttpOnly, SameSite=Lax, Secure behind https, expiring."""
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, secure=_secure_cookies(), samesite="Lax"
    )


def start_session(response: Response, *, tenant: str | None = None, admin: bool = False) -> MerchantSession:
    """Sign this browser in (``tenant``'s merchant, or support staff with ``admin``)."""
    session = MerchantSession(tenant=tenant, admin=admin, sid=secrets.token_urlsafe(16))
    value = _serializer("session").dumps({"t": tenant or "", "a": admin, "sid": session.sid})
    set_cookie(response, SESSION_COOKIE, value, SESSION_SECONDS)
    response.delete_cookie(PRE_COOKIE, path=COOKIE_PATH)
    return session


def end_session(response: Response) -> None:
    """Sign this browser out."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def current_session() -> MerchantSession | None:
    """The signed-in session of this request, or ``None`` (none, forged, or expired)."""
    if "merchant_session" in g:
        cached: MerchantSession | None = g.merchant_session
        return cached
    session: MerchantSession | None = None
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            value = _serializer("session").loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            value = None
        if isinstance(value, dict) and isinstance(value.get("sid"), str):
            tenant = value.get("t")
            session = MerchantSession(
                tenant=tenant if isinstance(tenant, str) and tenant else None,
                admin=value.get("a") is True,
                sid=value["sid"],
            )
    g.merchant_session = session
    return session


def _browser_id() -> str:
    """The id CSRF tokens are bound to: the session's, else the pre-session cookie's (made now,
    and set on the answer by :func:`keep_pre_session`)."""
    session = current_session()
    if session is not None:
        return session.sid
    if "merchant_pre" not in g:
        raw = request.cookies.get(PRE_COOKIE)
        pre = None
        if raw:
            try:
                pre = _serializer("pre").loads(raw, max_age=PRE_SECONDS)
            except BadSignature:
                pre = None
        g.merchant_pre_new = not isinstance(pre, str)
        g.merchant_pre = pre if isinstance(pre, str) else secrets.token_urlsafe(16)
    return str(g.merchant_pre)


def keep_pre_session(response: Response) -> Response:
    """Set the pre-session cookie a page's CSRF token was bound to, when it was made for it."""
    if g.get("merchant_pre_new"):
        set_cookie(response, PRE_COOKIE, _serializer("pre").dumps(g.merchant_pre), PRE_SECONDS)
    return response


def csrf_token() -> str:
    """The CSRF token for this browser's forms."""
    return _serializer("csrf").dumps(_browser_id())


def csrf_ok() -> bool:
    """Whether this POST carries the CSRF token of this browser."""
    token = request.form.get("csrf_token")
    if not token:
        return False
    try:
        value = _serializer("csrf").loads(token, max_age=SESSION_SECONDS)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, _browser_id())
