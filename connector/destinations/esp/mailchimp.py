"""Mailchimp Marketing API client: member upsert, then one member event.

Docs: https://mailchimp.com/developer/marketing/api/list-member-events/ (``postListMemberEvents``).
Auth HTTP Basic (any user, the API key as password); base ``https://<dc>.api.mailchimp.com/3.0``
from the key's ``-<dc>`` suffix unless ``base_url`` is set. The member is addressed by the
subscriber hash (MD5 of the lower-cased email). Events need an audience member, so the member is
first upserted with ``PUT /lists/{list}/members/{hash}`` and ``status_if_new`` (default
``transactional``: never subscribes anyone; an existing member keeps their status), unless
``upsert_member = false``. The event: ``name`` 2-30 characters of letters, digits, ``_`` and
``-`` (checked at config load), ``properties`` with **string values only**, ``occurred_at`` and
``is_syncing = false`` (so automations fire); success is 204. Mailchimp has no event dedup, so the
relay ledger is the only guard. Limits are ~10 concurrent connections per user and no back-off
header is documented: the default budget is 10 calls/s and a 429 pauses 10 s (``Retry-After`` is
honoured if one ever comes).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from connector.activities import LoyaltyEvent
from connector.destinations.esp.base import EspClient, EspReceipt, event_properties
from connector.destinations.http import isoformat, path_segment


def subscriber_hash(email: str) -> str:
    """MD5 of the lower-cased address, as Mailchimp addresses members."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def event_body(event: LoyaltyEvent, name: str) -> dict[str, Any]:
    """The member-event body (pure): every property value a string."""
    return {
        "name": name,
        "properties": {k: _text(v) for k, v in event_properties(event).items()},
        "occurred_at": isoformat(event.occurred_at),
        "is_syncing": False,
    }


def member_body(event: LoyaltyEvent, status_if_new: str) -> dict[str, Any]:
    """The member upsert body (names as the default FNAME/LNAME merge fields)."""
    body: dict[str, Any] = {"email_address": event.email, "status_if_new": status_if_new}
    merge = {k: v for k, v in (("FNAME", event.first_name), ("LNAME", event.last_name)) if v}
    if merge:
        body["merge_fields"] = merge
    return body


class MailchimpClient(EspClient):
    """Mailchimp (API key)."""

    provider: ClassVar[str] = "mailchimp"
    default_rate: ClassVar[tuple[int, float]] = (10, 1.0)
    default_429_pause: ClassVar[float] = 10.0

    def __init__(self, *args: Any, list_id: str, upsert_member: bool, status_if_new: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_id = list_id
        self.upsert_member = upsert_member
        self.status_if_new = status_if_new

    def send(self, event: LoyaltyEvent, name: str) -> EspReceipt:
        """Upsert the member (optional), then post the event (204)."""
        digest = subscriber_hash(event.email)
        self.hide(digest)  # an identifier of the person: kept out of logs and error reasons
        member = f"/lists/{path_segment(self.list_id)}/members/{path_segment(digest)}"
        if self.upsert_member:
            self.call("PUT", member, json=member_body(event, self.status_if_new))
        response = self.call("POST", f"{member}/events", json=event_body(event, name))
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)
