"""Forgetting a guest on request (e.g. Social WiFi ``Delete``, a GDPR deletion).

What the connector holds about a guest, and what :func:`erase` does with it:

* every RQ job of the tenant whose arguments name the guest (an email address hashing to the
  subject, found in any argument, also inside a stored webhook body): ingest, delivery and relay
  jobs, wherever they are (queued, scheduled, started, deferred, finished, failed, canceled, or
  in no registry at all: the job hashes themselves are scanned), is deleted with its results
  (return values and failure reasons, which may quote the address), so a login still waiting to
  be delivered is not posted after the erasure. A job of the guest that is running is waited for
  (up to :data:`RUNNING_WAIT` seconds, else the erasure is retried later) and then deleted;
* cached contact ids ``connector:contact:<tenant>:<platform>:<hash>``: deleted (after running
  jobs finished, since one may have cached the contact meanwhile);
* delivery ledger entries, stay state, attempt markers and transport dedup markers hold no
  personal data (digests, states and remote ids only) and are kept, so nothing is posted twice
  after an erasure.

The erasure itself is recorded without PII under ``connector:erasure:<tenant>:<hash>`` and
counted (``connector_erasures_total``). Data held by the loyalty platform is the platform's to
erase: the connector does not delete contacts there.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from connector import metrics
from connector.activities import hash_identifier, normalise_email
from connector.errors import RetriableDestinationError

ERASURE_TTL = 400 * 24 * 3600
RUNNING_WAIT = 30.0  # seconds to wait for a running job of the guest before retrying the erasure
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}")
"""An email address as found inside any text (bounded: RFC 5321's lengths)."""
EMAIL_WINDOW = 64 + 1 + 253 + 1 + 63  # the longest text EMAIL can match
JOB_PREFIX = Job.redis_job_namespace_prefix
RESULTS_PREFIX = "rq:results:"  # rq.results.Result.get_key: return values and failure reasons


def erasure_key(tenant: str, subject_hash: str) -> str:
    """Redis key of the record of a guest's erasure."""
    return f"connector:erasure:{tenant}:{subject_hash}"


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string in a job's arguments, and in any argument that is itself JSON (a webhook body)."""
    if depth > 64:
        return
    if isinstance(value, str):
        yield value
        if value[:1] in ("{", "[") or value[:2] == "\ufeff{":
            try:
                parsed = json.loads(value.removeprefix("\ufeff"))
            except (ValueError, RecursionError):
                return
            yield from _strings(parsed, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, depth + 1)
            yield from _strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, depth + 1)


def emails_in(text: str) -> Iterator[str]:
    """The email addresses inside ``text``, in linear time.

    ``EMAIL.findall`` over the whole text is quadratic when a long run of address characters holds
    no address (a guest's 100 KB string made each later erasure scan take minutes): only the window
    around each ``@`` is searched.
    """
    at = text.find("@")
    seen_until = 0
    while at != -1:
        if text.find(".", at, at + EMAIL_WINDOW) == -1:  # no domain can follow this @
            at = text.find("@", at + 1)
            continue
        start = max(at - 64, seen_until)
        for match in EMAIL.finditer(text, start, min(at + EMAIL_WINDOW, len(text))):
            if match.start() <= at < match.end():
                yield match.group(0)
                seen_until = match.end()
                break
        at = text.find("@", max(at + 1, seen_until))


def _mentions(args: Any, subjects: set[str]) -> bool:
    for text in _strings(args):
        for match in emails_in(text):
            email = normalise_email(match)
            if email is not None and hash_identifier(email) in subjects:
                return True
    return False


def _of_tenant(args: Any, tenant: str) -> bool:
    """The job belongs to ``tenant``: its envelope, activity or event names it."""
    if isinstance(args, dict):
        return args.get("tenant") == tenant
    if isinstance(args, list | tuple):
        return any(_of_tenant(item, tenant) for item in args)
    return False


def job_strings(args: Any) -> Iterator[str]:
    """Every string in a job's arguments, JSON bodies inside them parsed (see :func:`find_jobs`)."""
    return _strings(args)


def of_tenant(args: Any, tenant: str) -> bool:
    """Whether a job's arguments belong to ``tenant`` (its envelope, activity or event names it)."""
    return _of_tenant(args, tenant)


def _job_args(redis: Redis, key: bytes) -> Any:
    """The arguments of the job stored at ``key`` (``None`` when it holds none we can read)."""
    raw = redis.hget(key, "data")
    if not raw:
        return None
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        data = zlib.decompress(raw)
    except zlib.error:
        data = raw
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return decoded[2] if isinstance(decoded, list) and len(decoded) > 2 else None


def _job_keys(redis: Redis) -> Iterator[bytes]:
    """Every job hash in Redis, whatever queue or registry lists it (or none)."""
    for key in redis.scan_iter(match=f"{JOB_PREFIX}*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if ":" not in name.removeprefix(JOB_PREFIX):  # not rq:job:<id>:dependents and the like
            yield key if isinstance(key, bytes) else name.encode()


def _delete_job(redis: Redis, job_id: str) -> None:
    """The job, its results (return values and failure reasons) and every list or registry entry."""
    try:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    except (NoSuchJobError, DeserializationError, ValueError, TypeError):
        job = None  # gone meanwhile, or a hash RQ cannot read: its keys are deleted by name below
    if job is not None:
        job.delete()
    with redis.pipeline() as pipe:
        pipe.delete(f"{JOB_PREFIX}{job_id}", RESULTS_PREFIX + job_id)
        for name in Queue.all(connection=redis):
            pipe.lrem(name.key, 0, job_id)
            pipe.lrem(f"{name.key}:intermediate", 0, job_id)
            for registry in (
                name.scheduled_job_registry,
                name.started_job_registry,
                name.deferred_job_registry,
                name.finished_job_registry,
                name.failed_job_registry,
                name.canceled_job_registry,
            ):
                pipe.zrem(registry.key, job_id)
        pipe.execute()


Selector = Callable[[Any], bool]
"""Chooses jobs by their arguments (see :func:`guest_jobs`)."""


def guest_jobs(tenant: str, subjects: set[str], also: Selector | None = None) -> Selector:
    """The jobs of ``tenant`` whose arguments name a subject (or that ``also`` picks)."""

    def select(args: Any) -> bool:
        if not _of_tenant(args, tenant):
            return False
        return _mentions(args, subjects) or (also is not None and also(args))

    return select


def find_jobs(redis: Redis, select: Selector, keep: str | None = None) -> Iterator[tuple[str, str]]:
    """(job id, status) of every job hash whose arguments ``select`` picks: the one scanner of
    every queue and registry (and of job hashes no registry lists), for erasures and reports."""
    for key in list(_job_keys(redis)):
        job_id = key.decode().removeprefix(JOB_PREFIX)
        if job_id == keep:
            continue
        args = _job_args(redis, key)
        if args is None or not select(args):
            continue
        status = redis.hget(key, "status")
        yield job_id, status.decode() if isinstance(status, bytes) else str(status or "")


def _purge_jobs(redis: Redis, select: Selector, keep: str | None) -> tuple[int, list[str]]:
    """Delete the selected jobs; returns how many, and the ids of those still running (kept)."""
    deleted = 0
    running: list[str] = []
    for job_id, status in find_jobs(redis, select, keep):
        if status == JobStatus.STARTED.value:
            running.append(job_id)  # its worker would write the hash back when it finishes
            continue
        _delete_job(redis, job_id)
        deleted += 1
    return deleted, running


def purge_jobs(redis: Redis, select: Selector, current_job: str | None = None) -> int:
    """Delete every selected job with its results, waiting (up to :data:`RUNNING_WAIT`) for
    those running; returns how many were deleted.

    Raises:
        RetriableDestinationError: some are still running (the erasure is retried later).
    """
    jobs_deleted, running = _purge_jobs(redis, select, current_job)
    deadline = time.monotonic() + RUNNING_WAIT
    while running:
        if time.monotonic() > deadline:
            raise RetriableDestinationError(
                f"erasure waits for {len(running)} running job(s) to finish; will retry",
                destination="erasure",
                retry_after=RUNNING_WAIT,
            )
        time.sleep(0.2)
        more, running = _purge_jobs(redis, select, current_job)
        jobs_deleted += more
    return jobs_deleted


def _forget_contacts(redis: Redis, tenant: str, subjects: set[str]) -> int:
    contacts = 0
    for subject in subjects:
        for key in list(redis.scan_iter(match=f"connector:contact:{tenant}:*:{subject}", count=500)):
            contacts += int(redis.delete(key))
    return contacts


def erase(
    redis: Redis,
    *,
    tenant: str,
    source: str,
    subject_hashes: list[str],
    requested_at: str,
    current_job: str | None = None,
    also: Selector | None = None,
) -> dict[str, Any]:
    """Forget a guest (identified by hashes only) for one tenant and record that it was done.

    ``also`` picks further jobs of the tenant that are the guest's without naming an address of
    theirs (e.g. Shopify orders listed in ``orders_to_redact``, by order id or phone)."""
    subjects = set(subject_hashes)
    jobs_deleted = purge_jobs(redis, guest_jobs(tenant, subjects, also), current_job)
    contacts = _forget_contacts(redis, tenant, subjects)
    # -- issue 15 trace: the guest's traces are no longer found by their email --
    from connector import activity_log  # (imported here to keep the change in one block)

    activity_log.forget_guest(redis, tenant, subjects)
    # -- end issue 15 trace --
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
