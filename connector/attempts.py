"""Attempt markers that close (or expose) the crash window of platforms without server dedup.

``jobs.deliver`` checks the ledger before posting and writes it after. If the worker dies, or the
answer is lost (timeout, dropped connection, 5xx after the platform committed), between the
platform's write and the ledger write, the next attempt cannot tell from the ledger whether the
activity already arrived. A destination without server-side dedup therefore writes an attempt
marker *before* its first create call; an attempt that finds a marker from an earlier attempt
knows the outcome is uncertain and reconciles with the platform before creating anything, and
creates only when the write is certainly not there: LoyaltyLion looks the order or activity up by
``merchant_id``, Voucherify scans the customer's activity for the custom event carrying our
business key, Mailchimp (an ESP relay) scans the member's events for our event id.

One mechanism for loyalty activities and relayed loyalty events alike: anything with a
``ledger_key`` can be marked.

Markers are keyed by a digest of the activity's ledger key (no PII) and kept as long as failed
jobs can be replayed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from connector.errors import DestinationError

CLAIM_TTL = 90 * 24 * 3600  # as long as a failed job stays replayable (queue.FAILURE_TTL)


class Keyed(Protocol):
    """What can be marked: an :class:`~connector.activities.Activity` or a
    :class:`~connector.activities.LoyaltyEvent` (both unique per destination by ``ledger_key``)."""

    @property
    def ledger_key(self) -> str: ...


class AttemptMarkers:
    """Per tenant and platform: when the first unconfirmed create attempt for an activity began."""

    def __init__(self, redis: Any, tenant: str, platform: str) -> None:
        self.redis = redis
        self.prefix = f"connector:attempt:{tenant}:{platform}:"

    def key(self, activity: Keyed) -> str:
        """Redis key of an activity's marker."""
        return self.prefix + hashlib.sha256(activity.ledger_key.encode()).hexdigest()[:40]

    def begin(self, activity: Keyed, *, now: float | None = None) -> float | None:
        """Record an attempt; return the start time of an earlier attempt (outcome unknown), if any."""
        stamp = time.time() if now is None else now
        key = self.key(activity)
        if self.redis.set(key, repr(stamp), nx=True, ex=CLAIM_TTL):
            return None
        earlier = self.redis.get(key)
        return float(earlier) if earlier is not None else stamp

    def clear(self, activity: Keyed) -> None:
        """Forget the marker (the platform definitely did not create anything)."""
        self.redis.delete(self.key(activity))

    @contextmanager
    def attempt(self, activity: Keyed, *, first: bool) -> Iterator[None]:
        """Around the create call: when the platform *answered* a refusal (429, 4xx) to the first
        attempt, nothing was created, so the marker goes; 5xx, timeouts and lost connections keep it."""
        try:
            yield
        except DestinationError as exc:
            definite = exc.status is not None and (exc.status == 429 or 400 <= exc.status < 500)
            if first and definite:
                self.clear(activity)
            raise
