"""Mailchimp Marketing API client: member upsert, then one member event.

Docs: https://mailchimp.com/developer/marketing/api/list-member-events/ (``postListMemberEvents``).
Auth HTTP Basic (any user, the API key as password); base ``https://<dc>.api.mailchimp.com/3.0``
from the key's ``-<dc>`` suffix unless ``base_url`` is set. The member is addressed by the
subscriber hash (MD5 of the lower-cased email). Events need an audience member, so the member is
first upserted with ``PUT /lists/{list}/members/{hash}`` and ``status_if_new`` (default
``transactional``: never subscribes anyone; an existing member keeps their status), unless
``upsert_member = false``. The event: ``name`` 2-30 characters of letters, digits, ``_`` and
``-`` (checked at config load), ``properties`` with **string values only**, ``occurred_at`` and
``is_syncing = false`` (so automations fire); success is 204.

Mailchimp has no event dedup, so the relay ledger is the guard, and an attempt marker covers its
blind spot: a retry after an attempt of unknown outcome (5xx, timeout, connection lost after
sending) first lists the member's events (``GET …/members/{hash}/events``, "List member events":
``count`` up to 1000, ``offset``; answer ``{"events": [{"name", "occurred_at", "properties"}],
"total_items"}``) and posts again only when no event of that name carries our ``event_id`` and
``loyalty_source`` properties.

Limits are ~10 concurrent connections per user and no back-off header is documented: the default
budget is 10 calls/s and a 429 pauses 10 s (``Retry-After`` is honoured if one ever comes).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, ClassVar

from connector.activities import LoyaltyEvent
from connector.errors import FatalDestinationError, RetriableDestinationError
from connector.esps.base import EspClient, EspReceipt, event_properties
from connector.http import isoformat, path_segment
from connector.vendors.mailchimp.config import MailchimpConfig

log = logging.getLogger(__name__)

RECONCILE_PAGE = 1000  # the documented maximum ``count`` of List member events
RECONCILE_MAX_PAGES = 10


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
    # The connection check (see NOTE.md).
    check_request = ("GET", "/ping")

    def describe_check(self, answer: Any) -> str:
        """Mailchimp's ``health_status``."""
        status = answer.get("health_status") if isinstance(answer, dict) else None
        return str(status) if status else "the API key was accepted"

    default_rate: ClassVar[tuple[int, float]] = (10, 1.0)
    default_429_pause: ClassVar[float] = 10.0

    @classmethod
    def connection(cls, config: MailchimpConfig) -> tuple[str, str, dict[str, Any]]:
        """``(base URL, account credential, keyword arguments)`` of the client for an ``[esp]`` table."""
        key = config.api_key.get_secret_value()
        try:
            base = config.api_base
        except ValueError as exc:
            raise FatalDestinationError(str(exc), destination=cls.provider) from None
        options = {
            "auth": ("connector", key),
            "list_id": config.list_id,
            "upsert_member": config.upsert_member,
            "status_if_new": config.status_if_new,
        }
        return base, key, options

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
        body = event_body(event, name)
        if self.markers is None:  # not built for a tenant: no reconciliation possible
            response = self.call("POST", f"{member}/events", json=body)
            return EspReceipt(provider=self.provider, status=response.status_code, name=name)
        earlier = self.markers.begin(event)
        if earlier is not None:
            if self.holds_event(member, body):
                log.info("mailchimp: %s %s found after an attempt of unknown outcome", name, event.event_id)
                return EspReceipt(provider=self.provider, status=200, name=name)
            log.warning(
                "mailchimp: re-sending %s %s: not found after an attempt of unknown outcome", name, event.event_id
            )
        with self.markers.attempt(event, first=earlier is None):
            response = self.call("POST", f"{member}/events", json=body)
        return EspReceipt(provider=self.provider, status=response.status_code, name=name)

    def holds_event(self, member: str, body: dict[str, Any]) -> bool:
        """Whether the member's events hold one named like ``body`` with its ``event_id`` and
        ``loyalty_source`` properties (the order of the list is undocumented: every page is read)."""
        wanted = {k: body["properties"].get(k) for k in ("event_id", "loyalty_source")}
        offset = 0
        for _ in range(RECONCILE_MAX_PAGES):
            page = self.json(self.call("GET", f"{member}/events", params={"count": RECONCILE_PAGE, "offset": offset}))
            events = page.get("events") if isinstance(page, dict) else None
            if not isinstance(events, list):  # cannot tell: never guess "absent" and post twice
                raise FatalDestinationError(
                    "mailchimp: the member events answer has no events list; check the member's events "
                    f"for event_id {wanted['event_id']} before requeueing",
                    destination=self.provider,
                )
            for item in events:
                properties = item.get("properties") if isinstance(item, dict) else None
                if (
                    isinstance(properties, dict)
                    and item.get("name") == body["name"]
                    and all(properties.get(k) == v for k, v in wanted.items())
                ):
                    return True
            offset += len(events)
            total = page.get("total_items")
            if not events or not isinstance(total, int) or offset >= total:
                return False
        raise RetriableDestinationError(
            "mailchimp: too many member events to reconcile an attempt of unknown outcome; will retry",
            destination=self.provider,
        )
