"""Customer.io Track API client: identify, then one event with a deterministic ULID ``id``.

Docs: https://docs.customer.io/api/track/ (``PUT /api/v1/customers/{identifier}``,
``POST /api/v1/customers/{identifier}/events``). Auth HTTP Basic ``site_id:api_key``; EU accounts
use ``https://track-eu.customer.io``. The identifier is the email, URL-encoded (``+`` and ``@``),
and redacted from logs and errors. The event ``id`` must be a ULID; Customer.io drops a second
event with an id it has seen, so the id is derived from our event (see :func:`event_ulid`): a
replay sends the same id. ``data`` never carries the reserved keys ``from_address``,
``recipient`` or ``reply_to``. Fair-use limit 100 req/s (the default budget); no back-off header is
documented, so a 429 pauses 2 s unless ``Retry-After`` says otherwise.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from connector.activities import LoyaltyEvent
from connector.esps.base import EspClient, EspReceipt, event_properties, profile_properties
from connector.http import path_segment
from connector.vendors.customerio.config import CustomerIoConfig

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RESERVED = {"from_address", "recipient", "reply_to"}


def event_ulid(event: LoyaltyEvent) -> str:
    """A ULID fixed by the event: 48-bit ``occurred_at`` in ms + 80 bits of SHA-256 of
    ``tenant|source|event_id`` (no randomness: the same event always gets the same id)."""
    millis = int(event.occurred_at.timestamp() * 1000) & ((1 << 48) - 1)
    digest = hashlib.sha256(f"{event.tenant}|{event.source}|{event.event_id}".encode()).digest()
    value = (millis << 80) | int.from_bytes(digest[:10], "big")
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def event_body(event: LoyaltyEvent, name: str) -> dict[str, Any]:
    """The Track API event body (pure)."""
    data = {k: v for k, v in event_properties(event).items() if k not in RESERVED}
    return {"name": name, "id": event_ulid(event), "timestamp": int(event.occurred_at.timestamp()), "data": data}


def identify_body(event: LoyaltyEvent) -> dict[str, Any]:
    """The identify body: email, names and loyalty attributes."""
    body: dict[str, Any] = {"email": event.email, **profile_properties(event)}
    if event.first_name:
        body["first_name"] = event.first_name
    if event.last_name:
        body["last_name"] = event.last_name
    return body


class CustomerIoClient(EspClient):
    """Customer.io (site id + API key)."""

    provider: ClassVar[str] = "customerio"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/api/v1/accounts/region")

    def describe_check(self, answer: Any) -> str:
        """The account's region and workspace (``environment_id``) for these credentials."""
        if not isinstance(answer, dict):
            return "the site id and API key were accepted"
        region, workspace = answer.get("region", "?"), answer.get("environment_id", "?")
        return f"region {region}, workspace {workspace}, {answer.get('url', '')}"

    default_rate: ClassVar[tuple[int, float]] = (100, 1.0)
    default_429_pause: ClassVar[float] = 2.0

    @classmethod
    def connection(cls, config: CustomerIoConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        key = config.api_key.get_secret_value()
        return config.base_url, key, {"auth": (config.site_id, key), "identify": config.identify}

    def __init__(self, *args: Any, identify: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identify = identify

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Identify (optional), then track the event."""
        identifier = path_segment(event.email)
        self.hide(identifier, event.email)
        if self.identify:
            self.call("PUT", f"/api/v1/customers/{identifier}", json=identify_body(event))
        body = event_body(event, name)
        response = self.call("POST", f"/api/v1/customers/{identifier}/events", json=body)
        return EspReceipt(provider=self.provider, status=response.status_code, name=name, remote_id=body["id"])
