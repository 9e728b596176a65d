"""Support staff tools: rq-dashboard at ``/admin/rq`` and the trace of a webhook at
``/admin/trace/<id>`` (:mod:`connector.web.trace_page`), behind ``CONNECTOR_ADMIN_PASSWORD``.

No password configured means the dashboard is off (404), never open. Authentication is HTTP
Basic (any user name, the configured password, compared in constant time). The dashboard is
made to read jobs, workers' current jobs and requeue with the JSON serializer our queues use.

Every action that changes state (requeue, requeue all, delete, empty, compact) is POST only:
GET and HEAD (which Flask adds to every GET route) are refused with 405, so a prefetched link or
a probe cannot replay a registry. On every method, a request whose ``Origin`` is another site is
refused (403), and so is a POST whose ``Referer`` or ``Sec-Fetch-Site`` says cross-site
(browsers send the password with any request to the host: that is a CSRF surface).
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import urlsplit

import rq_dashboard
import rq_dashboard.web as dashboard_web
from flask import Flask, Response, current_app, request, url_for
from markupsafe import escape
from redis import Redis
from rq import Worker
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


class _JsonWorker(Worker):
    """rq-dashboard lists workers without a serializer and then unpickles their current job
    (a 500 on every poll while JSON jobs run): default ours, and a job that ended meanwhile is idle."""

    @classmethod
    def all(
        cls,
        connection: Any = None,
        job_class: Any = None,
        queue_class: Any = None,
        queue: Any = None,
        serializer: Any = None,
    ) -> list[Any]:
        """Every worker, as a :class:`_JsonWorker` reading jobs with the JSON serializer."""
        return super().all(
            connection=connection,
            job_class=job_class,
            queue_class=queue_class,
            queue=queue,
            serializer=serializer or JSONSerializer,
        )

    def get_current_job(self) -> Job | None:
        """The job being worked on, or ``None`` (also when it finished or expired meanwhile)."""
        job_id = self.get_current_job_id()
        if job_id is None:
            return None
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None


# -- issue 15 deploy: rq-dashboard uses the app's own Redis client (connector.queue.connect) --
# rq-dashboard parses RQ_DASHBOARD_REDIS_URL with redis-sentinel-url, which reads a Sentinel URL's
# password differently and opens a new pool per request: it gets the app's client instead, so the
# dashboard follows a Sentinel failover like every other client. The URL it shows on its pages has
# no credentials (rq-dashboard masks only user:password@, not a ?sentinel_password= or ?password=).


def _dashboard_connection(url: str, **_options: Any) -> tuple[None, Redis]:
    """Stands in for ``redis_sentinel_url.connect``: (no sentinel object, the app's client)."""
    client: Redis = current_app.extensions["connector.redis"]
    return None, client


def shown_redis_url(url: str) -> str:
    """``url`` without its user, password and query (what the dashboard may display)."""
    return re.sub(r"://[^@/]*@", "://", url).split("?", 1)[0]


dashboard_web.from_url = _dashboard_connection
# -- end issue 15 deploy --
dashboard_web.config.serializer = JSONSerializer
dashboard_web.Job = _JsonJob
dashboard_web.Worker = _JsonWorker
dashboard_web.requeue_job = _requeue

# rq-dashboard endpoints that change state: POST only.
STATE_CHANGING = frozenset(
    f"rq_dashboard.{name}"
    for name in ("requeue_job_view", "requeue_all", "delete_job_view", "empty_queue", "compact_queue")
)


def _password_ok(given: str | None) -> bool:
    expected = current_app.config.get("CONNECTOR_ADMIN_PASSWORD") or ""
    return bool(expected) and bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@rq_dashboard.blueprint.before_request
def guard() -> Response | None:
    """The admin pages' check (rq-dashboard and the trace page): off (404) without a password,
    401 without the right one, 403 for a cross-site request, 405 for a state change by GET."""
    if not current_app.config.get("CONNECTOR_ADMIN_PASSWORD"):
        return error_response(404, "admin_disabled", "set CONNECTOR_ADMIN_PASSWORD to enable the dashboard")
    auth = request.authorization
    if auth is None or not _password_ok(auth.password):
        response = error_response(401, "unauthorized", "admin password required")
        response.headers["WWW-Authenticate"] = 'Basic realm="loyalty connector admin"'
        return response
    if _cross_site():
        return error_response(403, "cross_origin", "cross-origin admin requests are refused")
    if request.endpoint in STATE_CHANGING and request.method != "POST":
        return error_response(405, "method_not_allowed", "this action changes state: use POST", {"Allow": "POST"})
    return None


@rq_dashboard.blueprint.after_request
def _link_to_trace(response: Response) -> Response:
    """A job's page links to its trace (``/admin/trace/<job id>``, which finds the job's chain):
    plain HTML after the page's heading, no script, so no Content-Security-Policy is weakened."""
    if request.endpoint != "rq_dashboard.job_view" or response.status_code != 200 or response.is_streamed:
        return response
    job_id = str((request.view_args or {}).get("job_id", ""))
    page = response.get_data(as_text=True)
    heading = page.find("</h2>")
    if not job_id or heading < 0:
        return response
    href = escape(url_for("admin_trace.show", term=job_id))
    link = f'<p><a id="connector-trace-link" href="{href}">The trace of this job (its whole webhook chain)</a></p>'
    response.set_data(page[: heading + 5] + link + page[heading + 5 :])
    return response


def _same_origin(url: str) -> bool:
    given = urlsplit(url)
    own = urlsplit(request.host_url)
    return (given.scheme, given.netloc) == (own.scheme, own.netloc)


def _cross_site() -> bool:
    """The request comes from another site's page (checked on every method)."""
    origin = request.headers.get("Origin")
    if origin and (origin == "null" or not _same_origin(origin)):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False  # a link followed from elsewhere may read, never act
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return True
    referer = request.headers.get("Referer")
    return bool(referer) and not _same_origin(str(referer))


def init_admin(app: Flask, redis_url: str, password: str | None) -> None:
    """Mount rq-dashboard (the guard decides per request whether it is enabled)."""
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = shown_redis_url(redis_url)  # issue 15 deploy: never the credentials
    app.config["CONNECTOR_ADMIN_PASSWORD"] = password or ""
    with app.app_context():  # issue 15 deploy: _dashboard_connection reads the app's client
        dashboard_web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    from connector.web import trace_page  # after the guard it reuses is defined

    app.register_blueprint(trace_page.bp)  # /admin/trace/<id> (issue 15)
