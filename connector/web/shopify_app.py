"""The Shopify app's install flow and its minimal settings page (registered only when the app is
enabled, see :func:`connector.web.create_app`).

* ``GET /shopify/install`` (also the App URL): a signed request from Shopify → a redirect to the
  shop's ``/admin/oauth/authorize`` with a one-time ``state``. The state is stored in Redis for
  :data:`STATE_SECONDS` and bound to this browser by a signed cookie (:data:`STATE_COOKIE`). A shop
  that has the app installed with enough scopes goes to its settings page instead.
* ``GET /shopify/callback``: hmac, shop, timestamp, the state (the cookie's, consumed from Redis
  once), the code exchange, the scopes; then the shop's subscriptions, its installation, and a
  settings session (:data:`SESSION_COOKIE`). Every refusal is a 4xx page (JSON when asked) and
  stores nothing.
* ``GET/POST /shopify/settings``: the merchant's loyalty platform and its keys (CSRF-protected,
  secrets never shown back).

The admin client is imported inside the callback: the web tier imports no client at module level.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from flask import Blueprint, current_app, make_response, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis import Redis
from werkzeug.wrappers import Response

from connector.directory import TenantDirectory, file_shops
from connector.errors import DestinationError
from connector.platforms.registry import PLATFORMS, parse_loyalty
from connector.settings import Settings
from connector.vendors.shopify import oauth
from connector.vendors.shopify.installations import InstallationStore
from connector.vendors.shopify.subscriptions import CONNECTOR_TOPICS, SubscriptionError, ensure_subscriptions
from connector.web.errors import error_response

log = logging.getLogger(__name__)
bp = Blueprint("shopify_app", __name__, url_prefix="/shopify", template_folder="templates")

STATE_COOKIE = "connector_shopify_state"
SESSION_COOKIE = "connector_shopify_session"
STATE_SECONDS = 600
"""How long an authorization may take (the state's Redis TTL and the state cookie's lifetime)."""
SESSION_SECONDS = 3600
"""How long the settings page stays open after an install or an App URL visit."""
STATE_KEY = "connector:shopify:oauth-state:"
SHOP_TIMEZONE_QUERY = "query shop { shop { ianaTimezone } }"
FORM_FIELDS: dict[str, list[tuple[str, str, bool]]] = {
    "glu": [("base_url", "API base URL", False), ("api_key", "API key (x-api-key)", True)],
    "loyaltylion": [("api_key", "Programme API key", True), ("site_id", "Site id (multi-site programmes)", False)],
    "voucherify": [
        ("base_url", "Regional API base URL (e.g. https://api.voucherify.io)", False),
        ("app_id", "Application id", False),
        ("app_token", "Application secret key", True),
    ],
}
"""The settings form: platform → (field, label, secret); the platforms of :data:`PLATFORMS`."""
CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


# -- helpers --------------------------------------------------------------------------------------


def _settings() -> Settings:
    settings: Settings = current_app.extensions["connector.settings"]
    return settings


def _redis() -> Redis:
    redis: Redis = current_app.extensions["connector.redis"]
    return redis


def _directory() -> TenantDirectory:
    directory: TenantDirectory = current_app.extensions["connector.tenants"]
    return directory


def _store() -> InstallationStore:
    store = _directory().store
    assert store is not None  # the blueprint is registered only with the app enabled
    return store


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_settings().secret_key.get_secret_value(), salt=f"connector.shopify.{purpose}")


def _secret() -> str:
    secret = _settings().shopify_api_secret
    assert secret is not None
    return secret.get_secret_value()


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def refusal(reason: str, status: int, code: str) -> Response:
    """A refusal: a short page, or the usual ``{"error": {"code", "message"}}`` for a JSON client."""
    if _wants_json():
        response = error_response(status, code, reason)
    else:
        response = make_response(render_template("shopify_refused.html", reason=reason, status=status))
    response.status_code = status
    return _secure(response)


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/shopify",
        httponly=True,
        secure=(_settings().public_url or "").startswith("https://"),
        samesite="Lax",
    )


def _start_session(response: Response, shop: str) -> None:
    """Open the settings page of ``shop`` to this browser for :data:`SESSION_SECONDS`."""
    session = {"shop": shop, "sid": secrets.token_urlsafe(16)}
    _set_cookie(response, SESSION_COOKIE, _serializer("session").dumps(session), SESSION_SECONDS)


def _session() -> dict[str, str] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        session = _serializer("session").loads(raw, max_age=SESSION_SECONDS)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(session, dict) or not isinstance(session.get("shop"), str):
        return None
    return {"shop": session["shop"], "sid": str(session.get("sid", ""))}


def _csrf_token(session: dict[str, str]) -> str:
    return _serializer("csrf").dumps(session["sid"])


def _csrf_ok(session: dict[str, str], token: str | None) -> bool:
    if not token:
        return False
    try:
        sid = _serializer("csrf").loads(token, max_age=SESSION_SECONDS)
    except BadSignature:
        return False
    return isinstance(sid, str) and hmac.compare_digest(sid, session["sid"])


def _settings_redirect() -> Response:
    return _secure(redirect("/shopify/settings", code=302))


def _admin_client(shop: str, token: str | None = None) -> Any:
    from connector.vendors.shopify.admin import ShopifyAdminClient  # the web tier imports no client at module level

    settings = _settings()
    return ShopifyAdminClient(
        settings.shopify_admin(shop),
        api_version=settings.shopify_api_version,
        token=token,
        timeout=settings.http_timeout,
    )


def _public(path: str) -> str:
    return f"{_settings().public_url}{path}"


# -- install ---------------------------------------------------------------------------------------


@bp.get("/install")
def install() -> Response:
    """The App URL: verify Shopify's signature, then authorize (or open the settings page)."""
    settings = _settings()
    params = request.args.to_dict()
    try:
        shop = oauth.check_request(params, _secret())
    except oauth.OAuthRefusal as refused:
        return refusal(refused.reason, refused.status, refused.code)
    installation = _store().get(shop)
    if (
        installation is not None
        and installation.installed
        and not oauth.missing_scopes(installation.scopes, settings.shopify_scopes)
        and _store().token(shop)
    ):
        response = _settings_redirect()
        _start_session(response, shop)
        return response
    state = secrets.token_urlsafe(24)
    _redis().set(f"{STATE_KEY}{state}", shop, ex=STATE_SECONDS)
    assert settings.shopify_api_key is not None
    target = oauth.authorize_url(
        settings.shopify_admin(shop),
        client_id=settings.shopify_api_key,
        scopes=settings.shopify_scopes,
        redirect_uri=_public("/shopify/callback"),
        state=state,
    )
    response = _secure(redirect(target, code=302))
    _set_cookie(response, STATE_COOKIE, _serializer("state").dumps({"state": state, "shop": shop}), STATE_SECONDS)
    return response


def _consume_state(state: str, shop: str) -> bool:
    """Whether ``state`` was issued for ``shop`` and not used yet; it is used up now (atomically)."""
    with _redis().pipeline() as pipe:  # MULTI: GET and DEL together, so only one request wins
        pipe.get(f"{STATE_KEY}{state}")
        pipe.delete(f"{STATE_KEY}{state}")
        stored, deleted = pipe.execute()
    if not deleted or stored is None:
        return False
    text = stored.decode() if isinstance(stored, bytes) else str(stored)
    return hmac.compare_digest(text.encode(), shop.encode())


def _cookie_state(shop: str) -> str | None:
    raw = request.cookies.get(STATE_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer("state").loads(raw, max_age=STATE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(value, dict) or value.get("shop") != shop or not isinstance(value.get("state"), str):
        return None
    return str(value["state"])


@bp.get("/callback")
def callback() -> Response:
    """The redirect URL: check everything, exchange the code, subscribe, store the installation."""
    settings = _settings()
    params = request.args.to_dict()
    try:
        shop = oauth.check_request(params, _secret())
    except oauth.OAuthRefusal as refused:
        return refusal(refused.reason, refused.status, refused.code)
    state = params.get("state") or ""
    expected = _cookie_state(shop)
    if expected is None or not state or not hmac.compare_digest(expected.encode(), state.encode()):
        return refusal(
            "this authorization was not started in this browser (state does not match): open the app again",
            403,
            "foreign_state",
        )
    if not _consume_state(state, shop):
        return refusal("this authorization was already used or has expired: open the app again", 400, "used_state")
    code = params.get("code") or ""
    if not code:
        return refusal("Shopify sent no authorization code", 400, "no_code")
    assert settings.shopify_api_key is not None
    try:
        grant = _admin_client(shop).exchange_code(settings.shopify_api_key, _secret(), code)
    except DestinationError as exc:
        log.warning("shopify install %s: the code exchange failed: %s", shop, exc)
        return refusal("Shopify did not accept the authorization code: open the app again", 400, "code_refused")
    missing = oauth.missing_scopes(grant.scopes, settings.shopify_scopes)
    if missing:
        return refusal(
            f"the app needs the access scopes {', '.join(missing)}, which were not granted: install it again "
            "and approve every requested access",
            403,
            "missing_scopes",
        )
    client = _admin_client(shop, grant.token)
    timezone = "UTC"
    try:
        zone = (client.graphql(SHOP_TIMEZONE_QUERY).get("shop") or {}).get("ianaTimezone")
        timezone = zone if isinstance(zone, str) and zone else "UTC"
    except DestinationError as exc:  # the timezone is a nicety: UTC until the next install
        log.warning("shopify install %s: no shop timezone: %s", shop, exc)
    try:  # before the installation is stored: a failure here stores nothing
        ensure_subscriptions(client, _public("/shopify/webhooks"), CONNECTOR_TOPICS)
    except (SubscriptionError, DestinationError) as exc:  # the install can simply be retried
        log.warning("shopify install %s: the webhook subscriptions failed: %s", shop, exc)
        return refusal("the webhook subscriptions could not be created: open the app again", 409, "subscriptions")
    directory = _directory()
    tenant = directory.name_for_new_shop(shop)
    _store().install(shop, tenant, list(grant.scopes), grant.token, timezone=timezone)
    directory.refresh()
    log.info("shopify: %s installed the app (tenant %s)", shop, tenant)
    response = _settings_redirect()
    response.delete_cookie(STATE_COOKIE, path="/shopify")
    _start_session(response, shop)
    return response


# -- settings --------------------------------------------------------------------------------------


def _form_values(platform: str | None, table: dict[str, Any] | None) -> dict[str, str]:
    """The non-secret values to show in the form (secrets are never sent back)."""
    if not platform or not table:
        return {}
    secret_fields = {name for name, _, secret in FORM_FIELDS.get(platform, []) if secret}
    return {
        f"{platform}.{k}": str(v)
        for k, v in table.items()
        if k not in secret_fields and k != "platform" and isinstance(v, str | int)
    }


def _render(shop: str, session: dict[str, str], **context: Any) -> Response:
    platforms = [p for p in FORM_FIELDS if p in PLATFORMS]
    page = render_template(
        "shopify_settings.html",
        shop=shop,
        platforms=platforms,
        fields=FORM_FIELDS,
        csrf_token=_csrf_token(session),
        file_tenant=file_shops(_settings().tenants).get(shop),
        **{"chosen": None, "values": {}, "errors": [], "saved": False, **context},
    )
    response = make_response(page, 400 if context.get("errors") else 200)
    return _secure(response)


@bp.route("/settings", methods=["GET", "POST"])
def settings_page() -> Response:
    """The merchant's loyalty platform: one form, validated like a tenants-file ``[loyalty]`` table."""
    session = _session()
    if session is None:
        return refusal("open the app from your Shopify admin to reach its settings", 401, "no_session")
    shop = session["shop"]
    asked = request.args.get("shop")
    if asked and asked.lower() != shop:
        return refusal("this session belongs to another shop", 403, "other_shop")
    store = _store()
    installation = store.get(shop)
    if installation is None or not installation.installed:
        return refusal("the app is not installed on this shop", 403, "not_installed")
    stored = store.loyalty_table(shop) if installation.has_loyalty else None
    chosen = str(stored.get("platform")) if stored else None
    if request.method == "GET":
        return _render(shop, session, chosen=chosen, values=_form_values(chosen, stored))
    if not _csrf_ok(session, request.form.get("csrf_token")):
        return refusal("the form has expired or was not sent from this page: reload it", 403, "csrf")
    platform = request.form.get("platform") or ""
    if platform not in FORM_FIELDS or platform not in PLATFORMS:
        return _render(shop, session, chosen=chosen, errors=["choose a loyalty platform"])
    table: dict[str, Any] = {"platform": platform}
    for name, _, secret in FORM_FIELDS[platform]:
        value = (request.form.get(f"{platform}.{name}") or "").strip()
        if not value and secret and stored and stored.get("platform") == platform and stored.get(name):
            value = str(stored[name])  # left empty: the key already stored is kept
        if value:
            table[name] = value
    try:
        parse_loyalty(table, "loyalty")
    except ValueError as exc:
        errors = [part for part in str(exc).split("; ") if part.strip()] or ["the settings are not valid"]
        return _render(shop, session, chosen=platform, values=_form_values(platform, table), errors=errors)
    store.set_loyalty(shop, table)
    _directory().refresh()
    log.info("shopify: %s chose the loyalty platform %s", shop, platform)
    return _render(shop, session, chosen=platform, values=_form_values(platform, table), saved=True)
