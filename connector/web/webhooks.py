"""``POST /webhooks/<tenant>/<source>[/<token>]``: verify, identify, dedupe, enqueue — nothing more.

``POST /webhooks/_mews/<token>`` is the one Mews URL of the whole connector (see
:func:`receive_mews`): it finds the tenant by the message's ``EnterpriseId``, then goes on as above.

Order of checks: unknown tenant or source (404), body size (413), content type (415),
authenticity on the raw bytes (401), JSON (400), event identity (400 / ignored), then one Redis
transaction (202 accepted, 200 duplicate; 503 with Retry-After when Redis is unreachable).
"""

from __future__ import annotations

import logging  # issue 15 logs
import time  # issue 15 logs
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

import orjson
from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request
from redis.exceptions import RedisError
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException

from connector import metrics
from connector.directory import TenantDirectory
from connector.errors import PayloadError, SignatureError, UnsupportedEvent
from connector.esps.config import relay_skip_reason
from connector.queue import INGEST_QUEUE, accept_webhook
from connector.settings import Settings, Tenant
from connector.sources.base import (
    BodyError,
    ImmediateAnswer,
    InboundRequest,
    Source,
    SourceConfig,
    check_depth,
    load_body,
    require_token,
    translation_guard,
)
from connector.sources.registry import SOURCES
from connector.vendors.mews.source import SOURCE as MEWS
from connector.web.errors import error_response, http_error_response, internal_error_response

bp = Blueprint("webhooks", __name__)

REDIS_RETRY_AFTER = "30"
MEWS_SHARED = "_mews"
"""The shared Mews URL's path segment, and its ``tenant`` label in the counters until a message is
routed: tenant names start with a letter or digit, so it can never be a tenant's URL."""


def _answer(answer: ImmediateAnswer) -> Response:
    if isinstance(answer.body, dict):
        response = jsonify(answer.body)
    else:
        response = Response(answer.body, content_type=answer.content_type)
    response.status_code = answer.status
    response.headers.update(dict(answer.headers))
    return response


def _json(body: dict[str, str], status: int) -> Response:
    """A small JSON answer (``jsonify`` costs several times as much, for options unused here)."""
    return Response(orjson.dumps(body), status, content_type="application/json")


def read_json(raw: bytes) -> Any:
    """The body by the body rules of :func:`~connector.sources.base.load_body` (the workers' own
    reading), faster: orjson reads most bodies (UTF-8 checked) in a quarter of the time, and what
    it refuses (lone surrogate escapes, a byte order mark, nesting past its own limit, non-JSON) is
    decided by ``load_body`` itself. What orjson accepts, ``json`` reads to the same
    value, so the depth limit is the one remaining rule to apply here.

    Raises:
        BodyError: the body breaks a rule.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return load_body(raw)
    return check_depth(value, raw)


def _read_body(stream: IO[bytes], limit: int) -> bytes:
    """Read the request body up to ``limit`` bytes (a stream read may return short)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class WsgiHeaders(Mapping[str, str]):
    """The request headers by lower-case name, looked up in the WSGI environ only when asked.

    A source reads a handful of headers; building the whole mapping per request (iterating
    ``request.headers``, which title-cases every name) is a measurable share of the intake.
    Iterating (rare) lists werkzeug's ``EnvironHeaders`` with the names lower-cased.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = self._environ.get(key)
            if value:
                return str(value)
            raise KeyError(name)
        return str(self._environ["HTTP_" + key])

    def __iter__(self) -> Iterator[str]:
        return (name.lower() for name, _ in EnvironHeaders(self._environ).items())

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _count(metric: str, **labels: str) -> None:
    try:
        metrics.count(current_app.extensions["connector.redis"], metric, 1, **labels)
    except RedisError:
        pass  # a rejection must not turn into a 503 because metrics are down


def _count_rejection(tenant: str, source: str, outcome: str) -> None:
    _count("webhooks", tenant=tenant, source=source, outcome=outcome)


# -- issue 15 logs: the intake's one line per webhook, and its latency histogram --
intake_log = logging.getLogger("connector.intake")
STARTED = "connector.intake.started"
NOTED = "connector.intake.noted"
REASON_SHOWN = 200


SHOPIFY_APP_URL = "/shopify/webhooks"  # connector/web/shopify_webhooks.py: the app's one webhook URL
SHOPIFY_APP_LABEL = "_shopify_app"  # its tenant label until the shop is known (as in its counters)
INTAKE_PATHS = ("/webhooks/", SHOPIFY_APP_URL)


@bp.before_app_request
def _intake_started() -> None:
    """The intake's start, for every webhook URL (this blueprint's and the Shopify app's)."""
    environ = request.environ
    if environ.get("PATH_INFO", "").startswith(INTAKE_PATHS):
        environ[STARTED] = time.perf_counter()


def _note(environ: dict[str, Any], tenant: str, source: str, delivery_id: str) -> None:
    """What the intake line names once the webhook is identified."""
    environ[NOTED] = (tenant, source, delivery_id)


def _outcome(response: Response) -> tuple[str, str | None, str | None]:
    """(outcome, reason, job id) of an intake answer, read back from its small JSON body."""
    status = response.status_code
    try:
        body = orjson.loads(response.get_data()) if response.mimetype == "application/json" else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return ("rejected" if status >= 400 else "answered"), None, None
    if status >= 400:
        error = body.get("error")
        return "rejected", str(error.get("code")) if isinstance(error, dict) else None, None
    state = body.get("status")
    if state in ("accepted", "duplicate"):
        return str(state), None, str(body.get("job") or "") or None
    if state == "ignored":
        return "ignored", str(body.get("reason", ""))[:REASON_SHOWN], None
    return "answered", None, None


def _labels(path: str) -> tuple[str, str]:
    """(tenant, source) of a webhook URL not identified further (a rejection): as the URL names them."""
    if path == SHOPIFY_APP_URL:
        return SHOPIFY_APP_LABEL, "shopify"
    parts = path.split("/")
    if len(parts) > 2 and parts[2] == MEWS_SHARED:
        return MEWS_SHARED, "mews"
    return (parts[2][:64] if len(parts) > 2 else ""), (parts[3][:64] if len(parts) > 3 else "")


@bp.after_app_request
def _intake_finished(response: Response) -> Response:
    """The intake line and histogram of an answer Flask produced (see :func:`finish_intake`)."""
    return finish_intake(request.environ, response)


def finish_intake(environ: dict[str, Any], response: Response) -> Response:
    """One line per webhook (tenant, source, delivery id, outcome, status, latency, trace id: the
    ingest job's id) and the latency in this process's histogram, flushed at most once a second."""
    started = environ.get(STARTED)
    if started is None:
        return response
    seconds = time.perf_counter() - started
    outcome, reason, job = _outcome(response)
    metrics.INTAKE.observe("intake_latency_seconds", seconds, outcome=outcome)
    if intake_log.isEnabledFor(logging.INFO):
        tenant, source, delivery_id = environ.get(NOTED) or (*_labels(environ.get("PATH_INFO", "")), None)
        intake_log.info(
            "webhook %s %s/%s %s%s in %.1f ms",
            outcome,
            tenant,
            source,
            response.status_code,
            f" ({reason})" if reason else "",
            seconds * 1000,
            extra={
                "tenant": tenant,
                "source": source,
                "delivery_id": delivery_id,
                "outcome": outcome,
                "reason": reason,
                "status": response.status_code,
                "latency_ms": round(seconds * 1000, 2),
                "trace_id": job,
            },
        )
    if metrics.INTAKE.due:
        try:
            metrics.INTAKE.flush(current_app.extensions["connector.redis"])
        except RedisError:
            pass  # kept for the next flush; an answer never fails for a metric
    return response


# -- end issue 15 logs --


@bp.after_app_request
def _source_response_headers(response: Response) -> Response:
    """A source's ``response_headers`` on every answer under its URL, including answers produced
    outside the view (routing 405s, werkzeug's 413, the 500 handler)."""
    return add_source_headers(request.path, response)


def add_source_headers(path: str, response: Response) -> Response:
    """The ``response_headers`` of the source whose URL ``path`` is, added to ``response``."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[1] == "webhooks":
        adapter = SOURCES.get("mews" if parts[2] == MEWS_SHARED else parts[3])
        if adapter is not None and adapter.response_headers:
            response.headers.update(adapter.response_headers)
    return response


@bp.route("/webhooks/<tenant>/<source>", methods=["POST", "GET"])
@bp.route("/webhooks/<tenant>/<source>/<token>", methods=["POST", "GET"])
def receive(tenant: str, source: str, token: str | None = None) -> Response:
    """Accept one inbound webhook (see the module docstring for the answers)."""
    # The request itself, not its context-local proxy: each proxy access costs a lookup.
    return receive_request(request._get_current_object(), tenant, source, token)  # type: ignore[attr-defined]


def receive_request(req: Request, tenant: str, source: str, token: str | None = None) -> Response:
    """:func:`receive` for ``req`` (the Flask view and :class:`IntakeFastPath` both call it)."""
    # The app's extensions themselves, not current_app's proxy: the intake reads them a dozen times.
    settings: Settings = current_app.extensions["connector.settings"]
    tenants: TenantDirectory = current_app.extensions["connector.tenants"]
    tenant_cfg = tenants.get(tenant)
    adapter = SOURCES.get(source)
    if tenant_cfg is None:
        if tenants.stale:  # Redis down: a stored tenant cannot be known now; the sender retries
            return _redis_unavailable(tenant, source)
        return error_response(404, "unknown_tenant", f"no tenant named {tenant!r}")
    if adapter is None or source not in tenant_cfg.sources:
        return error_response(404, "unknown_source", f"source {source!r} is not configured for this tenant")
    config = tenant_cfg.sources[source]

    inbound = InboundRequest(
        raw=b"",
        headers=WsgiHeaders(req.environ),
        method=req.method,
        path_token=token,
        query=req.args.to_dict() if req.environ.get("QUERY_STRING") else {},
    )
    if req.method != "POST":  # GET and the HEAD Flask adds to it: a handshake at most, never a job
        try:
            handshake = adapter.answer_get(inbound, config)
        except SignatureError as exc:
            return error_response(401, "invalid_signature", str(exc))
        if handshake is None:
            return error_response(405, "method_not_allowed", "use POST", {"Allow": "POST"})
        return _answer(handshake)

    raw = _read_post(req, settings, adapter, tenant, source)
    if isinstance(raw, Response):
        return raw
    inbound = InboundRequest(raw, inbound.headers, inbound.method, token, inbound.query, _now(), parser=read_json)
    return _intake(req.environ, inbound, tenant_cfg, source, adapter, config, adapter.verify)


@bp.route(f"/webhooks/{MEWS_SHARED}/<token>", methods=["POST", "GET"])
def receive_mews(token: str) -> Response | tuple[Response, int]:
    """``POST /webhooks/_mews/<token>``: the connector's one Mews General Webhook URL.

    Mews allows one General Webhook URL per integration client, not per property (Connector API
    docs, events/wh-faq "Can I set up multiple Webhooks?"), and names the property of each message
    in its ``EnterpriseId``. After the shared token (``CONNECTOR_MEWS_WEBHOOK_TOKEN``, constant
    time; unset: 404) and the body rules, the message goes to the tenant whose Mews source has that
    ``enterprise_id`` and on through exactly the per-tenant intake (:func:`_intake`): the tenant's
    enterprise check, identify, dedup, the same ingest job. An enterprise no tenant claims is
    answered ``ignored`` (200, so Mews does not retry it) and counted.
    """
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    settings: Settings = current_app.extensions["connector.settings"]
    if settings.mews_webhook_token is None:
        return error_response(404, "not_found", "no shared Mews webhook URL is configured")
    if req.method != "POST":
        return error_response(405, "method_not_allowed", "use POST", {"Allow": "POST"})
    adapter = MEWS
    try:
        require_token(token, settings.mews_webhook_token)
    except SignatureError as exc:
        _count_rejection(MEWS_SHARED, "mews", "unauthorized")
        return error_response(401, "invalid_signature", str(exc))
    raw = _read_post(req, settings, adapter, MEWS_SHARED, "mews")
    if isinstance(raw, Response):
        return raw
    query = req.args.to_dict() if req.environ.get("QUERY_STRING") else {}
    # No path token for the adapter: the shared one is checked above, and it is not the tenant's.
    inbound = InboundRequest(raw, WsgiHeaders(req.environ), req.method, None, query, _now(), parser=read_json)
    try:
        body = inbound.json()
    except BodyError as exc:
        _count_rejection(MEWS_SHARED, "mews", "unparseable")
        return error_response(400, exc.code, str(exc))
    enterprise = body.get("EnterpriseId") if isinstance(body, dict) else None
    if not isinstance(enterprise, str) or not enterprise:
        _count_rejection(MEWS_SHARED, "mews", "bad_payload")
        return error_response(400, "invalid_payload", "body is not a Mews General Webhook message (no EnterpriseId)")
    directory: TenantDirectory = current_app.extensions["connector.tenants"]
    tenant = directory.by_mews_enterprise(enterprise)
    if tenant is None:
        _count_rejection(MEWS_SHARED, "mews", "ignored")
        _count("ignored", tenant=MEWS_SHARED, source="mews", reason="unknown_enterprise")
        return jsonify({"status": "ignored", "reason": f"no tenant has Mews enterprise {enterprise[:64]!r}"})
    tenant_cfg = directory.get(tenant)
    if tenant_cfg is None:  # removed meanwhile: not this message's fault
        return error_response(404, "unknown_tenant", f"no tenant named {tenant!r}")
    config = tenant_cfg.sources["mews"]
    # Every check of the per-tenant path except the tenant's own URL token (the shared one was checked).
    return _intake(req.environ, inbound, tenant_cfg, "mews", adapter, config, MEWS.verify_enterprise)


def _redis_unavailable(tenant: str, source: str) -> Response:
    """503 with ``Retry-After``: Redis is unreachable, nothing was acknowledged."""
    current_app.logger.warning("redis unavailable; answering 503 to %s/%s", tenant, source)
    return error_response(
        503, "queue_unavailable", "the queue is unavailable; retry later", {"Retry-After": REDIS_RETRY_AFTER}
    )


def _now() -> str:
    """The web tier's clock, stamped once per request: identification and translation read none."""
    return datetime.now(UTC).isoformat()


def _read_post(req: Request, settings: Settings, adapter: Source, tenant: str, source: str) -> bytes | Response:
    """The body of a POST within the size limit and of the source's content type, or the answer."""
    if req.content_length is not None and req.content_length > settings.max_body_bytes:
        _count_rejection(tenant, source, "too_large")
        return error_response(413, "payload_too_large", f"body exceeds {settings.max_body_bytes} bytes")
    if req.mimetype not in adapter.content_types:
        _count_rejection(tenant, source, "bad_content_type")
        return error_response(
            415,
            "unsupported_media_type",
            f"content type {req.mimetype or 'none'!r} is not accepted; send {', '.join(adapter.content_types)}",
        )
    # Chunked bodies carry no Content-Length: read one byte past the limit to detect them.
    raw = _read_body(req.stream, settings.max_body_bytes + 1)
    if len(raw) > settings.max_body_bytes:
        _count_rejection(tenant, source, "too_large")
        return error_response(413, "payload_too_large", f"body exceeds {settings.max_body_bytes} bytes")
    return raw


def _verified(
    inbound: InboundRequest, source: str, config: SourceConfig, verify: Callable[[InboundRequest, Any], None]
) -> SourceConfig:
    """The config ``inbound`` is authentic under: the current one, else the one with the
    credentials being rotated out (``previous``, see :class:`SourceConfig`).

    Raises:
        SignatureError: neither accepts it (the current config's reason).
    """
    try:
        with translation_guard(f"{source} verification"):
            verify(inbound, config)
        return config
    except SignatureError:
        if config.previous is None:
            raise
        try:
            with translation_guard(f"{source} verification"):
                verify(inbound, config.previous)
        except (SignatureError, PayloadError):
            pass
        else:
            return config.previous
        raise


def _intake(
    environ: dict[str, Any],
    inbound: InboundRequest,
    tenant_cfg: Tenant,
    source: str,
    adapter: Source,
    config: SourceConfig,
    verify: Callable[[InboundRequest, Any], None],
) -> Response:
    """Authenticity (``verify``), body rules, identity, then dedup and enqueue: the per-tenant
    intake once the tenant is known and the body read (``receive`` and ``receive_mews``)."""
    extensions = current_app.extensions
    settings: Settings = extensions["connector.settings"]
    tenant = tenant_cfg.name
    raw = inbound.raw
    try:
        config = _verified(inbound, source, config, verify)
    except SignatureError as exc:
        _count_rejection(tenant, source, "unauthorized")
        return error_response(401, "invalid_signature", str(exc))
    except PayloadError:  # an accident while reading a credential inside the body: never fail open
        _count_rejection(tenant, source, "unauthorized")
        return error_response(401, "invalid_signature", "the request could not be authenticated")

    if adapter.empty_body_is_ping and not raw.strip():
        immediate = adapter.answer_ping(inbound, config)
        if immediate is not None:
            return _answer(immediate)

    try:
        inbound.json()  # the body rules, the same the worker applies to the stored text
    except BodyError as exc:
        _count_rejection(tenant, source, "unparseable")
        return error_response(400, exc.code, str(exc))
    text = raw.decode("utf-8")

    immediate = adapter.answer_ping(inbound, config)
    if immediate is not None:
        return _answer(immediate)

    try:
        with translation_guard(f"{source} {tenant} webhook"):
            envelope = adapter.identify(inbound, config, tenant)
        _note(environ, tenant, source, envelope.delivery_id)  # issue 15 logs: the intake line names it
        if adapter.is_loyalty_event(envelope.event_type):
            skip = relay_skip_reason(tenant_cfg.esp, envelope.event_type)
            if skip is not None:  # loyalty events outside the tenant's esp.events filter
                raise UnsupportedEvent(skip, counter="esp_filter")
    except UnsupportedEvent as ignored:
        _count_rejection(tenant, source, "ignored")
        _count("ignored", tenant=tenant, source=source, reason=ignored.counter)
        body: dict[str, Any] = {"status": "ignored", "reason": ignored.reason}
        return jsonify(body)
    except PayloadError as exc:
        _count_rejection(tenant, source, "bad_payload")
        return error_response(400, "invalid_payload", str(exc))
    skip = tenant_cfg.loyalty.skip_reason(source)
    if skip:  # e.g. LoyaltyLion imports Shopify orders itself: answered now, no job
        _count_rejection(tenant, source, "ignored")
        _count("ignored", tenant=tenant, source=source, reason="platform_imports_source")
        return jsonify({"status": "ignored", "reason": skip})

    text = adapter.stored_body(text, config)  # e.g. Meraki's shared secret travels in the body: not kept
    redis = extensions["connector.redis"]
    try:
        acceptance = accept_webhook(
            redis,
            extensions["connector.queues"][INGEST_QUEUE],
            tenant=tenant,
            source=source,
            event_type=envelope.event_type,
            delivery_id=envelope.delivery_id,
            job_args=(envelope.to_dict(), text),
            dedup_ttl=settings.dedup_ttl,
            schedule=settings.retry_schedule,
            more_delivery_ids=envelope.more_delivery_ids,
        )
    except RedisError:
        return _redis_unavailable(tenant, source)
    if acceptance.status == "duplicate":
        return _json({"status": "duplicate", "job": acceptance.job_id}, 200)
    return _json({"status": "accepted", "job": acceptance.job_id}, 202)


class IntakeFastPath:
    """WSGI middleware: ``POST /webhooks/<tenant>/<source>[/<token>]`` without Flask's request machinery.

    Every webhook goes through Flask's request context, URL routing and hooks, which cost the
    intake about as much as its own work on a 1 KB order (py-spy, issue 16). This serves exactly
    the URLs that routing would hand to :func:`receive` (ASCII paths, non-empty segments, not
    the shared Mews URL) with the same code: :func:`receive_request` in an app context (which
    ``jsonify`` and the counters need), then the app-wide after-request hooks of this blueprint
    in Flask's order (the source's response headers, then the intake line), and the app's JSON
    answers for an HTTP error or a bug. Everything else goes on to Flask unchanged.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve an intake POST here, anything else through ``wsgi_app``."""
        if environ.get("REQUEST_METHOD") == "POST":
            path = environ.get("PATH_INFO", "")
            if path.startswith("/webhooks/") and path.isascii():
                parts = path.split("/")
                if 4 <= len(parts) <= 5 and all(parts[2:]) and parts[2] != MEWS_SHARED:
                    token = parts[4] if len(parts) == 5 else None
                    return self._receive(environ, start_response, path, parts[2], parts[3], token)
        return self.wsgi_app(environ, start_response)

    def _receive(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        path: str,
        tenant: str,
        source: str,
        token: str | None,
    ) -> Iterable[bytes]:
        environ[STARTED] = time.perf_counter()
        with self.app.app_context():
            try:
                response = receive_request(self.app.request_class(environ), tenant, source, token)
            except HTTPException as exc:  # e.g. the client went away mid-body: what the app's handler answers
                response = http_error_response(exc)
            except Exception:  # a bug: logged with its traceback, answered like the app's handler
                self.app.logger.exception("unhandled error")
                response = internal_error_response()
            response = finish_intake(environ, add_source_headers(path, response))
        return response(environ, start_response)
