"""The merchant pages' blueprint and what it checks on every request (the stable key, CSRF on
every POST) and adds to every answer (the security headers)."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from connector.web.merchant.pages import refuse, secure, settings
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
    if request.method not in ("GET", "HEAD") and not csrf_ok():
        return refuse("the form has expired or was not sent from this page: reload the page and try again", 403, "csrf")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    return secure(keep_pre_session(response))
