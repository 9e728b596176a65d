"""Klaviyo Events API client: one ``POST /api/events/`` per loyalty event.

Docs: https://developers.klaviyo.com/en/reference/create_event. Auth ``Authorization:
Klaviyo-API-Key <private key>``; every call carries a ``revision`` header (tenant ``revision``,
default :data:`~connector.esps.config.KLAVIYO_REVISION`); a retired revision is
answered 410 Gone, a configuration error: fatal with the reason, not retried. The body is JSON:API
(metric name, profile by email with the loyalty profile properties, event properties, ``time``)
and ``unique_id`` is the platform's event id: Klaviyo keeps only the first event with a given
``unique_id`` per profile and metric, so a replay is harmless even without the ledger. Success is
202 (queued). 429 carries ``Retry-After`` (what Klaviyo's own SDK honours). Create Event is tier
XL (350/s burst, 3500/min steady, two fixed windows per account, shared by every private-key
integration of the account): the default budget is 3000 calls per minute and 300 per second, a
seventh left for the account's other integrations.
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from connector.activities import LoyaltyEvent
from connector.errors import FatalDestinationError
from connector.esps.base import EspClient, EspReceipt, clip, event_properties, profile_properties
from connector.http import MAX_KEPT_BODY, isoformat, redact
from connector.vendors.klaviyo.config import KLAVIYO_REVISION, KlaviyoConfig

MAX_STRING = 100_000


def event_body(event: LoyaltyEvent, name: str) -> dict[str, Any]:
    """The Create Event JSON:API document (pure)."""
    profile: dict[str, Any] = {"email": event.email}
    if event.first_name:
        profile["first_name"] = event.first_name
    if event.last_name:
        profile["last_name"] = event.last_name
    extra = profile_properties(event)
    if extra:
        profile["properties"] = extra
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {k: clip(v, MAX_STRING) for k, v in event_properties(event).items()},
                "time": isoformat(event.occurred_at),
                "unique_id": event.event_id,
                "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
                "profile": {"data": {"type": "profile", "attributes": profile}},
            },
        }
    }


class KlaviyoClient(EspClient):
    """Klaviyo (private key)."""

    provider: ClassVar[str] = "klaviyo"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/api/accounts/")

    def describe_check(self, answer: Any) -> str:
        """The account's organisation name (``contact_information.organization_name``)."""
        try:
            account = answer["data"][0]["attributes"]
            return f"account {account['contact_information']['organization_name']}"
        except (KeyError, IndexError, TypeError):
            return "the private key was accepted"

    default_rate: ClassVar[tuple[int, float]] = (3000, 60.0)
    default_burst: ClassVar[tuple[int, float] | None] = (300, 1.0)
    default_429_pause: ClassVar[float] = 1.0

    @classmethod
    def connection(cls, config: KlaviyoConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        key = config.api_key.get_secret_value()
        headers = {
            "Authorization": f"Klaviyo-API-Key {key}",
            "revision": config.revision,
            "Content-Type": "application/json",
        }
        return config.base_url, key, {"headers": headers}

    def observe(self, response: requests.Response) -> None:
        """410 Gone: the tenant's API revision is retired, a configuration error (fatal, not retried)."""
        if response.status_code == 410:
            revision = self.headers.get("revision", "")
            raise FatalDestinationError(
                f"Klaviyo answered 410 Gone: API revision {revision!s} is retired; set esp.revision to a current "
                f"revision such as {KLAVIYO_REVISION} (or remove it for the default)",
                destination=self.provider,
                status=410,
                body=redact(response.text[:MAX_KEPT_BODY], self.secrets),
            )

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Create the event (202)."""
        response = self.call("POST", "/api/events/", json=event_body(event, name))
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)
