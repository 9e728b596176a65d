"""``/admin/trace/<id>``: the chain of one webhook (:mod:`connector.trace`) for support staff,
behind the admin password (the same guard as rq-dashboard: HTTP Basic, cross-site requests
refused, off with a 404 when no password is configured). HTML, or JSON with ``Accept:
application/json``; ``<id>`` is any id ``connector trace`` accepts. Read only (GET)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from redis import Redis

from connector import trace
from connector.web.admin import URL_PREFIX, guard
from connector.web.errors import error_response

bp = Blueprint("admin_trace", __name__, url_prefix="/admin/trace")
bp.before_request(guard)

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/<path:term>")
def show(term: str) -> Response:
    """The trace ``term`` names (the most recent when several match)."""
    redis: Redis = current_app.extensions["connector.redis"]
    tenant = request.args.get("tenant") or None
    found = trace.find(redis, term[:500], tenant=tenant)
    chain = trace.chain(redis, found[0]) if found else None
    if chain is None:
        return _secure(error_response(404, "no_trace", f"no trace found; accepted: {trace.ACCEPTED_IDS}"))
    wants_json = request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    if wants_json:
        return _secure(jsonify({**chain, "matches": found}))
    page = render_template("admin_trace.html", chain=chain, matches=found, term=term, dashboard=URL_PREFIX + "/")
    return _secure(Response(page, mimetype="text/html"))
