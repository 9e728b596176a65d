"""Glu Organisation API client: contacts by email, activities keyed by ``externalReference``.

Docs: https://glu.gitbook.io/docs (Organisation API: authentication, contact, activity, models).
Auth is the ``x-api-key`` header (403 on a bad key). ``POST /activities`` returns the existing
activity when one of the same ``type`` and ``externalReference`` exists in the organisation, so
the business key doubles as an idempotency key. ``spend`` and booking ``total`` are integer minor
units; timestamps carry offsets.

A contact id Glu no longer knows (deleted or merged there since the connector cached it) is
answered to ``POST /activities`` with a constraint violation on ``contact`` (422, API Platform's
``violations``; an IRI it cannot find may come back 400 "Item not found"): :func:`unknown_contact`
recognises both and :meth:`GluClient.deliver` raises :class:`StaleContactError` for them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from connector.activities import Activity, Booking, Person
from connector.errors import FatalDestinationError, StaleContactError
from connector.http import HttpClient, isoformat
from connector.platforms.base import ContactCache, Receipt
from connector.vendors.glu.config import GluConfig


def booking_body(booking: Booking) -> dict[str, Any]:
    """Glu's booking object from ours."""
    body: dict[str, Any] = {
        "checkIn": isoformat(booking.check_in),
        "checkOut": isoformat(booking.check_out),
        "status": booking.status,
    }
    optional = {
        "numberOfGuests": booking.number_of_guests,
        "roomType": booking.room_type,
        "roomName": booking.room_name,
        "externalReference": booking.external_reference,
        "total": booking.total,
        "currencyCode": booking.currency_code,
        "origin": booking.channel,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def activity_body(activity: Activity, contact_id: int | str) -> dict[str, Any]:
    """The ``POST /activities`` body for one activity (pure, tested for shape)."""
    body: dict[str, Any] = {
        "contact": int(contact_id) if str(contact_id).isdigit() else contact_id,
        "type": activity.type,
        "source": activity.source,
        "happenedAt": isoformat(activity.happened_at),
        "externalReference": activity.business_key,
    }
    if activity.spend is not None:
        body["spend"] = activity.spend
        body["currencyCode"] = activity.currency_code
    if activity.booking is not None:
        body["booking"] = booking_body(activity.booking)
    return body


def contact_body(person: Person) -> dict[str, Any]:
    """The ``POST /contacts`` body (create-or-update by email)."""
    body: dict[str, Any] = {"emailAddress": person.email}
    if person.first_name:
        body["firstName"] = person.first_name
    if person.last_name:
        body["lastName"] = person.last_name
    return body


def _contact_id(value: Any) -> str:
    # Glu answers integer ids; relation fields may come back as IRIs ("/contacts/1042").
    if isinstance(value, dict):
        value = value.get("id", value.get("@id"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value.rstrip("/").rsplit("/", 1)[-1]
    raise FatalDestinationError("glu: contact answer carries no id", destination="glu")


ITEM_NOT_FOUND = re.compile(r"item not found[^/]{0,40}/contacts/", re.IGNORECASE)


def unknown_contact(status: int | None, body: str) -> bool:
    """Whether Glu's error answer says the activity's ``contact`` does not exist: a 422 whose
    violations name ``contact``, or a 400 "Item not found" for a ``/contacts/`` IRI."""
    if status == 400:
        return bool(ITEM_NOT_FOUND.search(body))
    if status != 422:
        return False
    try:
        answer = json.loads(body)
    except ValueError:  # truncated: read the violation's path from the text
        return '"propertyPath":"contact"' in body.replace(" ", "")
    violations = answer.get("violations") if isinstance(answer, dict) else None
    return isinstance(violations, list) and any(
        isinstance(v, dict) and v.get("propertyPath") == "contact" for v in violations
    )


class GluClient(HttpClient):
    """Glu Organisation API."""

    destination = "glu"
    platform = "glu"
    # The connection check (see NOTE.md).
    check_request = ("GET", "/contacts")
    # A filter no contact matches: authenticated, answers an empty list, touches nothing.
    check_params = {"emailAddress[]": "connection-check@connector.invalid"}

    def describe_check(self, answer: Any) -> str:
        """Glu's contact search answered: the key is the organisation's."""
        return "the Organisation API accepted the key"

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        super().__init__(
            base_url,
            headers={"x-api-key": api_key, "Content-Type": "application/json"},
            timeout=timeout,
            secrets=(api_key,),
        )

    @classmethod
    def from_config(cls, config: GluConfig, *, tenant: str, redis: Any, timeout: float) -> GluClient:
        """The client for a ``platform = "glu"`` table (Glu dedups itself: no Redis needed)."""
        api_key = config.api_key.get_secret_value() if config.api_key else ""
        if not api_key:
            raise FatalDestinationError(f"tenants.{tenant}.loyalty.api_key is not set", destination="glu")
        return cls(config.base_url, api_key, timeout=timeout)

    def find_contact(self, email: str) -> str | None:
        """Contact id for an email address, or ``None``."""
        response = self.request("GET", "/contacts", params={"emailAddress[]": email})
        found = self.json(response)
        if isinstance(found, dict):  # tolerate a Hydra collection
            found = found.get("hydra:member", found.get("member", []))
        for contact in found or []:
            if str(contact.get("emailAddress", "")).strip().lower() == email:
                return _contact_id(contact)
        return None

    def upsert_contact(self, person: Person) -> str:
        """Create (or update) the contact for ``person``; returns its id."""
        response = self.request("POST", "/contacts", json=contact_body(person))
        return _contact_id(self.json(response))

    def resolve_contact(self, person: Person, contacts: ContactCache) -> str:
        """Cached lookup by normalised email, else lookup, else create."""
        cached = contacts.get(person.email)
        if cached:
            return cached
        contact_id = self.find_contact(person.email) or self.upsert_contact(person)
        contacts.set(person.email, contact_id)
        return contact_id

    def deliver(self, activity: Activity, contacts: ContactCache) -> Receipt:
        """Post one activity; Glu returns the existing one for a repeated (type, reference)."""
        contact_id = self.resolve_contact(activity.person, contacts)
        try:
            response = self.request("POST", "/activities", json=activity_body(activity, contact_id))
        except FatalDestinationError as exc:
            if not unknown_contact(exc.status, exc.body):
                raise
            raise StaleContactError(
                f"glu: contact {contact_id} is not a valid contact any more (deleted or merged at Glu): {exc}",
                destination=self.destination,
                status=exc.status,
                body=exc.body,
                contact_id=contact_id,
            ) from None
        answer = self.json(response)
        return Receipt(platform="glu", remote_id=str(answer.get("id", "")), created=response.status_code == 201)
