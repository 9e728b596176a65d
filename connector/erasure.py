"""Forgetting a guest on request (e.g. Social WiFi ``Delete``, a GDPR deletion).

What the connector holds about a guest, and what :func:`erase` does with it:

* cached contact ids ``connector:contact:<tenant>:<platform>:<hash>``: deleted;
* stored job payloads (queued, scheduled, finished and failed ingest/delivery jobs, which keep
  the webhook body or the activity with the email): every such job of the tenant whose arguments
  contain an email address hashing to the subject is deleted, so a login still waiting to be
  delivered is not posted after the erasure (a job already running finishes);
* delivery ledger entries and transport dedup markers hold no personal data (digests and remote
  ids only) and are kept, so nothing is posted twice after an erasure.

The erasure itself is recorded without PII under ``connector:erasure:<tenant>:<hash>`` and
counted (``connector_erasures_total``). Data held by the loyalty platform is the platform's to
erase: the connector does not delete contacts there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from connector import metrics
from connector.activities import hash_identifier, normalise_email
from connector.queue import DELIVERY_QUEUE, INGEST_QUEUE, get_queue

ERASURE_TTL = 400 * 24 * 3600
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def erasure_key(tenant: str, subject_hash: str) -> str:
    """Redis key of the record of a guest's erasure."""
    return f"connector:erasure:{tenant}:{subject_hash}"


def _mentions(data: str, subjects: set[str]) -> bool:
    for match in EMAIL.findall(data):
        email = normalise_email(match)
        if email is not None and hash_identifier(email) in subjects:
            return True
    return False


def _job_ids(redis: Redis) -> Iterable[str]:
    for name in (INGEST_QUEUE, DELIVERY_QUEUE):
        queue = get_queue(redis, name)
        yield from queue.get_job_ids()  # pending: would re-create what is being erased
        yield from queue.scheduled_job_registry.get_job_ids()  # waiting for a retry
        yield from queue.finished_job_registry.get_job_ids()
        yield from queue.failed_job_registry.get_job_ids()


def _purge_jobs(redis: Redis, tenant: str, subjects: set[str], keep: str | None) -> int:
    deleted = 0
    for job_id in list(dict.fromkeys(_job_ids(redis))):
        if job_id == keep:
            continue
        try:
            job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
            args = json.dumps(job.args)
        except (NoSuchJobError, ValueError, TypeError):
            continue
        if f'"tenant": "{tenant}"' not in args:
            continue
        if _mentions(args, subjects):
            job.delete()
            deleted += 1
    return deleted


def erase(
    redis: Redis,
    *,
    tenant: str,
    source: str,
    subject_hashes: list[str],
    requested_at: str,
    current_job: str | None = None,
) -> dict[str, Any]:
    """Forget a guest (identified by hashes only) for one tenant and record that it was done."""
    subjects = set(subject_hashes)
    contacts = 0
    for subject in subjects:
        for key in list(redis.scan_iter(match=f"connector:contact:{tenant}:*:{subject}", count=500)):
            contacts += int(redis.delete(key))
    jobs_deleted = _purge_jobs(redis, tenant, subjects, current_job)
    record = {
        "source": source,
        "requested_at": requested_at,
        "erased_at": datetime.now(UTC).isoformat(),
        "contacts_forgotten": contacts,
        "jobs_deleted": jobs_deleted,
    }
    with redis.pipeline() as pipe:
        for subject in subjects:
            pipe.set(erasure_key(tenant, subject), json.dumps(record), ex=ERASURE_TTL)
        metrics.count(pipe, "erasures", tenant=tenant, source=source)
        pipe.execute()
    return {"status": "erased", **record}
