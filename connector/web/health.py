"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.exceptions import RedisError

from connector.durability import DurabilityProbe
from connector.metrics import INTAKE, ObservedCollector, RedisCollector
from connector.web.errors import error_response

bp = Blueprint("health", __name__)


def _source_windows() -> dict[str, dict[str, float | None]]:
    """Every tenant's sources with their ``silent_after`` hours (for the silence gauges)."""
    tenants = current_app.extensions["connector.tenants"].all()
    return {name: {s: c.silent_after for s, c in tenant.sources.items()} for name, tenant in tenants.items()}


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Redis answers; otherwise 503 so a load balancer stops sending webhooks here.

    The body also says whether the server keeps every acknowledged webhook (``durability``:
    ``appendonly``/``appendfsync``/``maxmemory-policy``, checked at most once a minute). A server
    that does not is still ready: it is a warning for whoever runs it, not a reason to refuse.
    """
    redis = current_app.extensions["connector.redis"]
    try:
        redis.ping()
    except RedisError:
        return error_response(503, "redis_unavailable", "Redis is not reachable", {"Retry-After": "30"})
    probe = current_app.extensions.setdefault("connector.durability", DurabilityProbe())
    return jsonify({"status": "ready", "durability": probe.current(redis).as_dict()})


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: webhook, ignore and delivery counters, queue depths and the oldest
    queued job, latency histograms, and each source's time since its last webhook and silence."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        RedisCollector(
            current_app.extensions["connector.redis"],
            list(current_app.extensions["connector.queues"].values()),
        )
    )
    # Histograms, the oldest queued job per queue, the sources' silence (issue 15).
    redis = current_app.extensions["connector.redis"]
    queues = list(current_app.extensions["connector.queues"].values())
    registry.register(ObservedCollector(redis, queues, _source_windows))
    try:
        INTAKE.flush(redis)  # this process's intake latencies, not a second late
        payload = generate_latest(registry)
    except RedisError:
        return error_response(503, "redis_unavailable", "Redis is not reachable", {"Retry-After": "30"})
    return Response(payload, content_type=CONTENT_TYPE_LATEST)
