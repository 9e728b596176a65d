"""Failed jobs for support staff: find them by filters, group them by reason, requeue them.

``connector failures`` and ``connector replay`` (:mod:`connector.cli`) read RQ's failed registries
of the ingest, delivery and relay queues (the connection-check queue is the pages' business).
Each failed job's reason is the last line of its stored exception (redacted by the worker, see
:class:`connector.worker.RedactedFailures`), else the reason of its last activity record
(:mod:`connector.activity_log`); email-like text is masked again before it is shown.

A replay never doubles anything downstream:

* a job is requeued through ``FailedJobRegistry.requeue``, whose removal from the registry is
  atomic (of two replays running at once, one requeues each job), with a fresh retry budget;
* a delivery or relay whose ledger record (:mod:`connector.ledger`) already exists is **not**
  requeued: it is taken out of the failed registry, marked finished and recorded as ``delivered``
  ("already delivered earlier; replay sent nothing"). Requeueing it would send nothing either
  (the job consults the ledger first), so this only saves a job run and says so in the summary;
* an ingest job is requeued: it enqueues its deliveries under their deterministic ids (unique),
  and each delivery consults the ledger.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq.exceptions import InvalidJobOperation
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from connector import activity_log, redaction
from connector.activities import Activity, LoyaltyEvent
from connector.ledger import ledger_key, relay_ledger_key
from connector.queue import CHECK_QUEUE, QUEUE_NAMES, UNREADABLE_JOB, job_args, job_func

REPLAYED_QUEUES: tuple[str, ...] = tuple(name for name in QUEUE_NAMES if name != CHECK_QUEUE)
"""The queues whose failed jobs ``connector failures`` lists and ``connector replay`` requeues."""

KINDS = {
    "connector.jobs.ingest": "webhook",
    "connector.jobs.deliver": "delivery",
    "connector.jobs.relay": "relay",
    "connector.jobs.erase_guest": "erasure",
}

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Event|Requested): ")
STATUS_PATTERNS = (
    re.compile(r"\banswered (\d{3})\b"),
    re.compile(r"\((\d{3})\b[^)]*\)"),  # "the API key was rejected (401)", "(402 Payment Required)"
)
# What varies between failures of one kind: ids in paths, long numbers, hex digests, uuids.
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
HEX = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.IGNORECASE)
PATH_ID = re.compile(r"/(?=[^/\s:?\"']*\d)[^/\s:?\"']+")
NUMBER = re.compile(r"(?<![\w.])\d{4,}(?![\w.])|(?<=[\s:=#\"'])\d+(?=\s*[,}\]])")
GROUP_KEY_LIMIT = 160


@dataclass(frozen=True)
class Filters:
    """What ``--tenant --source --queue --since --status --reason`` select (``None``: any)."""

    tenant: str | None = None
    source: str | None = None
    queue: str | None = None
    since: datetime | None = None
    status: int | None = None
    reason: str | None = None

    def matches(self, failed: FailedJob) -> bool:
        """Whether one failed job passes every filter given."""
        if self.tenant is not None and failed.tenant != self.tenant:
            return False
        if self.source is not None and failed.source != self.source:
            return False
        if self.queue is not None and failed.queue != self.queue:
            return False
        if self.since is not None and (failed.failed_at is None or failed.failed_at < self.since):
            return False
        if self.status is not None and failed.status != self.status:
            return False
        return self.reason is None or self.reason.lower() in failed.reason.lower()


@dataclass
class FailedJob:
    """One job of a failed registry, as support staff see it."""

    id: str
    queue: str
    kind: str  # webhook, delivery, relay, or the function's name for another job
    tenant: str
    source: str
    failed_at: datetime | None
    reason: str
    status: int | None  # the failing HTTP status, where the reason names one
    trace: str | None
    description: str
    job: Job = field(repr=False, compare=False)

    @property
    def group(self) -> str:
        """The reason with its ids and numbers normalised out (see :func:`group_key`)."""
        return group_key(self.reason)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields (``--json``)."""
        return {
            "job": self.id,
            "queue": self.queue,
            "kind": self.kind,
            "tenant": self.tenant,
            "source": self.source,
            "failed_at": self.failed_at.isoformat(timespec="seconds") if self.failed_at else None,
            "reason": self.reason,
            "status": self.status,
            "trace": self.trace,
            "description": self.description,
        }


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``90s``, ``30m``, ``2h``, ``3d``, ``1w``) or an ISO
    8601 date or time (UTC when it has no offset).

    Raises:
        ValueError: neither form.
    """
    moment = now or datetime.now(UTC)
    duration = DURATION.match(value)
    if duration:
        return moment - timedelta(seconds=float(duration.group(1)) * UNITS[duration.group(2).lower()])
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def group_key(reason: str) -> str:
    """The reason with what varies between failures of one kind replaced: ids in URL paths
    (``/glu/contacts/123`` and ``/456`` group together), long numbers, hex digests and uuids. HTTP
    statuses stay (``answered 401`` and ``answered 500`` are different problems)."""
    key = UUID.sub("{id}", reason)
    key = HEX.sub("{id}", key)
    key = PATH_ID.sub("/{id}", key)
    key = NUMBER.sub("{n}", key)
    key = " ".join(key.split())
    return key if len(key) <= GROUP_KEY_LIMIT else key[: GROUP_KEY_LIMIT - 1] + "…"


def last_line(text: str) -> str:
    """The last non-empty line of a stored exception, without its exception class prefix."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return EXCEPTION_PREFIX.sub("", lines[-1], count=1)


def status_in(reason: str) -> int | None:
    """The HTTP status a reason names ("glu answered 422 to POST …", "rejected (401)"), if any."""
    for pattern in STATUS_PATTERNS:
        found = pattern.search(reason)
        if found and 100 <= int(found.group(1)) <= 599:
            return int(found.group(1))
    return None


def subject(job: Job) -> tuple[str, str]:
    """(tenant, source) from a job's arguments: ingest ``(envelope, body)``, deliver
    ``(activity, queued_for)``, relay ``(event, queued_for)``, erase_guest ``(tenant, source, …)``;
    ``("", "")`` when unreadable (or another job, e.g. a Shopify reconciliation)."""
    args = job_args(job)
    first = args[0] if args else None
    if job_func(job) == "connector.jobs.erase_guest" and len(args) >= 2:  # (tenant, source, hashes, at)
        return str(args[0]), str(args[1])
    if not isinstance(first, dict):
        return "", ""
    return str(first.get("tenant") or ""), str(first.get("source") or "")


def _stored_reason(job: Job) -> str:
    try:
        result = job.latest_result()
    except UNREADABLE_JOB:  # an unreadable result stream: fall back to the activity record
        return ""
    return last_line(result.exc_string or "") if result is not None else ""


def _describe(job: Job, queue: str) -> FailedJob:
    tenant, source = subject(job)
    reason = _stored_reason(job)
    status = status_in(reason)
    if tenant and (not reason or status is None):
        latest = (activity_log.attempts(job.connection, tenant, [job.id]).get(job.id) or [{}])[0]
        reason = reason or str(latest.get("reason") or "")
        answer = latest.get("answer")
        if status is None and isinstance(answer, dict) and isinstance(answer.get("http_status"), int):
            status = answer["http_status"]
    failed_at = job.ended_at or job.enqueued_at or job.created_at
    return FailedJob(
        id=job.id,
        queue=queue,
        kind=KINDS.get(job_func(job), job_func(job) or "?"),
        tenant=tenant,
        source=source,
        failed_at=failed_at.replace(tzinfo=UTC) if failed_at and failed_at.tzinfo is None else failed_at,
        reason=redaction.mask_emails(reason or "(no reason stored)"),
        status=status if status is None else int(status),
        trace=(job.meta or {}).get("trace"),
        description=job.description or "",
        job=job,
    )


def find_failed(client: Redis, filters: Filters = Filters()) -> list[FailedJob]:
    """Every failed job of the replayed queues that passes ``filters``, oldest failure first.

    Reads only: the registries are not cleaned up here (``--dry-run`` changes nothing).
    """
    found: list[FailedJob] = []
    for queue in REPLAYED_QUEUES:
        if filters.queue is not None and queue != filters.queue:
            continue
        registry = FailedJobRegistry(queue, connection=client, serializer=JSONSerializer)
        ids = registry.get_job_ids(cleanup=False)
        for job in Job.fetch_many(ids, connection=client, serializer=JSONSerializer):
            if job is None:  # expired between the two reads
                continue
            failed = _describe(job, queue)
            if filters.matches(failed):
                found.append(failed)
    epoch = datetime.fromtimestamp(0, UTC)
    return sorted(found, key=lambda f: (f.failed_at or epoch, f.id))


def group(failed: Iterable[FailedJob]) -> list[tuple[str, list[FailedJob]]]:
    """The jobs by :attr:`FailedJob.group`, the largest group first."""
    groups: dict[str, list[FailedJob]] = {}
    for item in failed:
        groups.setdefault(item.group, []).append(item)
    return sorted(groups.items(), key=lambda pair: (-len(pair[1]), pair[0]))


def delivered_key(job: Job) -> str | None:
    """The ledger key a delivery or relay job would record, ``None`` for other jobs (or
    arguments that do not parse: such a job is requeued and fails again with its reason)."""
    args, func = job_args(job), job_func(job)
    try:
        if func == "connector.jobs.deliver" and len(args) >= 2 and args[1]:
            activity = Activity.model_validate(args[0])
            return ledger_key(activity.tenant, str(args[1]), activity)
        if func == "connector.jobs.relay" and len(args) >= 2 and args[1]:
            event = LoyaltyEvent.model_validate(args[0])
            return relay_ledger_key(event.tenant, str(args[1]), event)
    except ValueError:  # arguments that are no activity or event (pydantic): the job itself will say why
        return None
    return None


@dataclass
class Summary:
    """What a replay did (``still_failing`` is filled by :func:`wait_for`)."""

    requeued: list[str] = field(default_factory=list)
    already_delivered: list[str] = field(default_factory=list)
    not_failed: list[str] = field(default_factory=list)  # requeued or expired meanwhile by someone else
    still_failing: list[str] | None = None
    unfinished: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe counts and ids."""
        return {
            "requeued": len(self.requeued),
            "already_delivered": len(self.already_delivered),
            "not_failed_any_more": len(self.not_failed),
            "still_failing": None if self.still_failing is None else len(self.still_failing),
            "unfinished": len(self.unfinished),
            "jobs": {
                "requeued": self.requeued,
                "already_delivered": self.already_delivered,
                "not_failed_any_more": self.not_failed,
                "still_failing": self.still_failing,
                "unfinished": self.unfinished,
            },
        }


REPLAY_BY = "support staff (connector replay)"
RECORDED_KINDS = frozenset({"webhook", "delivery", "relay"})  # the jobs with activity records


def _resolve_delivered(client: Redis, failed: FailedJob, registry: FailedJobRegistry) -> bool:
    """Take an already delivered job out of its failed registry (atomic: ``False`` when someone
    else did first), mark it finished and record why nothing was sent."""
    if not registry.remove(failed.job):
        return False
    failed.job.set_status(JobStatus.FINISHED)
    if failed.tenant and failed.kind in RECORDED_KINDS:
        activity_log.write(
            client,
            failed.tenant,
            {
                "at": activity_log.now_iso(),
                "job": failed.id,
                "kind": failed.kind,
                "source": failed.source,
                "status": "delivered",
                "reason": "already delivered earlier (the ledger holds it); the replay sent nothing",
                "by": REPLAY_BY,
            },
        )
    return True


def replay(
    client: Redis,
    failed: Sequence[FailedJob],
    *,
    retry_budget: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Requeue each failed job with a fresh budget of ``retry_budget`` retries, except those the
    ledger already holds (resolved without sending, see the module docstring)."""
    summary = Summary()
    for done, item in enumerate(failed, start=1):
        registry = FailedJobRegistry(item.queue, connection=client, serializer=JSONSerializer)
        key = delivered_key(item.job)
        if key is not None and client.exists(key):
            if _resolve_delivered(client, item, registry):
                summary.already_delivered.append(item.id)
            else:
                summary.not_failed.append(item.id)
        else:
            at = activity_log.now_iso()  # before the requeue: the job's next record is later
            item.job.retries_left = retry_budget
            try:
                registry.requeue(item.job)
            except InvalidJobOperation:
                summary.not_failed.append(item.id)
            else:
                summary.requeued.append(item.id)
                if item.tenant and item.kind in RECORDED_KINDS:
                    activity_log.write(
                        client,
                        item.tenant,
                        {
                            "at": at,
                            "job": item.id,
                            "kind": item.kind,
                            "source": item.source,
                            "status": "retrying",
                            "reason": "requeued by connector replay",
                            "by": REPLAY_BY,
                        },
                    )
        if on_progress is not None:
            on_progress(done, len(failed))
    return summary


def wait_for(client: Redis, summary: Summary, seconds: float, poll: float = 0.5) -> Summary:
    """Wait up to ``seconds`` for the requeued jobs to end, then sort them: ``still_failing``
    (failed again), ``unfinished`` (queued, scheduled for a retry or running when time ran out)."""
    deadline = time.monotonic() + seconds
    pending = list(summary.requeued)
    failed: list[str] = []
    while True:
        statuses = _statuses(client, pending)
        failed += [job_id for job_id, status in statuses.items() if status == JobStatus.FAILED]
        pending = [job_id for job_id, status in statuses.items() if status not in _ENDED]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    summary.still_failing = sorted(failed)
    summary.unfinished = sorted(pending)
    return summary


_ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED, None}


def _statuses(client: Redis, job_ids: Sequence[str]) -> dict[str, JobStatus | None]:
    """Each job's status in one round trip (``None``: the job is gone, e.g. expired)."""
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "status")
        raw = pipe.execute()
    found: dict[str, JobStatus | None] = {}
    for job_id, value in zip(job_ids, raw, strict=True):
        text = value.decode() if isinstance(value, bytes) else value
        found[job_id] = JobStatus(text) if text in {s.value for s in JobStatus} else None
    return found
