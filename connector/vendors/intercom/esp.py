"""Intercom data events client: ``POST /events`` with the original event time.

Docs: https://developers.intercom.com/docs/references/rest-api/api.intercom.io/data-events/createdataevent.
Auth ``Authorization: Bearer <access token>``, ``Intercom-Version`` header (tenant ``version``,
default 2.14); regional hosts via ``base_url``. Body: ``event_name``, ``created_at`` (Unix seconds
of the **original** event time: Intercom treats name + created_at + user as the same event, so a
replay is dropped), ``email`` and at most 10 flat ``metadata`` keys. The contact must exist: a 404
is fatal and ends in the failed registry with Intercom's message. Success is 202. Limits: 10,000
calls/min per app in 10 s windows (default budget 1,666 per 10 s); a 429 is waited out until
``X-RateLimit-Reset`` (epoch seconds).
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from connector.activities import LoyaltyEvent
from connector.esps.base import EspClient, EspReceipt, event_properties, reset_epoch_or_retry_after
from connector.vendors.intercom.config import IntercomConfig

MAX_METADATA = 10
PRIORITY = ("source_event", "tier", "previous_tier", "points", "points_balance", "reward", "reward_type", "event_id")


def metadata(event: LoyaltyEvent) -> dict[str, Any]:
    """At most 10 flat metadata values, the most useful first."""
    props = {k: v for k, v in event_properties(event).items() if isinstance(v, str | int | float | bool)}
    ordered = [k for k in PRIORITY if k in props] + [k for k in props if k not in PRIORITY]
    return {k: props[k] for k in ordered[:MAX_METADATA]}


def event_body(event: LoyaltyEvent, name: str) -> dict[str, Any]:
    """The data-event body (pure)."""
    return {
        "event_name": name,
        "created_at": int(event.occurred_at.timestamp()),
        "email": event.email,
        "metadata": metadata(event),
    }


class IntercomClient(EspClient):
    """Intercom (access token)."""

    provider: ClassVar[str] = "intercom"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/me")

    def describe_check(self, answer: Any) -> str:
        """The admin the token belongs to and its workspace (``app.name``)."""
        if not isinstance(answer, dict):
            return "the access token was accepted"
        app = answer.get("app")
        app = app if isinstance(app, dict) else {}
        return f"admin {answer.get('name', '?')}, workspace {app.get('name', '?')}"

    default_rate: ClassVar[tuple[int, float]] = (1666, 10.0)
    default_429_pause: ClassVar[float] = 10.0

    @classmethod
    def connection(cls, config: IntercomConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        token = config.access_token.get_secret_value()
        headers = {
            "Authorization": f"Bearer {token}",
            "Intercom-Version": config.version,
            "Content-Type": "application/json",
        }
        return config.base_url, token, {"headers": headers}

    def retry_after_hint(self, response: requests.Response) -> float | None:
        """Intercom: wait until ``X-RateLimit-Reset`` (epoch seconds); ``Retry-After`` if sent."""
        return reset_epoch_or_retry_after(response)

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Submit the data event (202)."""
        response = self.call("POST", "/events", json=event_body(event, name))
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)
