"""Support staff tools: rq-dashboard at ``/admin/rq`` behind ``CONNECTOR_ADMIN_PASSWORD``.

No password configured means the dashboard is off (404), never open. Authentication is HTTP
Basic (any user name, the configured password, compared in constant time). The dashboard is
made to read and requeue jobs with the JSON serializer our queues use, and the GET form of
"requeue all" is refused so that a prefetched link cannot replay a whole registry.
"""

from __future__ import annotations

import hmac
from typing import Any

import rq_dashboard
import rq_dashboard.web as dashboard_web
from flask import Flask, Response, current_app, request
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import requeue_job as _requeue_job
from rq.serializers import JSONSerializer
from werkzeug.exceptions import Conflict, NotFound

from connector.web.errors import error_response

URL_PREFIX = "/admin/rq"


class _JsonJob(Job):
    """rq-dashboard fetches some jobs without a serializer; default ours."""

    @classmethod
    def fetch(cls, id: str, connection: Any = None, serializer: Any = None) -> Job:  # noqa: A002
        return Job.fetch(id, connection=connection, serializer=serializer or JSONSerializer)


def _requeue(job_id: str, connection: Any) -> Job:
    """Requeue a failed job with our serializer; anything else is a clear 404/409, not a 500."""
    try:
        return _requeue_job(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        raise NotFound(f"job {job_id} does not exist (it may have expired)") from None
    except InvalidJobOperation:
        raise Conflict(f"job {job_id} is not in the failed registry (already requeued or delivered)") from None


dashboard_web.config.serializer = JSONSerializer
dashboard_web.Job = _JsonJob  # type: ignore[misc]
dashboard_web.requeue_job = _requeue


def _password_ok(given: str | None) -> bool:
    expected = current_app.config.get("CONNECTOR_ADMIN_PASSWORD") or ""
    return bool(expected) and bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@rq_dashboard.blueprint.before_request
def _guard() -> Response | None:
    if not current_app.config.get("CONNECTOR_ADMIN_PASSWORD"):
        return error_response(404, "admin_disabled", "set CONNECTOR_ADMIN_PASSWORD to enable the dashboard")
    auth = request.authorization
    if auth is None or not _password_ok(auth.password):
        response = error_response(401, "unauthorized", "admin password required")
        response.headers["WWW-Authenticate"] = 'Basic realm="loyalty connector admin"'
        return response
    if request.method == "GET" and "/requeue/" in request.path:
        return error_response(405, "method_not_allowed", "requeue with POST")
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin and origin.rstrip("/") != request.host_url.rstrip("/"):
        return error_response(403, "cross_origin", "cross-origin admin actions are refused")
    return None


def init_admin(app: Flask, redis_url: str, password: str | None) -> None:
    """Mount rq-dashboard (the guard decides per request whether it is enabled)."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["CONNECTOR_ADMIN_PASSWORD"] = password or ""
    dashboard_web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
