"""After the drain: what became of every acknowledged webhook, per source family and in total.

Each logical webhook's ingest jobs (the ids its 2xx answers named) are followed through RQ: an
ingest job's result names its delivery / relay jobs, and a delivery that RQ and the ledger call
delivered is looked up at the destination sandbox by its business key (Glu ``externalReference``,
LoyaltyLion ``merchant_id``, Voucherify ``metadata.connector_key``, the ESP's event id). Outcomes:

* ``delivered`` — held by the destination; ``ignored`` — a job ended ``ignored`` with its reason
  (or the intake answered ``ignored``); ``failed`` — in the failed registry, with the reason RQ kept;
* ``never_run`` — a job hash still ``queued`` that no queue or registry holds: acknowledged, and
  nothing will ever run it;
* ``unfinished`` — still queued, scheduled or started when the drain ended;
* ``lost`` — anything else after a 2xx: a job that vanished, or "delivered" but not at the destination.

``doubled`` counts business keys a destination holds more than once (per activity name).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests
from redis import Redis
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from connector.queue import QUEUE_NAMES, get_queue
from faults.traffic import FAMILIES, LogicalWebhook

OUTCOMES = ("delivered", "ignored", "failed", "unfinished", "never_run", "lost")  # by severity
TENANT_PLATFORM = {"fx-glu": "glu", "fx-lion": "loyaltylion", "fx-vouch": "voucherify"}
TENANT_ESP = {"fx-relay": "klaviyo", "fx-relay-mc": "mailchimp"}


def text(value: Any) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Outcome:
    """The end of one job chain."""

    kind: str
    reason: str = ""


def destination_index(sandbox_url: str) -> dict[str, Counter[tuple[str, str]]]:
    """Per destination: (activity or event name, business key) → how many times it is held."""

    def state(vendor: str) -> dict[str, Any]:
        result: dict[str, Any] = requests.get(f"{sandbox_url}/{vendor}/_sandbox/state", timeout=120).json()
        return result

    index: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for activity in state("glu")["activities"]:
        index["glu"][(activity["type"], str(activity.get("externalReference")))] += 1
    lion = state("loyaltylion")
    for activity in lion["activities"]:
        index["loyaltylion"][(activity["rule"]["name"], str(activity.get("merchant_id")))] += 1
    for order in lion["orders"]:
        index["loyaltylion"][("order", str(order.get("merchant_id")))] += 1
    for event in state("voucherify")["events"]:
        index["voucherify"][(event["event"], str((event.get("metadata") or {}).get("connector_key")))] += 1
    for event in state("klaviyo")["events"]:
        index["klaviyo"][(event["metric"], str(event.get("unique_id")))] += 1
    for event in state("mailchimp")["events"]:
        index["mailchimp"][(event["name"], str((event.get("properties") or {}).get("event_id")))] += 1
    return index


def reason_of(result: Result | None, job: Job) -> str:
    """The last line of the failure RQ kept (the exception and its message), or ``""``."""
    text = (result.exc_string if result is not None else None) or job.exc_info or ""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class Classifier:
    """Follows job chains in Redis and checks deliveries at the destinations."""

    def __init__(self, client: Redis, index: dict[str, Counter[tuple[str, str]]]) -> None:
        self.client = client
        self.keys: dict[str, set[str]] = {name: {key for _, key in held} for name, held in index.items()}
        self.cache: dict[str, list[Outcome]] = {}
        self.key_family: dict[tuple[str, str], str] = {}  # (destination, business key) → family
        self.members: dict[str, set[str]] = {}
        for name in QUEUE_NAMES:
            queue = get_queue(client, name)
            ids = {text(m) for m in client.lrange(queue.key, 0, -1)}
            for registry in (queue.scheduled_job_registry, queue.started_job_registry, queue.deferred_job_registry):
                # started entries are "<job id>:<execution id>"; job ids have no ":"
                ids |= {text(m).split(":")[0] for m in client.zrange(registry.key, 0, -1)}
            self.members[name] = ids

    def held(self, job_id: str, origin: str) -> bool:
        """Whether a queue or a scheduled / started / deferred registry of ``origin`` holds the job."""
        return job_id in self.members.get(origin, set())

    def classify(self, job_id: str, family: str, tenant: str = "") -> list[Outcome]:
        """Every end of the chain starting at ``job_id``."""
        if job_id not in self.cache:
            self.cache[job_id] = self._classify(job_id, family, tenant)
        return self.cache[job_id]

    # -- issue 16 jobs: a delivery or relay its ingest job made itself has no job, only its records --
    def _inline(self, job_id: str, tenant: str) -> Outcome | None:
        """The end of a delivery or relay without an RQ job, from its latest activity record
        (``None``: it has none). A delivered one is checked at the destination by
        :func:`check_expectations` and the doubled count, as every delivery is."""
        from connector import activity_log

        records = activity_log.attempts(self.client, tenant, [job_id]).get(job_id) if tenant else None
        if not records:
            return None
        latest = records[0]
        status = str(latest.get("status"))
        if status in {"delivered", "ignored"}:
            return Outcome(status, str(latest.get("reason") or "by its ingest job"))
        if status == "failed":
            return Outcome("failed", str(latest.get("reason") or ""))
        return Outcome("lost", f"its ingest job's attempt ended {status} but no job retries it")

    # -- end issue 16 jobs --

    def _classify(self, job_id: str, family: str, tenant: str = "") -> list[Outcome]:
        try:
            job = Job.fetch(job_id, connection=self.client, serializer=JSONSerializer)
        except Exception as exc:
            inline = self._inline(job_id, tenant)  # issue 16 jobs
            if inline is not None:
                return [inline]
            return [Outcome("lost", f"job {job_id} is gone or unreadable ({type(exc).__name__})")]
        status = job.get_status(refresh=False)
        status_name = getattr(status, "value", str(status))
        if status_name == "queued":
            if self.held(job_id, job.origin):
                return [Outcome("unfinished", "still queued")]
            return [Outcome("never_run", f"{job.func_name} job queued in no queue or registry")]
        if status_name in {"scheduled", "started", "deferred"}:
            return [Outcome("unfinished", f"still {status_name}")]
        result = job.latest_result()
        if status_name == "failed":
            return [Outcome("failed", reason_of(result, job))]
        if status_name != "finished":
            return [Outcome("lost", f"job ended {status_name}")]
        value = result.return_value if result is not None else None
        if not isinstance(value, dict):
            return [Outcome("lost", "finished without a result")]
        state = value.get("status")
        if state == "ignored":
            return [Outcome("ignored", str(value.get("reason", "")))]
        if job.func_name == "connector.jobs.ingest":
            children = list(value.get("deliveries") or []) + list(value.get("relays") or [])
            if state == "erasure":
                children = [str(value.get("job"))]
            outcomes: list[Outcome] = []
            parent = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
            for child in children:
                outcomes += self.classify(child, family, str(parent.get("tenant", "")))  # issue 16 jobs
            return outcomes or [Outcome("delivered", "nothing new to send")]
        if state in {"delivered", "already_delivered"}:
            return [self._verify(job, family)]
        return [Outcome("lost", f"unexpected result status {state!r}")]

    def _verify(self, job: Job, family: str) -> Outcome:
        data = job.args[0] if job.args else {}
        tenant = str(data.get("tenant", ""))
        if job.func_name == "connector.jobs.relay":
            destination, key = TENANT_ESP.get(tenant, "?"), str(data.get("event_id"))
        else:
            destination, key = TENANT_PLATFORM.get(tenant, "glu"), str(data.get("business_key"))
            if destination == "loyaltylion" and ":status:" in key:
                return Outcome("delivered", "status update (a PUT, not a create)")
        self.key_family[(destination, key)] = family
        if key in self.keys.get(destination, set()):
            return Outcome("delivered")
        return Outcome("lost", f"delivered per the ledger but {destination} does not hold {key}")


def never_run_scan(client: Redis, classifier: Classifier) -> list[str]:
    """Every job hash in Redis left ``queued`` in no queue or registry (acknowledged or not)."""
    orphans = []
    for raw in client.scan_iter("rq:job:*", count=1000):
        key = text(raw)
        job_id = key.removeprefix("rq:job:")
        if ":" in job_id:
            continue
        status, origin = client.hmget(key, "status", "origin")
        if status == b"queued" and not classifier.held(job_id, text(origin or b"")):
            orphans.append(job_id)
    return orphans


def holds(index: dict[str, Counter[tuple[str, str]]], destination: str, needle: str) -> int:
    """How many distinct activity / event names ``destination`` holds under a key naming ``needle``."""
    names = set()
    for name, key in index.get(destination, Counter()):
        if key == needle or key.endswith(":" + needle) or f":{needle}:" in key:
            names.add(name)
    return len(names)


def check_expectations(
    webhooks: list[LogicalWebhook], outcomes_of: dict[int, list[Outcome]], index: dict[str, Counter[tuple[str, str]]]
) -> None:
    """Independently of the job chains: what each business event must have produced is at its destination.

    A stay's three events share one expectation (Booking, Checked in, Checked out); it is checked
    when all of them ended as delivered, so a job chain that "succeeded" without sending what the
    event implies is caught as lost.
    """
    groups: dict[tuple[str, str, int], list[LogicalWebhook]] = defaultdict(list)
    for webhook in webhooks:
        if webhook.expect is not None and webhook.acknowledged:
            groups[webhook.expect].append(webhook)
    for (tenant, needle, count), members in groups.items():
        if not all(o.kind == "delivered" for w in members for o in outcomes_of[w.index]):
            continue
        destination = TENANT_PLATFORM.get(tenant) or TENANT_ESP.get(tenant, "glu")
        found = holds(index, destination, needle)
        if found < count:
            for webhook in members:
                outcomes_of[webhook.index].append(
                    Outcome(
                        "lost",
                        f"{destination} holds {found} of the {count} activities for {webhook.source} "
                        "(the job chain ended delivered)",
                    )
                )


@dataclass
class FamilyReport:
    """Counts of one family."""

    webhooks: int = 0
    acknowledged: int = 0
    not_acknowledged: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    doubled: int = 0


def build_report(
    webhooks: list[LogicalWebhook], client: Redis, sandbox_url: str
) -> tuple[dict[str, FamilyReport], list[str], list[str]]:
    """Per family (and ``total``): counts, failure reasons and doubled keys; plus the orphaned job ids
    and a description of every doubled key (the first line says what each destination holds)."""
    index = destination_index(sandbox_url)
    held = ", ".join(f"{name} {sum(counts.values())}" for name, counts in sorted(index.items()))
    classifier = Classifier(client, index)
    families = {name: FamilyReport() for name in (*FAMILIES, "total")}
    outcomes_of: dict[int, list[Outcome]] = {}
    for webhook in webhooks:
        report = families[webhook.family]
        report.webhooks += 1
        if not webhook.acknowledged:
            report.not_acknowledged += 1
            continue
        report.acknowledged += 1
        outcomes: list[Outcome] = []
        for job_id in sorted(webhook.job_ids):
            outcomes += classifier.classify(job_id, webhook.family)
        if not webhook.job_ids:
            outcomes = [Outcome("ignored", webhook.ignored_at_intake or "answered without a job")]
        outcomes_of[webhook.index] = outcomes or [Outcome("lost", "no outcome")]
    check_expectations(webhooks, outcomes_of, index)
    for webhook in webhooks:
        if webhook.acknowledged:
            report = families[webhook.family]
            outcomes = outcomes_of[webhook.index]
            worst = max(outcomes, key=lambda o: OUTCOMES.index(o.kind))
            report.outcomes[worst.kind] += 1
            for outcome in outcomes:
                if outcome.kind in {"failed", "lost", "never_run", "unfinished"}:
                    report.reasons[f"{outcome.kind}: {outcome.reason or '(no reason)'}"] += 1
    per_destination = Counter(d for d, counts in index.items() for (_, _), n in counts.items() if n > 1)
    doubles = [f"destinations hold: {held}; keys held twice or more: {dict(per_destination) or 0}"]
    for destination, counts in index.items():
        for (name, key), count in counts.items():
            if count > 1:
                family = classifier.key_family.get((destination, key), "total")
                families[family].doubled += 1
                doubles.append(f"{destination} holds {name} {key} {count} times")
    total = families["total"]
    for name in FAMILIES:
        part = families[name]
        total.webhooks += part.webhooks
        total.acknowledged += part.acknowledged
        total.not_acknowledged += part.not_acknowledged
        total.outcomes.update(part.outcomes)
        total.reasons.update(part.reasons)
        total.doubled += part.doubled
    orphans = never_run_scan(client, classifier)
    return families, orphans, doubles
