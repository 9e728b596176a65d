"""``/app/<tenant>/activity``: what came in and what became of it, failures first.

The page reads the jobs' records (:mod:`connector.activity_log`): the finally failed jobs, each
with its reason and a Retry button, then the last webhooks of each source with the deliveries
they caused (times in the tenant's timezone), and a warning for each source quiet for longer than
its ``silent_after`` window. A plain reload (or the Refresh link) shows what is new.

Retry (``POST …/activity/retry``, field ``job``) requeues a job from RQ's failed registry. It
never doubles: only a job of this tenant, of a kind the page shows, that is in the failed registry
now is requeued, and the registry's removal is atomic, so of two presses one requeues and the
other is told it was already retried; a delivery that did reach the platform is a no-op anyway
(:mod:`connector.ledger`). A job id of another tenant is answered as if it did not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import current_app, redirect, request, url_for
from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from werkzeug.wrappers import Response

from connector import activity_log
from connector.web.merchant.blueprint import bp
from connector.web.merchant.pages import TenantView, render, settings, tenant_page
from connector.web.merchant.session import current_session

SHOWN_PER_SOURCE = 25
RETRIABLE_JOB = re.compile(r"(ingest|deliver|relay)-[0-9a-f]{40}")
JOB_KINDS = {"ingest": "webhook", "deliver": "delivery", "relay": "relay"}
RETRIABLE_FUNCS = {f"connector.jobs.{name}" for name in JOB_KINDS}


def _redis() -> Redis:
    client: Redis = current_app.extensions["connector.redis"]
    return client


def _zone(tenant: TenantView) -> tzinfo:
    return tenant.served.zone if tenant.served is not None else UTC


def local_time(moment: str | datetime | None, zone: tzinfo) -> str:
    """A record's time in the tenant's timezone (``""`` for none)."""
    if not moment:
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def answer_text(answer: Any) -> str:
    """The destination's answer in a line: HTTP status, remote id, (redacted) body."""
    if not isinstance(answer, dict):
        return ""
    parts = []
    if answer.get("http_status"):
        parts.append(f"HTTP {answer['http_status']}")
    if answer.get("remote_id"):
        parts.append(f"id {answer['remote_id']}")
    if answer.get("body"):
        parts.append(str(answer["body"]))
    return " · ".join(parts)


def hours_text(hours: float | None) -> str:
    """``6``, ``1.5``: a window in hours as the page says it."""
    return "" if not hours else f"{hours:g}"


@dataclass
class Row:
    """One record as the page shows it."""

    job: str
    time: str
    what: str
    status: str
    detail: str
    answer: str
    caused: list[Row] = field(default_factory=list)


def _what(record: dict[str, Any]) -> str:
    if record.get("kind") == "webhook":
        return f"{record.get('source', '')} {record.get('event_type', '')}".strip()
    arrow = f" to {record['destination']}" if record.get("destination") else ""
    return f"{record.get('type') or record.get('kind', 'job')}{arrow}"


def _detail(record: dict[str, Any], zone: tzinfo) -> str:
    reason = str(record.get("reason") or "")
    if record.get("status") == "retrying" and record.get("next_attempt_at"):
        when = f"next attempt {local_time(record['next_attempt_at'], zone)}"
        return f"{reason} ({when})" if reason else when
    if record.get("status") == "translated" and not record.get("deliveries") and not record.get("relays"):
        return "nothing to send"
    return reason


def _row(record: dict[str, Any], zone: tzinfo, time_field: str = "at") -> Row:
    return Row(
        job=str(record.get("job", "")),
        time=local_time(record.get(time_field) or record.get("at"), zone),
        what=_what(record),
        status=str(record.get("status", "")),
        detail=_detail(record, zone),
        answer=answer_text(record.get("answer")),
    )


@dataclass
class SourceActivity:
    """A source's section of the page."""

    name: str
    last_seen: str
    silent_after: str
    webhooks: list[Row]


def _page(tenant: TenantView, status: int = 200, message: str = "", ok: str = "") -> Response:
    client = _redis()
    zone = _zone(tenant)
    configured = tenant.served.sources if tenant.served is not None else {}
    windows = {name: config.silent_after for name, config in configured.items()}
    seen = activity_log.last_seen(client, tenant.name, windows)
    silent = activity_log.silent_sources(client, tenant.name, windows)
    sections = []
    for name in configured:
        rows = []
        for webhook in activity_log.webhooks(client, tenant.name, name, SHOWN_PER_SOURCE):
            row = _row(webhook, zone, "received_at")
            row.caused = [_row(caused, zone) for caused in webhook["caused"]]
            rows.append(row)
        sections.append(SourceActivity(name, local_time(seen.get(name), zone), hours_text(windows[name]), rows))
    return render(
        "merchant/activity.html",
        status,
        tenant=tenant,
        failures=[_row(record, zone) for record in activity_log.failures(client, tenant.name)],
        silent={name: local_time(when, zone) for name, when in silent.items()},
        windows={name: hours_text(hours) for name, hours in windows.items()},
        sources=sections,
        message=message,
        ok=ok,
    )


@bp.get("/<tenant>/activity")
@tenant_page
def activity(tenant: TenantView) -> Response:
    """The Activity page."""
    retried = request.args.get("retried", "")
    ok = "Retry queued: the job runs again in a moment (reload to see its outcome)." if retried else ""
    return _page(tenant, ok=ok)


def _job_tenant(job: Job) -> str | None:
    """The tenant a connector job works for, from its first argument (``None``: not one of ours)."""
    if job.func_name not in RETRIABLE_FUNCS:
        return None
    args = job.args
    first = args[0] if args else None
    return str(first.get("tenant")) if isinstance(first, dict) and first.get("tenant") else None


@bp.post("/<tenant>/activity/retry")
@tenant_page
def retry(tenant: TenantView) -> Response:
    """Requeue one failed job of this tenant (see the module docstring for why it never doubles)."""
    job_id = request.form.get("job", "").strip()
    if not RETRIABLE_JOB.fullmatch(job_id):
        return _page(tenant, 400, message="Choose a failed job from the list to retry.")
    client = _redis()
    missing = f"There is no failed job {job_id} for {tenant.name} (it may have expired)."
    try:
        job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
        owner = _job_tenant(job)
    except NoSuchJobError:
        return _page(tenant, 404, message=missing)
    except Exception:  # an unreadable job hash: nothing a retry from here could fix
        return _page(tenant, 404, message=missing)
    if owner != tenant.name:  # another tenant's job is answered as if it did not exist
        return _page(tenant, 404, message=missing)
    registry = FailedJobRegistry(job.origin, connection=client, serializer=JSONSerializer)
    at = activity_log.now_iso()  # before the requeue: the job's next record is later than this one
    job.retries_left = len(settings().retry_schedule)  # a fresh retry budget, as a new job has
    try:
        registry.requeue(job)  # removes it from the registry first, atomically: one press of two wins
    except InvalidJobOperation:
        return _page(tenant, 409, message=f"Job {job_id} is not failed now: it was already retried, or delivered.")
    session = current_session()
    by = "support staff" if session is not None and session.admin else "merchant"
    kind = JOB_KINDS[job_id.split("-", 1)[0]]
    activity_log.record_retry(client, tenant.name, job_id, kind, by, at)
    return redirect(url_for("merchant.activity", tenant=tenant.name, retried=job_id), 303)
