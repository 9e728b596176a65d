"""Counters shared by every process (web and workers), kept in one Redis hash.

gunicorn forks several web processes and RQ forks a work horse per job, so in-process Prometheus
counters would be scattered; instead each event is one ``HINCRBY`` (pipelined with the work it
counts) and ``/metrics`` renders the hash plus queue depths in the Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

COUNTERS_KEY = "connector:metrics"

DESCRIPTIONS = {
    "webhooks": "Inbound webhooks by tenant, source and outcome (accepted, duplicate, ignored, rejected)",
    "ignored": "Events or activities ignored on purpose, by tenant, source and reason",
    "deliveries": "Delivery attempts to loyalty platforms and ESPs, by destination and outcome",
    "inexact_amounts": "Amounts a destination cannot take as integers, sent as exact decimal strings, by currency",
}


def field_name(metric: str, **labels: str) -> str:
    """Encode a metric and its labels as one hash field: ``name|k=v|k=v``."""
    parts = [metric] + [f"{k}={str(v).replace('|', '/')}" for k, v in sorted(labels.items())]
    return "|".join(parts)


def count(redis: Any, metric: str, amount: int = 1, **labels: str) -> None:
    """Increment a counter (``redis`` may be a client or a pipeline)."""
    redis.hincrby(COUNTERS_KEY, field_name(metric, **labels), amount)


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
