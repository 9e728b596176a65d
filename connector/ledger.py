"""The delivery ledger: exactly once per destination and business key.

Before a delivery job sends anything it looks its ledger key up; after the destination answered it
records the receipt (and counts it) in the job's completion round trip
(:func:`connector.completion.defer`: with the job's outcome and activity record when a worker
collects them). A replay, a duplicate job or a second worker finds the record and sends nothing.
A crash between the destination's answer and that write leaves the outcome unknown exactly as a
crash before an immediate write would: the destination's own dedup or the attempt markers
(:mod:`connector.attempts`) settle it. Records are kept :data:`LEDGER_TTL`, longer than any retry
or replay window.

Redis keys (``{t}`` tenant, ``{d}`` destination, ``{digest}`` 40 hex of the business key)::

    connector:ledger:{t}:{d}:{digest}   STRING  the receipt (JSON); LEDGER_TTL (400 days)
    connector:inline:{job}              STRING  the id of the ingest job delivering ``{job}``'s
                                                activity or event itself (:func:`claim_inline`);
                                                deleted when it is done, else INLINE_CLAIM_TTL
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from connector import completion, metrics
from connector.activities import Activity, LoyaltyEvent

LEDGER_TTL = 400 * 24 * 3600
INLINE_CLAIM_TTL = 300  # longer than any inline attempt (a few HTTP calls of at most the HTTP timeout)


def _ledger_redis_key(tenant: str, destination: str, business_key: str) -> str:
    digest = hashlib.sha256(business_key.encode()).hexdigest()[:40]
    return f"connector:ledger:{tenant}:{destination}:{digest}"


def ledger_key(tenant: str, platform: str, activity: Activity) -> str:
    """Redis key recording that an activity reached a platform."""
    return _ledger_redis_key(tenant, platform, activity.ledger_key)


def relay_ledger_key(tenant: str, provider: str, event: LoyaltyEvent) -> str:
    """Redis key recording that a loyalty event reached an ESP."""
    return _ledger_redis_key(tenant, provider, event.ledger_key)


def _decode_receipt(recorded: bytes | str | None) -> dict[str, Any] | None:
    if not recorded:
        return None
    value: dict[str, Any] = json.loads(recorded)
    return value


def ledger_lookup(client: Redis, key: str, destination: str) -> dict[str, Any] | None:
    """The recorded receipt when ``key`` was already delivered (counted), else ``None``."""
    recorded = _decode_receipt(client.get(key))
    if recorded is not None:
        _count_already_delivered(client, destination)
    return recorded


def _count_already_delivered(client: Redis, destination: str) -> None:
    completion.defer(
        client, lambda pipe: metrics.count(pipe, "deliveries", destination=destination, outcome="already_delivered")
    )


def ledger_record(client: Redis, key: str, destination: str, record: dict[str, Any]) -> None:
    """Record a delivery (and count it) in one round trip: the job's completion one when a
    worker collects the job's writes (:func:`connector.completion.defer`), else now."""
    value = json.dumps(record)

    def write(pipe: Any) -> None:
        pipe.set(key, value, ex=LEDGER_TTL)
        metrics.count(pipe, "deliveries", destination=destination, outcome="delivered")

    completion.defer(client, write)


class NotLookedUp:
    """The ledger was not read yet (:func:`deliver_once` reads it)."""


NOT_LOOKED_UP = NotLookedUp()


def deliver_once(
    client: Redis,
    key: str,
    destination: str,
    send: Callable[[], dict[str, Any]],
    *,
    recorded: dict[str, Any] | NotLookedUp | None = NOT_LOOKED_UP,
) -> dict[str, Any]:
    """Exactly once per ledger ``key``: the recorded receipt when there is one, else ``send()``'s
    receipt, stamped ``delivered_at`` and recorded. ``recorded``: the ledger's value when the
    caller already read it (:func:`claim_inline`), saving that round trip."""
    if isinstance(recorded, NotLookedUp):
        recorded = ledger_lookup(client, key, destination)
    elif recorded is not None:
        _count_already_delivered(client, destination)
    if recorded is not None:
        return {"status": "already_delivered", "receipt": recorded}
    record = {**send(), "delivered_at": datetime.now(UTC).isoformat()}
    ledger_record(client, key, destination, record)
    return {"status": "delivered", "receipt": record}


def inline_claim_key(job_id: str) -> str:
    """The key an ingest job holds while it delivers job ``job_id``'s activity or event itself."""
    return f"connector:inline:{job_id}"


@dataclass(frozen=True)
class InlineClaim:
    """What :func:`claim_inline` found, in one round trip."""

    recorded: dict[str, Any] | None
    """The ledger's receipt (``None``: not delivered yet)."""
    job_exists: bool
    """The delivery or relay job exists (queued, scheduled, running, failed): it does the work."""
    claimed: bool
    """This attempt holds the claim (no other ingest job is delivering the same thing now)."""

    @property
    def inline(self) -> bool:
        """Whether the caller may deliver inline now."""
        return self.claimed and not self.job_exists


def claim_inline(
    client: Redis, key: str, job_id: str, job_hash_key: str, owner: str, also: Callable[[Any], object] | None = None
) -> InlineClaim:
    """Before an ingest job (``owner``, its id) delivers what job ``job_id`` would: the ledger's
    value, whether that job exists, and the claim that keeps two ingest jobs from sending the same
    activity at once (two webhooks of one order on two workers). One round trip. A claim held by
    ``owner`` itself is an earlier run of the same ingest job, which has ended (RQ runs a job id
    once at a time; a dead worker's job is queued again only once it is gone): taken over. A
    claim taken while the job exists is given back at once (in the completion round trip).
    ``also`` queues further commands on the same round trip (their answers are not read)."""
    claim = inline_claim_key(job_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.exists(job_hash_key)
        pipe.set(claim, owner, nx=True, ex=INLINE_CLAIM_TTL)
        pipe.get(claim)
        if also is not None:
            also(pipe)
        raw, exists, claimed, holder = pipe.execute()[:4]
    ours = bool(claimed) or (holder is not None and holder.decode() == owner)
    found = InlineClaim(recorded=_decode_receipt(raw), job_exists=bool(exists), claimed=ours)
    if found.claimed and found.job_exists:
        release_inline(client, job_id)
    return found


def release_inline(client: Redis, job_id: str) -> None:
    """Give the claim back (after the ledger write, in the same completion round trip)."""
    claim = inline_claim_key(job_id)
    completion.defer(client, lambda pipe: pipe.delete(claim))
