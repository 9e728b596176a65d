"""What every ESP client shares: the rate budget, the 429 pause, and property shaping.

Each client sends one :class:`~connector.activities.LoyaltyEvent` as one custom event (plus, where
the ESP needs it, a profile upsert first). Calls take one unit of the account's shared
:class:`~connector.ratelimit.RateLimiter` budget; a 429 pauses that budget for every worker for
as long as the vendor said (its own header, see each client's ``retry_after_hint``, else
``default_429_pause``) and is raised as retriable with that ``retry_after``, so the job is
rescheduled no sooner. No email address is logged: paths holding one are redacted. A client
built for a tenant carries that tenant's :class:`~connector.attempts.AttemptMarkers`
for its provider, so one without server dedup (Mailchimp) can reconcile an attempt of unknown
outcome before sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import requests

from connector.activities import LoyaltyEvent, hash_identifier
from connector.attempts import AttemptMarkers
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.esps.config import EspBase
from connector.esps.registry import ESPS
from connector.http import HttpClient, parse_reset_epoch, parse_retry_after, redact
from connector.ratelimit import RateLimiter


@dataclass(frozen=True)
class EspReceipt:
    """What the ESP answered for one relayed event (kept in the ledger)."""

    provider: str
    status: int
    name: str
    remote_id: str = ""


def event_properties(event: LoyaltyEvent) -> dict[str, Any]:
    """Flat, non-empty event properties common to every ESP (the source type included)."""
    props: dict[str, Any] = {
        "source_event": event.type,
        "event_id": event.event_id,
        "loyalty_source": event.source,
        "tier": event.tier,
        "previous_tier": event.previous_tier,
        "points": event.points,
        "points_balance": event.balance,
        "reward": event.reward,
        "reward_type": event.reward_type,
        "customer_id": event.customer_id,
        "customer_source_id": event.source_id,
    }
    for key, value in event.properties.items():
        props.setdefault(key, value)
    return {k: v for k, v in props.items() if v is not None and v != ""}


def profile_properties(event: LoyaltyEvent) -> dict[str, Any]:
    """Profile attributes worth keeping on the person (segments use them), when known."""
    attributes = {"loyalty_tier": event.tier, "loyalty_points_balance": event.balance}
    return {k: v for k, v in attributes.items() if v is not None}


class EspClient(HttpClient):
    """Base of the ESP clients; subclasses implement :meth:`send`."""

    provider: ClassVar[str] = "esp"
    default_rate: ClassVar[tuple[int, float]] = (10, 1.0)  # calls per period (seconds)
    default_burst: ClassVar[tuple[int, float] | None] = None  # a shorter window bounding it too
    default_429_pause: ClassVar[float] = 5.0

    def __init__(
        self,
        base_url: str,
        *,
        limiter: RateLimiter | None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        secrets: tuple[str, ...] = (),
        auth: tuple[str, str] | None = None,
        markers: AttemptMarkers | None = None,
    ) -> None:
        super().__init__(base_url, headers=headers, timeout=timeout, secrets=secrets)
        self.destination = self.provider
        self.limiter = limiter
        self.markers = markers
        if auth is not None:
            self.auth = auth

    @classmethod
    def connection(cls, config: Any) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table.

        Raises:
            FatalDestinationError: the table cannot make a working client.
        """
        raise NotImplementedError

    def hide(self, *values: str) -> None:
        """Redact these values (an email in a path) from logs and error messages."""
        self.secrets = self.secrets + tuple(v for v in values if v and len(v) >= 4)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One budgeted request; a 429 pauses the whole account's budget, then raises retriable."""
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            return self.request(method, path, **kwargs)
        except RetriableDestinationError as exc:
            if exc.status == 429:
                wait = exc.retry_after if exc.retry_after is not None else self.default_429_pause
                if self.limiter is not None:
                    self.limiter.pause(wait)
                exc.retry_after = wait
            raise

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Relay one event under the ESP event ``name``."""
        raise NotImplementedError

    def not_accepted(self, response: requests.Response, reason: str, detail: str) -> FatalDestinationError:
        """The fatal error for an answer that did not take the event (``detail`` clipped and redacted)."""
        body = redact(detail[:2000], self.secrets)
        return FatalDestinationError(
            f"{self.provider} {reason}: {body}",
            destination=self.provider,
            status=response.status_code,
            body=body,
        )


def reset_epoch_or_retry_after(response: requests.Response) -> float | None:
    """Seconds to wait: until ``X-RateLimit-Reset`` (epoch seconds), else ``Retry-After`` if sent."""
    reset = parse_reset_epoch(response.headers.get("X-RateLimit-Reset"))
    return reset if reset is not None else parse_retry_after(response.headers.get("Retry-After"))


def clip(value: Any, limit: int) -> Any:
    """Strings longer than ``limit`` characters are cut (other values pass)."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


def client_class(provider: str) -> type[EspClient]:
    """The client class of a registered provider.

    Raises:
        FatalDestinationError: no such provider.
    """
    registration = ESPS.get(provider)
    if registration is None:
        raise FatalDestinationError(f"ESP provider {provider!r} is not supported", destination=provider)
    client: type[EspClient] = registration.client.load()
    return client


def rate_limiter(config: EspBase, redis: Any, provider: str) -> RateLimiter:
    """The account's shared budget: the tenant's ``rate_limit`` per second, else the ESP default."""
    cls = client_class(provider)
    (limit, period), burst = cls.default_rate, cls.default_burst
    if config.rate_limit is not None:
        (limit, period), burst = (config.rate_limit, 1.0), None
    return RateLimiter(redis, f"{provider}:{hash_identifier(config.account_secret())}", limit, period, burst=burst)


def build_esp_client(config: EspBase, redis: Any, *, timeout: float = 10.0, tenant: str | None = None) -> EspClient:
    """The client for a tenant's ``[esp]`` table (``redis`` backs the rate budget and, given the
    ``tenant``, the attempt markers that let a client reconcile an attempt of unknown outcome)."""
    cls = client_class(config.provider)
    limiter = rate_limiter(config, redis, config.provider)
    markers = AttemptMarkers(redis, tenant, config.provider) if tenant else None
    base_url, secret, options = cls.connection(config)
    return cls(base_url, limiter=limiter, timeout=timeout, secrets=(secret,), markers=markers, **options)
