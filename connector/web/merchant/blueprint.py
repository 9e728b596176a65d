"""The merchant pages' blueprint and what it checks on every request (the stable key, CSRF on
every POST) and adds to every answer (the security headers)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from connector.web.merchant.pages import directory, refuse, secure, settings
from connector.web.merchant.session import csrf_ok, keep_pre_session

bp = Blueprint(
    "merchant",
    __name__,
    url_prefix="/app",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@bp.before_request
def _guard() -> Response | None:
    if request.endpoint == "merchant.static":
        return None
    if not settings().tenant_store_enabled:
        return refuse(
            "the merchant pages need a stable CONNECTOR_SECRET_KEY (it signs the sessions and seals the "
            "settings): set it and restart",
            404,
            "no_secret_key",
        )
    # What another process changed a moment ago (a tenant created, a key saved): one read of the
    # version key per page; the store is read again only when it changed.
    found = directory()
    found.refresh()
    if found.stale:
        raise RedisError("the tenant store could not be read")
    if request.method not in ("GET", "HEAD") and not csrf_ok():
        return refuse("the form has expired or was not sent from this page: reload the page and try again", 403, "csrf")
    return None


@bp.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> Response:
    """Redis unreachable mid-page: a 503 saying so and when to try again, not a 500."""
    current_app.logger.warning("merchant pages: Redis unavailable: %s", exc)
    response = refuse("the connector cannot reach its Redis right now: try again in a minute", 503, "redis_unavailable")
    response.headers["Retry-After"] = "30"
    return response


@bp.after_request
def _headers(response: Response) -> Response:
    return secure(keep_pre_session(response))
