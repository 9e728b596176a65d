"""The delivery ledger: exactly once per destination and business key.

Before a delivery job sends anything it looks its ledger key up; after the destination answered it
records the receipt (and counts it) in one round trip. A replay, a duplicate job or a second worker
finds the record and sends nothing. Records are kept :data:`LEDGER_TTL`, longer than any retry or
replay window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from connector import metrics
from connector.activities import Activity, LoyaltyEvent

LEDGER_TTL = 400 * 24 * 3600


def _ledger_redis_key(tenant: str, destination: str, business_key: str) -> str:
    digest = hashlib.sha256(business_key.encode()).hexdigest()[:40]
    return f"connector:ledger:{tenant}:{destination}:{digest}"


def ledger_key(tenant: str, platform: str, activity: Activity) -> str:
    """Redis key recording that an activity reached a platform."""
    return _ledger_redis_key(tenant, platform, activity.ledger_key)


def relay_ledger_key(tenant: str, provider: str, event: LoyaltyEvent) -> str:
    """Redis key recording that a loyalty event reached an ESP."""
    return _ledger_redis_key(tenant, provider, event.ledger_key)


def ledger_lookup(client: Redis, key: str, destination: str) -> dict[str, Any] | None:
    """The recorded receipt when ``key`` was already delivered (counted), else ``None``."""
    recorded = client.get(key)
    if not recorded:
        return None
    metrics.count(client, "deliveries", destination=destination, outcome="already_delivered")
    value: dict[str, Any] = json.loads(recorded)
    return value


def ledger_record(client: Redis, key: str, destination: str, record: dict[str, Any]) -> None:
    """Record a delivery (and count it) in one round trip."""
    with client.pipeline() as pipe:
        pipe.set(key, json.dumps(record), ex=LEDGER_TTL)
        metrics.count(pipe, "deliveries", destination=destination, outcome="delivered")
        pipe.execute()


def deliver_once(client: Redis, key: str, destination: str, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Exactly once per ledger ``key``: the recorded receipt when there is one, else ``send()``'s
    receipt, stamped ``delivered_at`` and recorded."""
    recorded = ledger_lookup(client, key, destination)
    if recorded is not None:
        return {"status": "already_delivered", "receipt": recorded}
    record = {**send(), "delivered_at": datetime.now(UTC).isoformat()}
    ledger_record(client, key, destination, record)
    return {"status": "delivered", "receipt": record}
