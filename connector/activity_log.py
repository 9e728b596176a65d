"""The Activity page's records: per tenant, the last webhooks of each source and what became of
the jobs they caused, written by the jobs (never by the intake, whose speed is measured).

Each ingest, deliver and relay job records its attempt's outcome when it ends (in the job's
completion round trip, :func:`connector.completion.defer`; see :func:`recorded`), and so does a
delivery or relay an ingest job makes itself (:func:`inline_attempt`, under the id the job would
have); the pages read them back (:func:`webhooks`, :func:`failures`,
:func:`last_seen`). No record holds a secret or an email address: every free text (a reason, a
platform's error body) is redacted with the configured secrets and the guest's email
(:mod:`connector.redaction`), any other email-like text is masked, and then it is truncated.

Redis keys (``{t}`` the tenant, ``{s}`` a source, ``{job}`` an RQ job id)::

    connector:activity:{t}:webhooks:{s}  ZSET  ingest job id -> received_at (epoch seconds);
                                              the last WEBHOOKS_KEPT; expires RECORD_TTL after a write
    connector:activity:{t}:job:{job}     LIST  that job's attempt records (JSON), newest first, the
                                              last ATTEMPTS_KEPT; expires with the job (RESULT_TTL
                                              after success or ignored, FAILURE_TTL otherwise)
    connector:activity:{t}:failures      ZSET  job id -> time of its final failure (the last
                                              FAILURES_KEPT); a later success removes it

An attempt record (JSON object) has:

* every kind: ``at`` (ISO 8601 UTC, when it was recorded), ``job``, ``kind`` (``webhook`` for
  an ingest job, ``delivery``, ``relay``), ``source``, ``status`` and, where it applies,
  ``reason`` (why it was ignored, failed or is retrying, redacted), ``next_attempt_at`` (ISO,
  ``retrying`` only), ``answer`` (the destination's: ``{"http_status", "remote_id", "body"}``,
  each possibly ``null``; ``body`` redacted and truncated);
* ``webhook``: ``received_at`` (the envelope's), ``event_type``, ``delivery_id`` and, when
  translated, ``deliveries`` / ``relays`` (the job ids it enqueued) or ``erasure`` (a job id);
  ``status`` is ``translated``, ``ignored``, ``erasure``, ``retrying`` or ``failed``;
* ``delivery`` / ``relay``: ``type`` (the activity's or event's), ``destination`` (the platform
  or ESP); ``status`` is ``delivered``, ``ignored``, ``retrying`` or ``failed``.

Issue 15 (support staff's trace) adds to every record ``trace`` (the trace id: the ingest job id
of the webhook that caused the job, :func:`trace_of`), ``duration_ms`` (the attempt's), ``next``
(``done``, ``retry at <ISO>`` or ``failed``) and ``requests`` (each HTTP request the attempt made
through :class:`connector.http.HttpClient`: ``destination``, ``method``, ``path`` without its query,
redacted, ``status``, ``ms``; the last REQUESTS_KEPT), and keeps per trace::

    connector:trace:{trace}:tenant       STRING the tenant whose records hold the chain
    connector:trace:{trace}:jobs         ZSET   job id -> when its first record was written (JOBS_KEPT);
                                                only for a trace begun by another job than an
                                                ingest (a reconciliation): a webhook's ingest
                                                record lists its jobs (``deliveries``, ``relays``)
    connector:trace:find:{xyz}           ZSET   one of 4096 shared indexes (``xyz``: the first
                                                FIND_BUCKET_CHARS hex of a term's digest), member
                                                ``<16 hex of the digest>|<trace id>`` -> when;
                                                the digest (:func:`term_digest`) names one lookup
                                                term: a job id (not the trace's own), a sender's
                                                delivery id, a business key or a part of it
                                                holding a digit, an email's
                                                :func:`~connector.activities.hash_identifier` —
                                                never the email; the last TRACES_PER_TERM are read
    connector:trace:find:{digest}        ZSET   the same, one key per term, as written before
                                                issue 16: read (and erased) until it expires

Per finished webhook (a Shopify order delivered to Glu, measured by
``tests/test_redis_footprint.py``): about 2.7 KB, of which the two attempt records (its ingest's
and its delivery's, under the delivery job's id even when the ingest job delivered it itself)
are 1.5 KB; nothing of RQ's (finished jobs are deleted, ``CONNECTOR_FINISHED_JOB_RETENTION``).

The trace keys live as long as the longest record they point to (see :func:`retention`).

A job is ``failed`` only when RQ will not run it again (its retries are used up, or the retry
policy made the error final, :mod:`connector.retry`); until then it is ``retrying``. A job the
Activity page requeues gets a ``retrying`` record with ``by`` (who asked).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import structlog
from redis import Redis
from rq import get_current_job

from connector import completion, redaction
from connector.activities import hash_identifier
from connector.errors import ConnectorError, DestinationError
from connector.queue import FAILURE_TTL, RESULT_TTL
from connector.redaction import EMAIL, EMAIL_MASK

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

WEBHOOKS_KEPT = 200
ATTEMPTS_KEPT = 10
FAILURES_KEPT = 200
RECORD_TTL = FAILURE_TTL  # the index outlives no failed job it points to
TEXT_LIMIT = 300
KINDS = {"connector.jobs.ingest": "webhook", "connector.jobs.deliver": "delivery", "connector.jobs.relay": "relay"}
REQUESTS_KEPT = 10
JOBS_KEPT = 50
TRACES_PER_TERM = 20
# A trace index member costs far less than a key of its own (~60-100 bytes of overhead each):
# the terms share 4096 ZSETs, member "<digest prefix>|<trace id>" scored by time. A member of at
# most 64 bytes in a ZSET of at most 128 keeps Redis's compact encoding (zset-max-listpack-*):
# about 75 bytes a term up to ~500,000 terms in the retention window, a webhook's five included.
FIND_BUCKET_CHARS = 3
FIND_MEMBER_CHARS = 16  # 64 bits of the term's digest: a collision would only list one more trace
RETENTION_ENV = "CONNECTOR_TRACE_RETENTION_DAYS"
WEBHOOK_TRACE = "ingest-"  # the trace id of a webhook: its ingest job's id

_trace: ContextVar[str | None] = ContextVar("connector_trace", default=None)
_requests: ContextVar[list[dict[str, Any]] | None] = ContextVar("connector_trace_requests", default=None)


def _prefix(tenant: str) -> str:
    return f"connector:activity:{tenant}:"


def webhooks_key(tenant: str, source: str) -> str:
    """The index of a tenant's last webhooks from ``source`` (ingest job ids by time received)."""
    return f"{_prefix(tenant)}webhooks:{source}"


def job_key(tenant: str, job_id: str) -> str:
    """The attempt records of one job."""
    return f"{_prefix(tenant)}job:{job_id}"


def failures_key(tenant: str) -> str:
    """The index of a tenant's finally failed jobs."""
    return f"{_prefix(tenant)}failures"


def trace_tenant_key(trace: str) -> str:
    """The tenant whose records hold a trace's chain."""
    return f"connector:trace:{trace}:tenant"


def trace_jobs_key(trace: str) -> str:
    """The jobs of a trace (those that wrote a record)."""
    return f"connector:trace:{trace}:jobs"


def term_digest(kind: str, value: str) -> str:
    """The name of a lookup term in the indexes (``kind``: ``job``, ``delivery``, ``key``, ``email``)."""
    return hashlib.sha256(f"{kind}\x1f{value.strip()}".encode()).hexdigest()[:40]


def find_key(kind: str, value: str) -> str:
    """The index of one lookup term as written before issue 16 (a ZSET of its own per term; read
    until it expires, see :func:`find_traces`)."""
    return f"connector:trace:find:{term_digest(kind, value)}"


def find_bucket_key(digest: str) -> str:
    """The shared index (one of 16 ** FIND_BUCKET_CHARS) holding the terms whose digest starts so."""
    return f"connector:trace:find:{digest[:FIND_BUCKET_CHARS]}"


def _find_member(digest: str, trace: str) -> str:
    return f"{digest[:FIND_MEMBER_CHARS]}|{trace}"


def retention(settled: bool) -> int:
    """Seconds a record (settled: delivered, translated, ignored) is kept: as long as its RQ job
    (RESULT_TTL, FAILURE_TTL), or ``CONNECTOR_TRACE_RETENTION_DAYS`` days for every record when set
    (a whole number from 1 to 3650; the settings refuse anything else at start-up)."""
    raw = os.environ.get(RETENTION_ENV, "").strip()
    if raw.isdigit() and 1 <= int(raw) <= 3650:
        return int(raw) * 24 * 3600
    return RESULT_TTL if settled else FAILURE_TTL


def index_ttl() -> int:
    """The trace keys outlive no record they point to by much: the longest record's retention."""
    return max(retention(True), retention(False))


def current_trace() -> str | None:
    """The trace id of the job running in this context (``None`` outside a traced job)."""
    return _trace.get()


def job_meta() -> dict[str, str]:
    """The RQ meta a job enqueued now carries: ``{"trace": <id>}`` inside a traced job, else empty."""
    trace = _trace.get()
    return {"trace": trace} if trace else {}


def trace_of(job: Any) -> str | None:
    """A job's trace id: its meta's ``trace``, else (a job no webhook caused: an ingest job,
    a reconciliation) its own id."""
    if job is None:
        return None
    meta = getattr(job, "meta", None) or {}
    trace = meta.get("trace") if isinstance(meta, Mapping) else None
    return str(trace) if trace else str(job.id)


def note_request(destination: str, method: str, path: str, status: int | None, ms: float) -> None:
    """Called by the HTTP base for every request: kept for the current job's attempt record
    (nothing outside a recorded job). ``path`` loses its query here; the record redacts it."""
    found = _requests.get()
    if found is None:
        return
    found.append(
        {
            "destination": destination,
            "method": method.upper(),
            "path": path.split("?", 1)[0].split("#", 1)[0],
            "status": status,
            "ms": round(ms, 1),
        }
    )
    del found[:-REQUESTS_KEPT]


@contextmanager
def traced_context(kind: str, tenant: str, source: str) -> Iterator[tuple[str | None, list[dict[str, Any]]]]:
    """Around one job: its trace id in this context (for the jobs it enqueues, :func:`job_meta`),
    the log context bound (``trace_id``, ``tenant``, ``source``, ``job_id``), and a fresh list the
    HTTP base notes this attempt's requests in. Yields (trace id, that list)."""
    job = get_current_job()
    trace = trace_of(job)
    requests_made: list[dict[str, Any]] = []
    trace_token = _trace.set(trace)
    requests_token = _requests.set(requests_made)
    try:
        with structlog.contextvars.bound_contextvars(
            trace_id=trace, tenant=tenant or None, source=source or None, job_id=job.id if job is not None else None
        ):
            yield trace, requests_made
    finally:
        _requests.reset(requests_token)
        _trace.reset(trace_token)


def traced(kind: str, subject: Callable[..., tuple[str, str]]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a job that keeps no activity record (erasure, reconciliation) so that it runs in
    its trace's context (:func:`traced_context`); ``subject`` gives (tenant, source) of its arguments."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                tenant, source = subject(*args, **kwargs)
            except Exception:  # arguments the job itself will refuse
                tenant, source = "", ""
            with traced_context(kind, tenant, source):
                return func(*args, **kwargs)

        return wrapper

    return decorate


def business_terms(business_key: str) -> list[str]:
    """The lookup terms of a business key: itself and each of its parts after the first that holds
    a digit and is at least 3 characters long (``shopify:<shop>:order:4512`` -> the key and
    ``4512``; a reservation id likewise; not a stay's revision number)."""
    parts = business_key.split(":")
    wanted = (p for p in parts[1:] if any(c.isdigit() for c in p) and 3 <= len(p) <= 200)
    return [business_key, *dict.fromkeys(wanted)]


def index_terms(client: Redis, trace: str, terms: Iterable[tuple[str, str]], at: float | None = None) -> None:
    """Make ``trace`` findable by each ``(kind, value)`` term (see :func:`term_digest`); an
    ``email`` term's value must already be its :func:`~connector.activities.hash_identifier`."""
    with client.pipeline(transaction=False) as pipe:
        _index_terms(pipe, trace, terms, time.time() if at is None else at)
        pipe.execute()


def _index_terms(pipe: Any, trace: str, terms: Iterable[tuple[str, str]], moment: float) -> None:
    ttl = index_ttl()
    buckets: set[str] = set()
    for kind, value in dict.fromkeys(terms):
        if not value:
            continue
        digest = term_digest(kind, value)
        bucket = find_bucket_key(digest)
        pipe.zadd(bucket, {_find_member(digest, trace): moment})
        buckets.add(bucket)
    for bucket in sorted(buckets):  # what is older than the longest record's retention goes
        pipe.zremrangebyscore(bucket, "-inf", moment - ttl)
        pipe.expire(bucket, ttl)


def find_traces(client: Redis, terms: Sequence[tuple[str, str]]) -> dict[str, float]:
    """The traces each ``(kind, value)`` term names (the last TRACES_PER_TERM of each), with
    when they were indexed; one round trip."""
    digests = [term_digest(kind, value) for kind, value in terms]
    with client.pipeline(transaction=False) as pipe:
        for digest in digests:
            pipe.zrange(find_bucket_key(digest), 0, -1, withscores=True)
            pipe.zrevrange(f"connector:trace:find:{digest}", 0, -1, withscores=True)  # before issue 16
        answers = pipe.execute()
    found: dict[str, float] = {}
    for number, digest in enumerate(digests):
        prefix = digest[:FIND_MEMBER_CHARS] + "|"
        mine: dict[str, float] = {}
        for member, score in answers[2 * number]:
            text = member.decode() if isinstance(member, bytes) else str(member)
            if text.startswith(prefix):
                mine[text[len(prefix) :]] = float(score)
        for member, score in answers[2 * number + 1]:
            mine[member.decode() if isinstance(member, bytes) else str(member)] = float(score)
        for trace in sorted(mine, key=lambda t: mine[t], reverse=True)[:TRACES_PER_TERM]:
            found[trace] = max(found.get(trace, 0.0), mine[trace])
    return found


def index_translation(client: Redis, people: Iterable[tuple[str, str | None]]) -> None:
    """Called by ingest with what it translated, ``(business key or event id, email)`` each: the
    current trace becomes findable by them (the email only as its hash). Never raises."""
    trace = _trace.get()
    if not trace:
        return
    people = list(people)
    if not people:
        return
    terms: list[tuple[str, str]] = []
    for key, email in people:
        terms += [("key", term) for term in business_terms(key)]
        if email:
            terms.append(("email", hash_identifier(email)))
    moment = time.time()
    try:  # in the job's completion round trip, with its records
        completion.defer(client, lambda pipe: _index_terms(pipe, trace, terms, moment))
    except Exception:  # informational, as every record
        log.exception("the trace index of %s could not be written", trace)


def forget_guest(client: Redis, tenant: str, subject_hashes: Iterable[str]) -> int:
    """An erased guest's traces of ``tenant`` can no longer be found by their email (the index
    of each :func:`~connector.activities.hash_identifier` loses them); returns how many."""
    forgotten = 0
    for subject in subject_hashes:
        digest = term_digest("email", subject)
        members = list(find_traces(client, [("email", subject)]))
        if not members:
            continue
        with client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.get(trace_tenant_key(member))
            owners = pipe.execute()
        theirs = [m for m, owner in zip(members, owners, strict=True) if owner is None or owner.decode() == tenant]
        if theirs:
            with client.pipeline(transaction=False) as pipe:
                pipe.zrem(find_bucket_key(digest), *[_find_member(digest, trace) for trace in theirs])
                pipe.zrem(f"connector:trace:find:{digest}", *theirs)  # an index written before issue 16
                removed = pipe.execute()
            forgotten += sum(int(count) for count in removed)
    return forgotten


def now_iso() -> str:
    """Now, as the records write times."""
    return datetime.now(UTC).isoformat(timespec="microseconds")  # records of one job sort by it


def clean_text(text: str, secrets: Iterable[str], limit: int = TEXT_LIMIT, also: Iterable[str] = ()) -> str:
    """``text`` fit for a record: every encoding of ``secrets`` and of ``also`` (values of this
    record's job, such as the guest's email: see :func:`connector.redaction.redact`) masked, email
    addresses masked, whitespace collapsed, at most ``limit`` characters (cut after redaction, so
    no secret is cut into an unrecognisable half)."""
    masked = redaction.redact(text, secrets, also)
    masked = EMAIL.sub(EMAIL_MASK, masked)
    masked = " ".join(masked.split())
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"


def _epoch(moment: str) -> float:
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC).timestamp()
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# --- writing ----------------------------------------------------------------------------------


def write(client: Redis, tenant: str, record: Mapping[str, Any]) -> None:
    """Store one attempt record (and update the indexes) in one pipeline."""
    with client.pipeline(transaction=False) as pipe:
        queue_record(pipe, tenant, record)
        pipe.execute()


def queue_record(pipe: Any, tenant: str, record: Mapping[str, Any]) -> None:
    """Queue the commands that store one attempt record (and update the indexes) on ``pipe``."""
    job_id = str(record["job"])
    status = record["status"]
    key = job_key(tenant, job_id)
    settled = status in ("delivered", "translated", "ignored", "erasure")
    pipe.lpush(key, json.dumps(record, separators=(",", ":")))
    pipe.ltrim(key, 0, ATTEMPTS_KEPT - 1)
    pipe.expire(key, retention(settled))
    if record.get("kind") == "webhook":
        index = webhooks_key(tenant, str(record["source"]))
        pipe.zadd(index, {job_id: _epoch(str(record.get("received_at", "")))})
        pipe.zremrangebyrank(index, 0, -WEBHOOKS_KEPT - 1)
        pipe.expire(index, RECORD_TTL)
    failures = failures_key(tenant)
    if status == "failed":
        pipe.zadd(failures, {job_id: _epoch(str(record["at"]))})
        pipe.zremrangebyrank(failures, 0, -FAILURES_KEPT - 1)
        pipe.expire(failures, RECORD_TTL)
    elif status != "retrying":
        pipe.zrem(failures, job_id)
    trace = record.get("trace")
    if trace:
        ttl = index_ttl()
        pipe.set(trace_tenant_key(str(trace)), tenant, ex=ttl)
        if job_id != trace and not str(trace).startswith(WEBHOOK_TRACE):
            # A webhook's trace lists its jobs in its ingest record (``deliveries``, ``relays``,
            # ``erasure``); a trace begun by another job (a reconciliation) keeps them here.
            jobs = trace_jobs_key(str(trace))
            pipe.zadd(jobs, {job_id: _epoch(str(record["at"]))}, nx=True)
            pipe.zremrangebyrank(jobs, JOBS_KEPT, -1)  # the first ones stay
            pipe.expire(jobs, ttl)
        terms = [] if job_id == trace else [("job", job_id)]  # a trace is found by its own id anyway
        if record.get("kind") == "webhook" and record.get("delivery_id"):
            terms.append(("delivery", str(record["delivery_id"])))
        _index_terms(pipe, str(trace), terms, _epoch(str(record["at"])))


def _answer(result: Mapping[str, Any]) -> dict[str, Any] | None:
    receipt = result.get("receipt")
    if not isinstance(receipt, Mapping):
        return None
    remote = receipt.get("remote_id")
    return {"http_status": None, "remote_id": str(remote) if remote is not None else None, "body": None}


def _outcome(kind: str, result: Any, secrets: Callable[[], Iterable[str]], also: Iterable[str] = ()) -> dict[str, Any]:
    """The record fields of a job that returned ``result``."""
    if not isinstance(result, Mapping):
        return {"status": "delivered" if kind != "webhook" else "translated"}
    status = str(result.get("status", ""))
    fields: dict[str, Any] = {}
    if status == "ignored":
        fields = {"status": "ignored", "reason": clean_text(str(result.get("reason", "")), secrets(), also=also)}
    elif kind == "webhook":
        fields = {"status": status or "translated"}
        for name in ("deliveries", "relays"):
            if isinstance(result.get(name), list):
                fields[name] = [str(job) for job in result[name]]
        if status == "erasure":
            fields["erasure"] = str(result.get("job", ""))
    else:
        fields = {"status": "delivered", "answer": _answer(result)}
        if status == "already_delivered":
            fields["reason"] = "already delivered earlier; nothing was sent again"
    return fields


def _failure(
    exc: BaseException, secrets: Iterable[str], retry_in: float | None, also: Iterable[str] = ()
) -> dict[str, Any]:
    """The record fields of an attempt that raised ``exc``: its reason, the destination's answer,
    and whether it is tried again in ``retry_in`` seconds (``retrying``) or not (``None``: ``failed``)."""
    reason = str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DestinationError) and exc.body and reason.endswith(exc.body):
        reason = reason[: -len(exc.body)].rstrip(": ")  # the body is the answer's, shown beside it
    fields: dict[str, Any] = {"reason": clean_text(reason or type(exc).__name__, secrets, 500, also)}
    if isinstance(exc, DestinationError):
        fields["answer"] = {
            "http_status": exc.status,
            "remote_id": None,
            "body": clean_text(exc.body, secrets, also=also) if exc.body else None,
        }
    if retry_in is not None:
        fields["status"] = "retrying"
        fields["next_attempt_at"] = (datetime.now(UTC) + timedelta(seconds=retry_in)).isoformat(timespec="seconds")
    else:
        fields["status"] = "failed"
    return fields


def _current_job_retry_in() -> float | None:
    """Seconds until RQ runs the current job again, ``None`` when it will not (a final failure)."""
    job = get_current_job()
    if job is None or not job.should_retry:
        return None
    try:
        return float(job.get_retry_interval())
    except (AssertionError, IndexError, TypeError):
        return 0.0


def _next(fields: Mapping[str, Any]) -> str:
    """What happens after an attempt that ended with ``fields``."""
    status = fields.get("status")
    if status == "retrying":
        return f"retry at {fields.get('next_attempt_at') or 'once due'}"
    return "failed" if status == "failed" else "done"


def _trace_fields(
    trace: str | None,
    started: float,
    requests_made: Sequence[Mapping[str, Any]],
    ended: Mapping[str, Any],
    secrets: Iterable[str],
    also: Iterable[str] = (),
) -> dict[str, Any]:
    """The trace's fields of an attempt record (see the module doc): redacted like every text."""
    hidden = tuple(secrets)
    extra: dict[str, Any] = {
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "next": _next(ended),
        "requests": [
            {**made, "path": clean_text(str(made.get("path", "")), hidden, 200, also)}
            for made in requests_made[-REQUESTS_KEPT:]
        ],
    }
    if trace:
        extra["trace"] = trace
    return extra


def _subject(kind: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """(tenant, the record's descriptive fields, values to redact besides the secrets) of a job's
    arguments; the tenant is ``""`` when the arguments are not what the job expects."""
    data = args[0] if args else None
    if not isinstance(data, Mapping):
        return "", {}, []
    tenant = str(data.get("tenant", ""))
    source = str(data.get("source", ""))
    if kind == "webhook":
        return (
            tenant,
            {
                "source": source,
                "received_at": str(data.get("received_at", "")),
                "event_type": str(data.get("event_type", ""))[:100],
                "delivery_id": EMAIL.sub(EMAIL_MASK, str(data.get("delivery_id", "")))[:100],
            },
            [],
        )
    destination = args[1] if len(args) > 1 else kwargs.get("queued_for")
    person = data.get("person")
    email = data.get("email") if kind == "relay" else person.get("email") if isinstance(person, Mapping) else None
    fields = {"source": source, "type": str(data.get("type", ""))[:100], "destination": str(destination or "")}
    return tenant, fields, [str(email)] if email else []


class Attempt:
    """One attempt of a recorded job (or of a delivery or relay made inline by its ingest job,
    :func:`inline_attempt`): writes its record once it ended, in the job's completion round trip
    (:func:`connector.completion.defer`). A record that cannot be written is logged and never
    changes the attempt's outcome."""

    def __init__(
        self,
        kind: str,
        job_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        redis: Callable[[], Redis],
        secrets: Callable[[], Iterable[str]],
    ) -> None:
        self.kind = kind
        self.job_id = job_id
        self.tenant, self.fields, self.hidden = _subject(kind, args, kwargs)
        self.redis = redis
        self.secrets = secrets
        self.trace = _trace.get()
        self.requests: list[dict[str, Any]] = []
        self.started = time.perf_counter()

    def secret_values(self) -> list[str]:
        """The secrets this attempt's texts are redacted with (and :attr:`hidden`: the guest's email)."""
        return list(self.secrets())

    def succeeded(self, result: Any) -> None:
        """Record an attempt that returned ``result``."""
        self._record(lambda: _outcome(self.kind, result, self.secret_values, self.hidden))

    def failed(self, exc: BaseException, retry_in: float | None) -> None:
        """Record an attempt that raised ``exc`` (tried again in ``retry_in`` seconds, or not: ``None``)."""
        self._record(lambda: _failure(exc, self.secret_values(), retry_in, self.hidden))

    def _record(self, outcome: Callable[[], dict[str, Any]]) -> None:
        if not self.tenant:
            return
        try:
            ended = {**outcome()}
            answer = ended.get("answer")
            if isinstance(answer, dict) and answer.get("http_status") is None and self.requests:
                answer["http_status"] = self.requests[-1].get("status")  # a success's
            extra = _trace_fields(self.trace, self.started, self.requests, ended, self.secret_values(), self.hidden)
            record = {"at": now_iso(), "job": self.job_id, "kind": self.kind, **self.fields, **ended, **extra}
            tenant = self.tenant
            completion.defer(self.redis(), lambda pipe: queue_record(pipe, tenant, record))
        except Exception:  # informational: a job's outcome never depends on its record
            log.exception("the activity record of a %s job of %s could not be written", self.kind, self.tenant)


@contextmanager
def inline_attempt(
    kind: str, job_id: str, args: Sequence[Any], redis: Callable[[], Redis], secrets: Callable[[], Iterable[str]]
) -> Iterator[Attempt]:
    """A delivery or relay attempt made inside the current (ingest) job for the job ``job_id``
    would be: its own record under that job id, in the same trace, with the HTTP requests made
    inside the block (not the ingest's). The caller reports the outcome on the yielded
    :class:`Attempt`."""
    attempt = Attempt(kind, job_id, args, {}, redis, secrets)
    token = _requests.set(attempt.requests)
    try:
        yield attempt
    finally:
        _requests.reset(token)


def recorded(
    kind: str, redis: Callable[[], Redis], secrets: Callable[[], Iterable[str]]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a job (outside :func:`connector.retry.apply_retry_policy`, so that it sees
    whether RQ runs the job again) to record each attempt's outcome (``kind``: ``webhook``,
    ``delivery`` or ``relay``). A record that cannot be written is logged, never changes the
    job's outcome."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if completion.collecting_here():
                return attempt(*args, **kwargs)
            # No worker collects the job's writes: the job sends them itself, in one pipeline at
            # its end (success or failure), as the worker would with its outcome.
            with completion.collecting() as writes:
                try:
                    result = attempt(*args, **kwargs)
                except BaseException:
                    try:
                        completion.flush(redis(), writes)
                    except Exception:  # the job's own failure is what RQ must see
                        log.exception("the writes of a failed %s job could not be sent", kind)
                    raise
                completion.flush(redis(), writes)  # a failure here fails the job: it runs again
                return result

        def attempt(*args: P.args, **kwargs: P.kwargs) -> R:
            tenant, fields, _ = _subject(kind, args, kwargs)
            with traced_context(kind, tenant, str(fields.get("source", ""))) as (_, requests_made):
                job = get_current_job()
                attempt = Attempt(kind, job.id if job is not None else f"direct-{kind}", args, kwargs, redis, secrets)
                attempt.requests = requests_made
                try:
                    result = func(*args, **kwargs)
                except BaseException as exc:
                    attempt.failed(exc, _current_job_retry_in())
                    raise
                attempt.succeeded(result)
                return result

        return wrapper

    return decorate


def record_retry(client: Redis, tenant: str, job_id: str, kind: str, by: str, at: str | None = None) -> None:
    """Note that ``job_id`` was requeued from the Activity page (``by``: who asked)."""
    latest = attempts(client, tenant, [job_id]).get(job_id) or []
    previous = latest[0] if latest else {}
    kept: dict[str, Any] = {
        k: previous[k] for k in ("source", "type", "destination", "received_at", "event_type") if k in previous
    }
    write(
        client,
        tenant,
        {
            "at": at or now_iso(),
            "job": job_id,
            "kind": kind,
            **kept,
            "status": "retrying",
            "reason": "retry requested from the Activity page",
            "by": by,
        },
    )


# --- reading ----------------------------------------------------------------------------------


def _decode(raw: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def attempts(client: Redis, tenant: str, job_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each job's attempt records, newest first (by their time; absent: none or expired), in
    one round trip."""
    if not job_ids:
        return {}
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.lrange(job_key(tenant, job_id), 0, ATTEMPTS_KEPT - 1)
        lists = pipe.execute()
    found: dict[str, list[dict[str, Any]]] = {}
    for job_id, raw in zip(job_ids, lists, strict=True):
        records = [r for r in (_decode(item) for item in raw) if r is not None]
        if records:
            # Sorted by time: a retry noted just after its job ran again must not hide the new outcome.
            found[job_id] = sorted(records, key=lambda r: str(r.get("at", "")), reverse=True)
    return found


def webhooks(client: Redis, tenant: str, source: str, limit: int = WEBHOOKS_KEPT) -> list[dict[str, Any]]:
    """The last ``limit`` webhooks of ``source``, newest first: each the latest record of its
    ingest job, with ``attempts`` (all of its records) and ``caused`` (the latest record of each
    job it enqueued, ``None`` for one not run yet)."""
    ids = [
        i.decode() if isinstance(i, bytes) else str(i)
        for i in client.zrevrange(webhooks_key(tenant, source), 0, limit - 1)
    ]
    ingests = attempts(client, tenant, ids)
    caused_ids = []
    for job_id in ids:
        latest = ingests.get(job_id, [{}])[0]
        caused_ids += [*latest.get("deliveries", []), *latest.get("relays", [])]
    caused = attempts(client, tenant, caused_ids)
    found = []
    for job_id in ids:
        if job_id not in ingests:
            continue
        latest = dict(ingests[job_id][0])
        latest["attempts"] = ingests[job_id]
        latest["caused"] = [
            (caused[c][0] if c in caused else {"job": c, "status": "queued"})
            for c in [*latest.get("deliveries", []), *latest.get("relays", [])]
        ]
        found.append(latest)
    return found


def failures(client: Redis, tenant: str, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's jobs whose latest record is ``failed``, the most recent first."""
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in client.zrevrange(failures_key(tenant), 0, limit - 1)]
    found = attempts(client, tenant, ids)
    return [found[job_id][0] for job_id in ids if job_id in found and found[job_id][0].get("status") == "failed"]


def last_seen(client: Redis, tenant: str, sources: Iterable[str]) -> dict[str, datetime | None]:
    """When each of the tenant's ``sources`` last sent a webhook that a job took up (its
    ``received_at``), ``None`` for never (or longer ago than the records are kept). One round
    trip; the silence warnings and metrics read it."""
    names = list(sources)
    with client.pipeline(transaction=False) as pipe:
        for source in names:
            pipe.zrevrange(webhooks_key(tenant, source), 0, 0, withscores=True)
        answers = pipe.execute()
    return {
        source: datetime.fromtimestamp(float(answer[0][1]), UTC) if answer else None
        for source, answer in zip(names, answers, strict=True)
    }


def silent_sources(
    client: Redis, tenant: str, windows: Mapping[str, float | None], now: datetime | None = None
) -> dict[str, datetime | None]:
    """The sources quiet for longer than their window (hours; ``None``: no window), with when
    each was last seen (``None``: never)."""
    watched = {source: float(hours) for source, hours in windows.items() if hours}
    moment = now or datetime.now(UTC)
    silent: dict[str, datetime | None] = {}
    for source, seen in last_seen(client, tenant, watched).items():
        if seen is None or moment - seen > timedelta(hours=watched[source]):
            silent[source] = seen
    return silent
