"""Braze ``/users/track`` client: profile attributes and the event in one call.

Docs: https://www.braze.com/docs/api/endpoints/user_data/post_user_track/ and
braze-inc/braze-docs ``_docs/_api/api_limits.md`` / ``errors.md``. Auth ``Authorization: Bearer
<REST API key>`` (``users.track`` permission) on the instance's REST endpoint (``base_url``). The
person is identified by ``email``; attributes (tier, points balance, names) and the event go in
the same request because Braze is eventually consistent. Event properties: names without a
leading ``$``, string values at most 255 characters. Braze has **no** event dedup, so the relay
ledger is the only guard. A 200 may carry ``errors[]`` for single objects: when the event was not
processed that is fatal (retrying the same body cannot help). Limit: 3,000 requests per 3 s per
workspace (the default budget); a 429 is waited out until ``X-RateLimit-Reset`` (epoch seconds).
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from connector.activities import LoyaltyEvent
from connector.esps.base import (
    EspClient,
    EspReceipt,
    clip,
    event_properties,
    profile_properties,
    reset_epoch_or_retry_after,
)
from connector.http import isoformat
from connector.vendors.braze.config import BrazeConfig

MAX_STRING = 255


def track_body(event: LoyaltyEvent, name: str) -> dict[str, Any]:
    """The ``/users/track`` body (pure)."""
    attributes: dict[str, Any] = {"email": event.email, **profile_properties(event)}
    if event.first_name:
        attributes["first_name"] = event.first_name
    if event.last_name:
        attributes["last_name"] = event.last_name
    properties = {k.lstrip("$"): clip(v, MAX_STRING) for k, v in event_properties(event).items()}
    return {
        "attributes": [attributes],
        "events": [
            {"email": event.email, "name": name, "time": isoformat(event.occurred_at), "properties": properties}
        ],
    }


class BrazeClient(EspClient):
    """Braze (REST API key)."""

    provider: ClassVar[str] = "braze"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/events/list")

    def describe_check(self, answer: Any) -> str:
        """How many custom event names the workspace has recorded (first page)."""
        events = answer.get("events") if isinstance(answer, dict) else None
        return (
            f"{len(events)} custom event names listed" if isinstance(events, list) else "the REST API key was accepted"
        )

    default_rate: ClassVar[tuple[int, float]] = (3000, 3.0)
    default_429_pause: ClassVar[float] = 3.0

    @classmethod
    def connection(cls, config: BrazeConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        key = config.api_key.get_secret_value()
        return config.base_url, key, {"headers": {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}}

    def retry_after_hint(self, response: requests.Response) -> float | None:
        """Braze: wait until ``X-RateLimit-Reset`` (epoch seconds); ``Retry-After`` if sent."""
        return reset_epoch_or_retry_after(response)

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Track attributes and event; a non-processed event is fatal."""
        response = self.call("POST", "/users/track", json=track_body(event, name))
        answer = self.json(response)
        errors = answer.get("errors") if isinstance(answer, dict) else None
        processed = answer.get("events_processed") if isinstance(answer, dict) else None
        if errors and not processed and response.status_code != 202:
            raise self.not_accepted(response, "did not process the event", str(errors))
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)
