"""The metrics of issue 15 at /metrics after real runs: failed and retried deliveries, the intake
and webhook-to-delivered histograms, the oldest queued job, the sources' silence, the workers;
and config/prometheus-alerts.yml uses only metrics that /metrics exports."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import load_fixture, shopify_headers, tenants_toml
from prometheus_client.parser import text_string_to_metric_families

from connector import metrics
from connector.web import create_app

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "config" / "prometheus-alerts.yml"
BODY = load_fixture("shopify", "orders_paid")
URL = "/webhooks/harbour/shopify"


@pytest.fixture(autouse=True)
def _fresh_intake_buffer():
    """This process's pending intake observations belong to earlier tests' Redis: dropped."""
    metrics.INTAKE.discard()


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_a_retry_then_a_delivery(client, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "path": "/activities"})
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    work(wait_for_retries=5)
    samples = scrape(client)
    assert value(samples, "connector_delivery_retries_total", destination="glu", status="503") == 1
    assert value(samples, "connector_delivery_failures_total", destination="glu", status="503") is None
    assert value(samples, "connector_webhook_to_delivered_seconds_count", destination="glu") == 1
    delivered_in = value(samples, "connector_webhook_to_delivered_seconds_sum", destination="glu")
    assert delivered_in is not None and 0 < delivered_in < 60
    assert value(samples, "connector_webhook_to_delivered_seconds_bucket", destination="glu", le="+Inf") == 1
    assert value(samples, "connector_intake_latency_seconds_count", outcome="accepted") == 1
    assert value(samples, "connector_intake_latency_seconds_bucket", outcome="accepted", le="2.5") == 1


def test_a_final_failure_is_counted_with_its_status(client, sandbox, work):
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 400, "path": "/activities"})
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    work()
    samples = scrape(client)
    assert value(samples, "connector_delivery_failures_total", destination="glu", status="400") == 1
    assert value(samples, "connector_delivery_retries_total", destination="glu", status="400") is None
    assert value(samples, "connector_webhook_to_delivered_seconds_count", destination="glu") is None


def test_intake_latency_counts_every_outcome(client):
    client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="one"))
    client.post(URL, data=BODY, headers=shopify_headers(BODY, webhook_id="one"))
    client.post(URL, data=BODY, headers={**shopify_headers(BODY), "X-Shopify-Hmac-Sha256": "AAAA"})
    samples = scrape(client)
    for outcome in ("accepted", "duplicate", "rejected"):
        assert value(samples, "connector_intake_latency_seconds_count", outcome=outcome) == 1, outcome
        assert value(samples, "connector_intake_latency_seconds_sum", outcome=outcome) > 0


def test_oldest_queued_job_age(client):
    samples = scrape(client)
    assert value(samples, "connector_queue_oldest_job_age_seconds", queue="ingest") == 0  # empty
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    time.sleep(1.1)
    samples = scrape(client)
    assert value(samples, "connector_queue_oldest_job_age_seconds", queue="ingest") >= 1.0
    assert value(samples, "connector_queue_oldest_job_age_seconds", queue="delivery") == 0


@pytest.fixture
def watched(env, sandbox):
    """A test client whose tenant harbour warns after an hour without a Shopify webhook."""
    toml = tenants_toml(sandbox.url).replace(
        'shop_domain = "harbour-hotels.myshopify.com"', 'shop_domain = "harbour-hotels.myshopify.com"\nsilent_after = 1'
    )
    return create_app(env(toml)).test_client()


def test_silent_gauge_and_seconds_since_the_last_webhook(watched, redis, work):
    client = watched
    samples = scrape(client)
    assert value(samples, "connector_source_silent", tenant="harbour", source="shopify") == 1  # never sent
    assert value(samples, "connector_source_silent", tenant="marina", source="shopify") is None  # no window
    assert value(samples, "connector_source_seconds_since_last_webhook", tenant="harbour", source="shopify") is None
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    work()
    samples = scrape(client)
    assert value(samples, "connector_source_silent", tenant="harbour", source="shopify") == 0
    since = value(samples, "connector_source_seconds_since_last_webhook", tenant="harbour", source="shopify")
    assert since is not None and 0 <= since < 60
    # Two hours later (the record's time moved back), the source is silent again.
    key = "connector:activity:harbour:webhooks:shopify"
    (job, seen), *_ = redis.zrange(key, 0, 0, withscores=True)
    redis.zadd(key, {job: seen - 2 * 3600})
    samples = scrape(client)
    assert value(samples, "connector_source_silent", tenant="harbour", source="shopify") == 1
    assert value(samples, "connector_source_seconds_since_last_webhook", tenant="harbour", source="shopify") > 7200


def test_workers_gauge(client, redis):
    assert value(scrape(client), "connector_workers") == 0
    redis.sadd(metrics.WORKERS_KEY, "rq:worker:one")
    assert value(scrape(client), "connector_workers") == 1


def test_buffered_histograms_flush_once_a_second_and_keep_what_redis_refused(redis):
    buffer = metrics.BufferedHistograms()
    buffer.observe("intake_latency_seconds", 0.003, outcome="accepted")
    buffer.observe("intake_latency_seconds", 7.0, outcome="accepted")  # past the last bound
    assert not buffer.due

    class Down:
        def pipeline(self, transaction: bool = False):
            raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        buffer.flush(Down())
    buffer.flush(redis)
    (entry,) = metrics.read_histograms(redis).values()
    assert entry["count"] == 2 and entry["buckets"] == {"0.005": 1, "+Inf": 1}
    assert entry["sum"] == pytest.approx(7.003)


# --- the alert rules ------------------------------------------------------------------------------

DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


def test_alert_rules_are_a_prometheus_rule_file_using_exported_metrics(watched, sandbox, work):
    client = watched
    # A run that makes every metric appear: a retry, a final failure, a delivery.
    sandbox.sandboxes.glu.faults.arm({"mode": "status", "status": 503, "path": "/activities"})
    assert client.post(URL, data=BODY, headers=shopify_headers(BODY)).status_code == 202
    work(wait_for_retries=5)
    exported = {name for name, _ in scrape(client)}
    exported |= {name.rsplit("_", 1)[0] for name in exported if name.endswith(("_bucket", "_sum", "_count"))}
    exported |= {"connector_delivery_failures_total"}  # only after a final failure (test above)

    rules = yaml.safe_load(ALERTS.read_text())
    assert set(rules) == {"groups"} and rules["groups"]
    names = set()
    used = set()
    for group in rules["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"] not in names and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", rule["alert"])
            names.add(rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert DURATION.match(str(rule.get("for", "0s"))), rule
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"]
            used |= set(re.findall(r"\bconnector_[a-z0-9_]+", rule["expr"]))
    assert {"SourceSilent", "QueueBacklogOld", "DeliveryFailuresRising", "RedisDown", "WorkersAbsent"} <= names
    assert len(used) >= 5, used
    assert not (used - exported), f"not exported by /metrics: {used - exported}"
