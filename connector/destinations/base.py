"""The interface every loyalty platform client implements, and the contact cache it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from connector.activities import Activity


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

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Deliver one activity in the platform's vocabulary.

        Raises:
            RetriableDestinationError / FatalDestinationError: see ``destinations.http``.
            UnsupportedEvent: the platform deliberately does not take this activity (e.g.
                LoyaltyLion imports Shopify orders itself); the job ends ``ignored`` with the reason.
        """
        ...
