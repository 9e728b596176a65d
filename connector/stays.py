"""Per-tenant reservation state in Redis, applied atomically with the delivery jobs it causes.

For each reservation (business key ``<pms>:<property>:<reservation>``) the worker keeps a
:class:`~connector.sources.stay.StayState` under ``connector:stay:<tenant>:<digest>``. Applying
one snapshot's implied activities is one optimistic transaction: ``WATCH`` the state key, read,
:func:`~connector.sources.stay.reconcile` (pure), then ``MULTI`` the new state together with the
delivery jobs of the activities to emit. Two ingest jobs touching the same reservation at once
cannot both emit: the loser's ``EXEC`` fails, it re-reads the winner's state and recomputes.
A worker dying before ``EXEC`` leaves nothing behind, so the retried ingest emits again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from connector.activities import Activity
from connector.sources.stay import StayState, reconcile

STATE_TTL = 400 * 24 * 3600  # as long as the delivery ledger
MAX_ATTEMPTS = 50

# (pipeline in MULTI mode, activity) -> delivery job id, the job written into the pipeline
JobWriter = Callable[[Pipeline, Activity], str]


def state_key(tenant: str, business_key: str) -> str:
    """Redis key of one reservation's state (the business key holds no PII, but keep it short)."""
    digest = hashlib.sha256(business_key.encode()).hexdigest()[:40]
    return f"connector:stay:{tenant}:{digest}"


def load_state(client: Redis, tenant: str, business_key: str) -> StayState:
    """The stored state of a reservation (empty when never seen)."""
    raw = client.get(state_key(tenant, business_key))
    return StayState.from_json(raw if isinstance(raw, str | bytes) else None)


def apply_stay(client: Redis, tenant: str, implied: list[Activity], write_job: JobWriter) -> list[str]:
    """Emit what one reservation snapshot adds to the stored state; returns new delivery job ids.

    Raises:
        RuntimeError: the state kept changing under us for ``MAX_ATTEMPTS`` rounds.
    """
    key = state_key(tenant, implied[0].business_key)
    for _ in range(MAX_ATTEMPTS):
        with client.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                state = StayState.from_json(raw if isinstance(raw, str | bytes) else None)
                emit, new_state = reconcile(state, implied)
                if new_state == state:
                    pipe.unwatch()
                    return []
                pipe.multi()
                pipe.set(key, new_state.to_json(), ex=STATE_TTL)
                ids = [write_job(pipe, activity) for activity in emit]
                pipe.execute()
                return ids
            except WatchError:
                continue
    raise RuntimeError(f"reservation state for {tenant} kept changing; retry the ingest job")
