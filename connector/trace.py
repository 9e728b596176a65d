"""The trace of one webhook: its chain of jobs (received -> translated -> each delivery, relay and
erasure with all its attempts -> final state), found by any id a support engineer has at hand,
rendered for the terminal (``connector trace``) and the admin page (``/admin/trace/<id>``).

A trace's id is the ingest job id of the webhook (``ingest-<40 hex>``); every job it causes
carries it in its RQ meta (``meta["trace"]``) and in its attempt records. The facts are the
activity records and trace indexes of :mod:`connector.activity_log` (no second store); the RQ
job's status fills in for a job that wrote no record yet (queued) or keeps none (an erasure).
Nothing here holds an email or a secret: the records are redacted when written, and an email
given to :func:`find` is hashed before the lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError

from connector import activity_log
from connector.activities import hash_identifier
from connector.queue import fetch_job

ACCEPTED_IDS = (
    "a trace id (ingest-…), the id of any job of the chain, a sender's delivery id (e.g. "
    "X-Shopify-Webhook-Id), an order or reservation id, a business key, or a guest's email"
)
FINAL = ("done", "failed", "in progress")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def tenant_of(client: Redis, trace: str) -> str | None:
    """The tenant of a trace, ``None`` when it is unknown (never recorded, or expired)."""
    value = client.get(activity_log.trace_tenant_key(trace))
    return _text(value) if value is not None else None


def _terms(term: str) -> list[tuple[str, str]]:
    """Every index term ``term`` could be: an email is looked up by its hash only."""
    if "@" in term:
        return [("email", hash_identifier(term))]
    return [("job", term), ("delivery", term), ("key", term)]


def find(client: Redis, term: str, tenant: str | None = None) -> list[str]:
    """The trace ids ``term`` names (see :data:`ACCEPTED_IDS`), the most recent first; only
    those of ``tenant`` when given."""
    term = term.strip()
    if not term:
        return []
    scored = activity_log.find_traces(client, _terms(term))
    if "@" not in term and term not in scored:
        if tenant_of(client, term) is not None:
            scored[term] = float("inf")  # the trace id itself
        else:
            meta_trace = _rq_trace(client, term)  # a job id whose job wrote no record yet
            if meta_trace is not None and tenant_of(client, meta_trace) is not None:
                scored.setdefault(meta_trace, 0.0)
    found = sorted(scored, key=lambda t: scored[t], reverse=True)
    tenants = {trace: tenant_of(client, trace) for trace in found}
    return [trace for trace in found if tenants[trace] is not None and (tenant is None or tenants[trace] == tenant)]


def _rq_trace(client: Redis, job_id: str) -> str | None:
    job = _rq_job(client, job_id)
    return activity_log.trace_of(job) if job is not None else None


def _rq_job(client: Redis, job_id: str) -> Any:
    if not job_id or len(job_id) > 200:
        return None
    try:
        return fetch_job(client, job_id)
    except (NoSuchJobError, ValueError):
        return None
    except Exception:  # an unreadable job hash: the trace shows it as unknown
        return None


def _rq_status(client: Redis, job_id: str) -> str:
    """A job's state in RQ in the trace's words (for a job without records)."""
    job = _rq_job(client, job_id)
    if job is None:
        return "unknown (not run yet and no longer queued, or expired)"
    state = job.get_status()
    status = state.value if state is not None else "unknown"
    return {"finished": "done", "failed": "failed"}.get(status, status)


def _final(status: str) -> str:
    if status in ("delivered", "translated", "ignored", "erasure", "done"):
        return "done"
    return "failed" if status == "failed" else "in progress"


def _job_entry(client: Redis, job_id: str, kind: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One job of the chain: its attempts oldest first and its state."""
    attempts = list(reversed(records))
    latest = records[0] if records else {}
    status = str(latest.get("status") or _rq_status(client, job_id))
    return {
        "job": job_id,
        "kind": str(latest.get("kind") or kind),
        "type": latest.get("type"),
        "destination": latest.get("destination"),
        "status": status,
        "state": _final(status),
        "attempts": attempts,
    }


def chain(client: Redis, trace: str) -> dict[str, Any] | None:
    """The whole chain of ``trace`` as one JSON-safe document, ``None`` when it is unknown::

    {"trace", "tenant", "received": {"at", "source", "event_type", "delivery_id", "answer"} | None,
     "translation": {"status", "reason", "deliveries", "relays", "erasure"} | None,
     "jobs": [{"job", "kind", "type", "destination", "status", "state", "attempts": [record…]}],
     "state": "done" | "failed" | "in progress"}
    """
    tenant = tenant_of(client, trace)
    if tenant is None:
        return None
    recorded = [_text(j) for j in client.zrange(activity_log.trace_jobs_key(trace), 0, -1)]
    own = activity_log.attempts(client, tenant, [trace]).get(trace, [])
    webhook = own[0] if own and own[0].get("kind") == "webhook" else None
    caused: list[tuple[str, str]] = []
    if webhook is not None:
        caused += [(j, "delivery") for j in webhook.get("deliveries", [])]
        caused += [(j, "relay") for j in webhook.get("relays", [])]
        if webhook.get("erasure"):
            caused.append((str(webhook["erasure"]), "erasure"))
    known = {j for j, _ in caused} | {trace}
    caused += [(j, "job") for j in recorded if j not in known]
    records = activity_log.attempts(client, tenant, [j for j, _ in caused])
    jobs = [_job_entry(client, job_id, kind, records.get(job_id, [])) for job_id, kind in caused]
    received = None
    translation = None
    if webhook is not None:
        first = own[-1]
        received = {
            "at": first.get("received_at"),
            "source": first.get("source"),
            "event_type": first.get("event_type"),
            "delivery_id": first.get("delivery_id"),
            "answer": "202 accepted (the ingest job is this trace)",
        }
        translation = {
            "status": webhook.get("status"),
            "reason": webhook.get("reason"),
            "deliveries": len(webhook.get("deliveries", [])),
            "relays": len(webhook.get("relays", [])),
            "erasure": webhook.get("erasure"),
            "attempts": list(reversed(own)),
        }
    states = [_final(str(webhook.get("status")))] if webhook is not None else []
    states += [job["state"] for job in jobs]
    state = "failed" if "failed" in states else "in progress" if "in progress" in states or not states else "done"
    return {
        "trace": trace,
        "tenant": tenant,
        "received": received,
        "translation": translation,
        "jobs": jobs,
        "state": state,
    }


def _attempt_lines(attempts: Iterable[dict[str, Any]], indent: str) -> list[str]:
    lines = []
    for number, attempt in enumerate(attempts, 1):
        answer = attempt.get("answer") or {}
        requests_made = attempt.get("requests") or []
        last = requests_made[-1] if requests_made else {}
        status = answer.get("http_status") or last.get("status")
        head = f"{indent}attempt {number}  {attempt.get('at', '?')}  {attempt.get('status', '?')}"
        if attempt.get("duration_ms") is not None:
            head += f"  {attempt['duration_ms']} ms"
        if status is not None:
            head += f"  status {status}"
        lines.append(head)
        for made in requests_made:
            code = made.get("status") if made.get("status") is not None else "no answer"
            lines.append(
                f"{indent}  {made.get('destination', '?')}: {made.get('method', '?')} {made.get('path', '?')}"
                f" -> {code} ({made.get('ms', '?')} ms)"
            )
        if attempt.get("reason"):
            lines.append(f"{indent}  reason: {attempt['reason']}")
        if answer.get("body"):
            lines.append(f"{indent}  answer: {answer['body']}")
        if answer.get("remote_id"):
            lines.append(f"{indent}  remote id: {answer['remote_id']}")
        if attempt.get("by"):
            lines.append(f"{indent}  requeued by: {attempt['by']}")
        lines.append(f"{indent}  next: {attempt.get('next') or '?'}")
    return lines


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def render(document: dict[str, Any]) -> str:
    """The chain for a terminal, one fact a line."""
    lines = [f"trace {document['trace']}  tenant {document['tenant']}  final state: {document['state']}"]
    received = document.get("received")
    if received is not None:
        lines.append(
            f"received     {received.get('at')}  {received.get('source')} {received.get('event_type')}"
            f"  delivery id {received.get('delivery_id')}  answer {received.get('answer')}"
        )
    translation = document.get("translation")
    if translation is not None:
        status = translation.get("status")
        if status == "ignored":
            summary = f"ignored: {translation.get('reason')}"
        elif status == "erasure":
            summary = f"an erasure request (job {translation.get('erasure')})"
        elif status == "translated":
            summary = f"{_count(translation.get('deliveries', 0), 'delivery', 'deliveries')}, " + _count(
                translation.get("relays", 0), "relay", "relays"
            )
        else:
            summary = f"{status}: {translation.get('reason') or ''}".rstrip(": ")
        lines.append(f"translation  {summary}")
        lines += _attempt_lines(translation.get("attempts", []), "  ")
    else:
        lines.append("received     (no webhook record: this trace began with a job, e.g. a reconciliation)")
    for job in document.get("jobs", []):
        where = f" -> {job['destination']}" if job.get("destination") else ""
        what = f" {job['type']}" if job.get("type") else ""
        lines.append(f"{job['kind']:<12} {job['job']}{what}{where}: {job['status']}")
        lines += _attempt_lines(job.get("attempts", []), "  ")
    lines.append(f"final state  {document['state']}")
    return "\n".join(lines)
