"""Does the Redis server keep what the intake acknowledged? (``appendonly``, ``appendfsync``…)

A webhook is answered 2xx once its job is written to Redis. That answer is only as durable as the
server's persistence: with ``appendfsync everysec`` (Redis's default) a crash of the machine can lose
up to a second of acknowledged webhooks, with ``appendonly no`` a restart loses everything since
the last snapshot, and any ``maxmemory-policy`` but ``noeviction`` lets Redis drop queued jobs and
dedup markers under memory pressure. The embedded server (``make run``) runs ``appendonly yes``,
``appendfsync always``. For an external ``REDIS_URL`` the connector reads the server's settings
with ``CONFIG GET`` where it is allowed (managed services often rename or forbid it) and warns:
at start (``connector run``, ``connector worker``, the web app's log), in ``check-config`` and in
``/readyz``'s body.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

WANTED = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}
RECOMMENDATION = "appendonly yes, appendfsync always, maxmemory-policy noeviction"
_CONSEQUENCE = {
    "appendonly": "a Redis restart loses every webhook acknowledged since the last snapshot",
    "appendfsync": "a crash of its machine (power loss, kernel panic) can lose up to a second of acknowledged webhooks",
    "maxmemory-policy": "under memory pressure Redis may evict queued jobs and dedup markers",
}


@dataclass(frozen=True)
class Durability:
    """What the server runs with and whether that keeps every acknowledged webhook.

    ``durable`` is ``None`` when it could not be told (``CONFIG GET`` refused, Redis down).
    """

    durable: bool | None
    settings: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line for a log or a terminal."""
        if self.durable:
            shown = ", ".join(f"{key} {value}" for key, value in self.settings.items())
            return f"{shown}: every acknowledged webhook is on disk"
        return "; ".join(self.problems)

    def as_dict(self) -> dict[str, Any]:
        """For ``/readyz``'s body."""
        return {**asdict(self), "message": self.message}


def check_durability(redis: Redis) -> Durability:
    """Read ``appendonly``, ``appendfsync`` and ``maxmemory-policy`` and judge them."""
    settings: dict[str, str] = {}
    try:
        for key in WANTED:  # one key per call: Redis < 7 takes a single pattern
            value = redis.config_get(key).get(key)
            if value is not None:
                settings[key] = str(value)
    except ResponseError as exc:  # CONFIG renamed, disabled or not allowed to this user
        return Durability(
            None,
            settings,
            [f"cannot read the server's persistence settings (CONFIG GET: {exc}); make sure it runs {RECOMMENDATION}"],
        )
    except RedisError as exc:
        return Durability(None, settings, [f"cannot check the server's persistence settings: {exc}"])
    problems = [
        f"{key} is {settings[key]}, not {wanted}: {_CONSEQUENCE[key]}"
        for key, wanted in WANTED.items()
        if key in settings and settings[key] != wanted
    ]
    if problems:
        problems.append(f"configure the server with {RECOMMENDATION} (see the README)")
    return Durability(not problems, settings, problems)


class DurabilityProbe:
    """:func:`check_durability`, remembered for ``ttl`` seconds (``/readyz`` is polled often)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._result: Durability | None = None

    def current(self, redis: Redis) -> Durability:
        """The last result, checked again once it is older than ``ttl``."""
        with self._lock:
            if self._result is None or time.monotonic() - self._checked_at > self.ttl:
                self._result = check_durability(redis)
                self._checked_at = time.monotonic()
            return self._result
