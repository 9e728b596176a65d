"""Counters shared by every process (web and workers), kept in one Redis hash.

gunicorn forks several web processes and RQ forks a work horse per job, so in-process Prometheus
counters would be scattered; instead each event is one ``HINCRBY`` (pipelined with the work it
counts) and ``/metrics`` renders the hash plus queue depths in the Prometheus text format.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from connector import completion

COUNTERS_KEY = "connector:metrics"

DESCRIPTIONS = {
    "webhooks": "Inbound webhooks by tenant, source and outcome (accepted, duplicate, ignored, rejected)",
    "ignored": "Events or activities ignored on purpose, by tenant, source and reason",
    "deliveries": "Delivery attempts to loyalty platforms and ESPs, by destination and outcome",
    "inexact_amounts": "Amounts a destination cannot take as integers, sent as exact decimal strings, by currency",
    # -- issue 15 logs: delivery failures and retries --
    "delivery_failures": "Delivery and relay attempts that failed for good, by destination and HTTP status",
    "delivery_retries": "Delivery and relay attempts that failed and are tried again, by destination and HTTP status",
    # -- end issue 15 logs --
}


def field_name(metric: str, **labels: str) -> str:
    """Encode a metric and its labels as one hash field: ``name|k=v|k=v``."""
    parts = [metric] + [f"{k}={str(v).replace('|', '/')}" for k, v in sorted(labels.items())]
    return "|".join(parts)


def count(redis: Any, metric: str, amount: int = 1, **labels: str) -> None:
    """Increment a counter (``redis`` may be a client or a pipeline)."""
    redis.hincrby(COUNTERS_KEY, field_name(metric, **labels), amount)


def count_later(redis: Any, metric: str, amount: int = 1, **labels: str) -> None:
    """Increment a counter in the current job's completion round trip (now, outside a worker;
    see :func:`connector.completion.defer`): a job's counters cost no round trip of their own."""
    field = field_name(metric, **labels)
    completion.defer(redis, lambda pipe: pipe.hincrby(COUNTERS_KEY, field, amount))


def read_counters(redis: Any) -> dict[str, int]:
    """All counters as ``{field: value}`` (for tests and the admin page)."""
    return {k.decode(): int(v) for k, v in redis.hgetall(COUNTERS_KEY).items()}


class RedisCollector(Collector):
    """Prometheus collector reading the shared counters and the RQ queues."""

    def __init__(self, redis: Any, queues: list[Any]) -> None:
        self.redis = redis
        self.queues = queues

    def collect(self) -> Iterator[Any]:
        """Yield metric families (called per scrape)."""
        families: dict[str, CounterMetricFamily] = {}
        label_names: dict[str, list[str]] = {}
        for raw_field, value in sorted(read_counters(self.redis).items()):
            name, *pairs = raw_field.split("|")
            labels = dict(pair.split("=", 1) for pair in pairs)
            if name not in families:
                label_names[name] = sorted(labels)
                families[name] = CounterMetricFamily(
                    f"connector_{name}", DESCRIPTIONS.get(name, name), labels=label_names[name]
                )
            families[name].add_metric([labels.get(k, "") for k in label_names[name]], value)
        yield from families.values()
        depth = GaugeMetricFamily("connector_queue_jobs", "RQ jobs by queue and registry", labels=["queue", "state"])
        for queue in self.queues:
            depth.add_metric([queue.name, "queued"], queue.count)
            depth.add_metric([queue.name, "failed"], queue.failed_job_registry.get_job_count(cleanup=False))
            depth.add_metric([queue.name, "scheduled"], queue.scheduled_job_registry.get_job_count(cleanup=False))
            depth.add_metric([queue.name, "started"], queue.started_job_registry.get_job_count(cleanup=False))
        yield depth


# -- issue 15 logs: histograms, the oldest queued job, silent sources --
HISTOGRAMS_KEY = "connector:metrics:histograms"
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "intake_latency_seconds": (
        "Time the web tier took to answer a webhook, by outcome",
        (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    ),
    "webhook_to_delivered_seconds": (
        "From a webhook's arrival to its delivery's success, by destination",
        (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0),
    ),
}
"""Each histogram's help text and fixed bucket bounds (seconds); one field per bucket in Redis."""
FLUSH_SECONDS = 1.0
WORKERS_KEY = "rq:workers"  # RQ's set of registered workers (rq.worker_registration.REDIS_WORKER_KEYS)


def _bucket(metric: str, seconds: float) -> str:
    bounds = HISTOGRAMS[metric][1]
    index = bisect.bisect_left(bounds, seconds)
    return repr(bounds[index]) if index < len(bounds) else "+Inf"


def observe(redis: Any, metric: str, seconds: float, amount: int = 1, **labels: str) -> None:
    """Record ``amount`` observations of ``seconds`` in histogram ``metric`` (a client or a
    pipeline): the bucket's count, the count and the sum, in :data:`HISTOGRAMS_KEY`."""
    base = field_name(metric, **labels)
    redis.hincrby(HISTOGRAMS_KEY, f"{base}|le={_bucket(metric, seconds)}", amount)
    redis.hincrby(HISTOGRAMS_KEY, f"{base}|count", amount)
    redis.hincrbyfloat(HISTOGRAMS_KEY, f"{base}|sum", seconds * amount)


class BufferedHistograms:
    """Observations kept in this process and written to Redis at most once a second.

    The intake answers without an extra Redis round trip per webhook: a request adds to a dict
    here, and the first request after :data:`FLUSH_SECONDS` writes everything in one pipeline
    (and ``/metrics`` flushes before reading). What a process held when it ended is lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[float]] = {}  # field base -> [count per bucket…, count, sum]
        self._next_flush = time.monotonic() + FLUSH_SECONDS

    def observe(self, metric: str, seconds: float, **labels: str) -> None:
        """Note one observation."""
        base = field_name(metric, **labels)
        bounds = HISTOGRAMS[metric][1]
        with self._lock:
            entry = self._pending.get(base)
            if entry is None:
                entry = self._pending[base] = [0.0] * (len(bounds) + 3)
            entry[bisect.bisect_left(bounds, seconds)] += 1
            entry[-2] += 1
            entry[-1] += seconds

    def discard(self) -> None:
        """Drop what is pending (a test that starts on an empty Redis)."""
        with self._lock:
            self._pending = {}

    @property
    def due(self) -> bool:
        """Whether a flush is due (cheap: one clock read)."""
        return time.monotonic() >= self._next_flush

    def flush(self, redis: Any) -> None:
        """Write what is pending in one pipeline (kept for the next flush if Redis fails)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._next_flush = time.monotonic() + FLUSH_SECONDS
        if not pending:
            return
        try:
            with redis.pipeline(transaction=False) as pipe:
                for base, entry in pending.items():
                    metric = base.split("|", 1)[0]
                    bounds = HISTOGRAMS[metric][1]
                    for index, amount in enumerate(entry[: len(bounds) + 1]):
                        if amount:
                            le = repr(bounds[index]) if index < len(bounds) else "+Inf"
                            pipe.hincrby(HISTOGRAMS_KEY, f"{base}|le={le}", int(amount))
                    pipe.hincrby(HISTOGRAMS_KEY, f"{base}|count", int(entry[-2]))
                    pipe.hincrbyfloat(HISTOGRAMS_KEY, f"{base}|sum", entry[-1])
                pipe.execute()
        except Exception:  # whatever the send raised: the counts go back, and the error on to the caller
            with self._lock:  # put back: the next flush tries again
                for base, entry in pending.items():
                    kept = self._pending.setdefault(base, [0.0] * len(entry))
                    for index, amount in enumerate(entry):
                        kept[index] += amount
            raise


INTAKE = BufferedHistograms()
"""This process's intake latency observations."""


def read_histograms(redis: Any) -> dict[str, dict[str, Any]]:
    """``{field base: {"buckets": {le: count}, "count": n, "sum": s}}`` of every histogram."""
    found: dict[str, dict[str, Any]] = {}
    for raw_field, raw in redis.hgetall(HISTOGRAMS_KEY).items():
        key = raw_field.decode()
        base, last = key.rsplit("|", 1)
        entry = found.setdefault(base, {"buckets": {}, "count": 0, "sum": 0.0})
        if last == "count":
            entry["count"] = int(raw)
        elif last == "sum":
            entry["sum"] = float(raw)
        elif last.startswith("le="):
            entry["buckets"][last[3:]] = int(raw)
    return found


def _histogram_families(redis: Any) -> Iterator[Any]:
    families: dict[str, HistogramMetricFamily] = {}
    label_names: dict[str, list[str]] = {}
    for base, entry in sorted(read_histograms(redis).items()):
        name, *pairs = base.split("|")
        if name not in HISTOGRAMS:
            continue
        labels = dict(pair.split("=", 1) for pair in pairs)
        if name not in families:
            label_names[name] = sorted(labels)
            families[name] = HistogramMetricFamily(f"connector_{name}", HISTOGRAMS[name][0], labels=label_names[name])
        cumulative = 0
        buckets = []
        for bound in HISTOGRAMS[name][1]:
            cumulative += entry["buckets"].get(repr(bound), 0)
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", entry["count"]))
        families[name].add_metric([labels.get(k, "") for k in label_names[name]], buckets, entry["sum"])
    yield from families.values()


def _epoch(stamp: Any) -> float | None:
    if not stamp:
        return None
    text = stamp.decode() if isinstance(stamp, bytes) else str(stamp)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def oldest_queued_ages(redis: Any, queues: list[Any], now: float | None = None) -> dict[str, float]:
    """Seconds since the first job of each queue was enqueued (0 for an empty queue), from RQ's
    job hashes: two round trips whatever the number of queues."""
    moment = time.time() if now is None else now
    with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.lindex(queue.key, 0)
        firsts = pipe.execute()
    with redis.pipeline(transaction=False) as pipe:
        for first in firsts:
            job_id = first.decode() if isinstance(first, bytes) else str(first or "")
            pipe.hget(f"rq:job:{job_id}", "enqueued_at")
        stamps = pipe.execute()
    ages = {}
    for queue, first, stamp in zip(queues, firsts, stamps, strict=True):
        enqueued = _epoch(stamp) if first else None
        ages[queue.name] = max(moment - enqueued, 0.0) if enqueued is not None else 0.0
    return ages


SourceWindows = Callable[[], Mapping[str, Mapping[str, float | None]]]
"""``{tenant: {source: silent_after hours or None}}`` of every tenant (read per scrape)."""


def _source_families(redis: Any, windows: SourceWindows) -> Iterator[Any]:
    from connector import activity_log  # the Activity page's records: when each source last sent

    since = GaugeMetricFamily(
        "connector_source_seconds_since_last_webhook",
        "Seconds since the last webhook a job took up, by tenant and source (absent: none kept)",
        labels=["tenant", "source"],
    )
    silent = GaugeMetricFamily(
        "connector_source_silent",
        "1 when a source sent nothing for longer than its silent_after hours (never counts), else 0",
        labels=["tenant", "source"],
    )
    now = datetime.now(UTC)
    for tenant, sources in sorted(windows().items()):
        seen = activity_log.last_seen(redis, tenant, sources)
        quiet = activity_log.silent_sources(redis, tenant, sources, now)
        for source in sorted(sources):
            moment = seen.get(source)
            if moment is not None:
                since.add_metric([tenant, source], max((now - moment).total_seconds(), 0.0))
            if sources[source]:
                silent.add_metric([tenant, source], 1.0 if source in quiet else 0.0)
    yield since
    yield silent


class ObservedCollector(Collector):
    """The metrics of issue 15 that are read at scrape time: histograms, the oldest queued job
    per queue, and per tenant and source the time since the last webhook and the silence gauge."""

    def __init__(self, redis: Any, queues: list[Any], windows: SourceWindows) -> None:
        self.redis = redis
        self.queues = queues
        self.windows = windows

    def collect(self) -> Iterator[Any]:
        """Yield metric families (called per scrape)."""
        yield from _histogram_families(self.redis)
        oldest = GaugeMetricFamily(
            "connector_queue_oldest_job_age_seconds",
            "Seconds the first job of each queue has waited since it was enqueued (0: empty)",
            labels=["queue"],
        )
        for name, age in oldest_queued_ages(self.redis, self.queues).items():
            oldest.add_metric([name], age)
        yield oldest
        workers = GaugeMetricFamily("connector_workers", "RQ workers registered (alive: they heartbeat) on the queues")
        workers.add_metric([], float(self.redis.scard(WORKERS_KEY)))
        yield workers
        yield from _source_families(self.redis, self.windows)


# -- end issue 15 logs --
