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
* ``GET /shopify/settings``: moved to the merchant pages (:mod:`connector.web.merchant`), where an
  installed shop lands signed in after the install and from the app's admin link.

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

from connector.directory import TenantDirectory
from connector.errors import DestinationError
from connector.vendors.shopify import oauth
from connector.vendors.shopify.installations import InstallationStore
from connector.vendors.shopify.subscriptions import CONNECTOR_TOPICS, SubscriptionError, ensure_subscriptions
from connector.web.errors import error_response
from connector.web.merchant.pages import secure, wants_json
from connector.web.merchant.pages import settings as app_settings

log = logging.getLogger(__name__)
bp = Blueprint("shopify_app", __name__, url_prefix="/shopify", template_folder="templates")

STATE_COOKIE = "connector_shopify_state"
STATE_SECONDS = 600
"""How long an authorization may take (the state's Redis TTL and the state cookie's lifetime)."""
STATE_KEY = "connector:shopify:oauth-state:"
SHOP_TIMEZONE_QUERY = "query shop { shop { ianaTimezone } }"


# -- helpers --------------------------------------------------------------------------------------


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
    return URLSafeTimedSerializer(app_settings().secret_key.get_secret_value(), salt=f"connector.shopify.{purpose}")


def _secret() -> str:
    secret = app_settings().shopify_api_secret
    assert secret is not None
    return secret.get_secret_value()


def refusal(reason: str, status: int, code: str) -> Response:
    """A refusal: a short page, or the usual ``{"error": {"code", "message"}}`` for a JSON client."""
    if wants_json():
        response = error_response(status, code, reason)
    else:
        response = make_response(render_template("shopify_refused.html", reason=reason, status=status))
    response.status_code = status
    return secure(response)


def _set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/shopify",
        httponly=True,
        secure=(app_settings().public_url or "").startswith("https://"),
        samesite="Lax",
    )


def _merchant_pages(shop: str) -> Response:
    """The shop's merchant pages, signed in (the installation's tenant, or its tenants-file one)."""
    from connector.web.merchant.session import start_session

    tenant = _directory().name_for_new_shop(shop)
    response = secure(redirect(f"/app/{tenant}/", code=302))
    start_session(response, tenant=tenant)
    return response


def _admin_client(shop: str, token: str | None = None) -> Any:
    from connector.vendors.shopify.admin import ShopifyAdminClient  # the web tier imports no client at module level

    settings = app_settings()
    return ShopifyAdminClient(
        settings.shopify_admin(shop),
        api_version=settings.shopify_api_version,
        token=token,
        timeout=settings.http_timeout,
    )


def _public(path: str) -> str:
    return f"{app_settings().public_url}{path}"


# -- install ---------------------------------------------------------------------------------------


@bp.get("/install")
def install() -> Response:
    """The App URL: verify Shopify's signature, then authorize (or open the settings page)."""
    settings = app_settings()
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
        return _merchant_pages(shop)
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
    response = secure(redirect(target, code=302))
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
    settings = app_settings()
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
    response = _merchant_pages(shop)
    response.delete_cookie(STATE_COOKIE, path="/shopify")
    return response


# -- settings --------------------------------------------------------------------------------------


@bp.get("/settings")
def settings_page() -> Response:
    """The issue-13 settings page's address: the merchant pages now (``/app/``)."""
    return secure(redirect("/app/", code=301))
