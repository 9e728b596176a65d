"""``/admin/trace/<id>``: the chain of one webhook (:mod:`connector.trace`) for support staff,
behind the admin password (the same guard as rq-dashboard: HTTP Basic, cross-site requests
refused, off with a 404 when no password is configured). HTML, or JSON with ``Accept:
application/json``; ``<id>`` is any id ``connector trace`` accepts. Read only (GET)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from redis import Redis
from werkzeug.wrappers import Response

from connector import trace
from connector.web.admin import URL_PREFIX, guard
from connector.web.errors import error_response
from connector.web.merchant.pages import secure, wants_json

bp = Blueprint("admin_trace", __name__, url_prefix="/admin/trace")
bp.before_request(guard)

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@bp.get("/<path:term>")
def show(term: str) -> Response:
    """The trace ``term`` names (the most recent when several match)."""
    redis: Redis = current_app.extensions["connector.redis"]
    tenant = request.args.get("tenant") or None
    found = trace.find(redis, term[:500], tenant=tenant)
    chain = trace.chain(redis, found[0]) if found else None
    if chain is None:
        return secure(error_response(404, "no_trace", f"no trace found; accepted: {trace.ACCEPTED_IDS}"), CSP)
    if wants_json():
        return secure(jsonify({**chain, "matches": found}), CSP)
    page = render_template("admin_trace.html", chain=chain, matches=found, term=term, dashboard=URL_PREFIX + "/")
    return secure(Response(page, mimetype="text/html"), CSP)
