"""What every loyalty platform provides: its ``[loyalty]`` model's base, its client's interface,
and the contact cache a client may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from connector.activities import Activity


class PlatformConfig(BaseModel):
    """Base of every ``[tenants.<t>.loyalty]`` model: ``platform`` names the registration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str
    base_url: str = ""  # each platform's model validates its own (http(s), its default)

    def skip_reason(self, source: str) -> str | None:
        """Why activities from ``source`` are not sent to this platform (``None``: send them)."""
        return None


class ContactCache(Protocol):
    """Per-tenant email → platform contact id memo (backed by Redis in the worker)."""

    def get(self, email: str) -> str | None: ...

    def set(self, email: str, contact_id: str) -> None: ...


@dataclass(frozen=True)
class Receipt:
    """What the platform answered for one delivered activity (kept in the ledger)."""

    platform: str
    remote_id: str
    created: bool  # False when the platform returned an existing record (its own dedup)


class LoyaltyDestination(Protocol):
    """A loyalty platform client: deliver one activity, idempotently where the platform allows."""

    platform: str

    @classmethod
    def from_config(cls, config: Any, *, tenant: str, redis: Any, timeout: float) -> LoyaltyDestination:
        """The client for one tenant's ``[loyalty]`` table (``redis``: shared budgets and markers).

        Raises:
            FatalDestinationError: the table cannot make a working client (e.g. no key).
        """
        ...

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Deliver one activity in the platform's vocabulary.

        Raises:
            RetriableDestinationError / FatalDestinationError: see ``connector.http``.
            UnsupportedEvent: the platform deliberately does not take this activity (e.g.
                LoyaltyLion imports Shopify orders itself); the job ends ``ignored`` with the reason.
        """
        ...
