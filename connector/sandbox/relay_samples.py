"""Signed sample loyalty events for benchmarks and demos of the relay (webhook → ESP).

:func:`voucherify_events` yields ``(headers, body)`` pairs ready to ``POST`` to
``/webhooks/<tenant>/voucherify``: v2024-01-01 ``customer.*`` events, each with its own event id,
sendout id and customer email, signed with ``x-voucherify-signature`` (hex HMAC-SHA256 of the
exact body bytes) for ``secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

TYPES = (
    "customer.loyalty.tier.upgraded",
    "customer.rewarded.loyalty_points",
    "customer.voucher.loyalty_card.points_added",
    "customer.rewarded",
)
TIERS = ("Bronze", "Silver", "Gold", "Platinum")


def voucherify_event(index: int, run: str, now: datetime) -> dict[str, object]:
    """One v2024-01-01 webhook body; ``run`` keeps ids distinct between runs."""
    event_type = TYPES[index % len(TYPES)]
    created = (now - timedelta(seconds=index % 600)).isoformat(timespec="milliseconds")
    customer_id = f"cust_{run}_{index}"
    data: dict[str, object] = {
        "customer": {
            "id": customer_id,
            "name": f"Guest {index}",
            "email": f"guest.{run}.{index}@example.com",
            "source_id": f"bench-{index}",
            "metadata": {},
            "object": "customer",
        },
        "campaign": {"id": "camp_bench", "name": "Bench Rewards", "object": "campaign"},
    }
    if event_type == "customer.loyalty.tier.upgraded":
        data["loyalty_tier_from"] = {"id": "ltr_1", "name": TIERS[index % 3], "object": "loyalty_tier"}
        data["loyalty_tier_to"] = {"id": "ltr_2", "name": TIERS[index % 3 + 1], "object": "loyalty_tier"}
    elif event_type == "customer.rewarded":
        data["reward"] = {"id": "rew_1", "name": "Free breakfast", "type": "MATERIAL", "object": "reward"}
    else:
        data["balance"] = {
            "type": "loyalty_card",
            "points": 10 + index % 90,
            "balance": 1000 + index,
            "object": "balance",
        }
    return {
        "id": f"whs_{run}{index:012d}",
        "project_id": "proj_bench",
        "created_at": created,
        "type": event_type,
        "data": data,
        "source": {"id": "wh_bench", "object": "webhook", "target_url": "http://127.0.0.1:8000/"},
        "event": {
            "id": f"evcus_{run}{index:012d}",
            "type": event_type,
            "created_at": created,
            "entity_id": customer_id,
            "group_id": f"v-{run}{index}",
            "event_source": {"channel": "INTERNAL"},
        },
    }


def voucherify_events(n: int, secret: str) -> Iterator[tuple[dict[str, str], bytes]]:
    """``n`` distinct signed Voucherify ``customer.*`` webhooks as ``(headers, body)``."""
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    for index in range(n):
        body = json.dumps(voucherify_event(index, run, now), separators=(",", ":")).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        yield {"Content-Type": "application/json", "x-voucherify-signature": signature}, body
