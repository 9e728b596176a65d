"""Glu Organisation API sandbox, faithful to the documented contract.

* ``x-api-key`` on every call; a missing or wrong key is **403** (Glu documents 403, not 401).
* ``GET /contacts?emailAddress[]=…`` → JSON array; ``POST /contacts`` creates or updates by
  email (201 on create, 200 on update); ``GET /contacts/{id}``.
* ``POST /activities`` validates like API Platform (422 with ``violations``), and returns the
  **existing** activity (200) when one with the same ``type`` and ``externalReference`` exists,
  otherwise 201. ``GET /activities`` lists them (newest ``happenedAt`` first; ``type`` filter).
* Bad JSON → 400. Faults from :mod:`connector.sandbox.base`.
* Control routes (not Glu's): ``DELETE /_sandbox/contacts/{id}`` deletes a contact, ``POST
  /_sandbox/contacts/{id}/merge`` ``{"into": other}`` merges it into another (its activities
  move there, ``POST /contacts`` with its email then answers the survivor). Either way its id is no valid contact any
  more, as a contact deleted or merged in Glu's dashboard: a connector that cached it must look
  the contact up again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import FaultInjector, add_control_routes, apply_fault, parse_aware

ACTIVITY_TYPES = {
    "Booking",
    "Checked in",
    "Checked out",
    "Purchase",
    "Shopify order",
    "Golf reservation",
    "Table reservation",
    "Gift card registered",
    "Added gift card to Apple Wallet",
    "Viewed partner offer",
    "Clicked partner offer link",
    "Added partner offer to Apple wallet",
    "Added partner offer to Google wallet",
    "Membership started",
    "Changed tier",
    "Membership cancelled",
    "Added membership card to Apple Wallet",
    "Login",
    "Connected to wifi",
    "Contact merged in",
    "Referral invite created",
    "Referral invite completed",
}
BOOKING_STATUSES = {"Inquired", "Confirmed", "Started", "Processed", "Canceled", "Optional", "Requested"}


def _error(
    status: int, title: str, detail: str, violations: list[dict[str, str]] | None = None
) -> tuple[Response, int]:
    body: dict[str, Any] = {"@type": "hydra:Error", "title": title, "detail": detail, "status": status}
    if violations is not None:
        body["@type"] = "ConstraintViolationList"
        body["violations"] = violations
    return jsonify(body), status


class GluSandbox:
    """In-memory Glu organisation."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.faults = FaultInjector()
        self.reset()

    def reset(self) -> None:
        """Forget every contact and activity."""
        with getattr(self, "lock", threading.Lock()):
            self.contacts: dict[int, dict[str, Any]] = {}
            self.activities: list[dict[str, Any]] = []
            self.activity_posts = 0
            self.aliases: dict[str, int] = {}  # email of a merged contact -> the survivor's id
            self.next_contact = 1001

    def state(self) -> dict[str, Any]:
        """Everything held, for tests and the ``make run`` walkthrough."""
        with self.lock:
            return {
                "contacts": list(self.contacts.values()),
                "activities": list(self.activities),
                "activity_posts": self.activity_posts,
                "aliases": dict(self.aliases),
            }

    def delete_contact(self, contact_id: int) -> bool:
        """Forget a contact (its activities stay, pointing at an id that no longer exists)."""
        with self.lock:
            return self.contacts.pop(contact_id, None) is not None

    def merge_contact(self, contact_id: int, into: int) -> bool:
        """Merge a contact into another: its activities move there, its email finds the survivor."""
        with self.lock:
            if contact_id == into or into not in self.contacts or contact_id not in self.contacts:
                return False
            merged = self.contacts.pop(contact_id)
            self.aliases[merged["emailAddress"]] = into
            for activity in self.activities:
                if activity["contact"] == f"/contacts/{contact_id}":
                    activity["contact"] = f"/contacts/{into}"
            return True

    def validate_activity(self, body: dict[str, Any]) -> list[dict[str, str]]:
        """API-Platform-style constraint violations for an activity body."""
        violations: list[dict[str, str]] = []

        def bad(path: str, message: str) -> None:
            violations.append({"propertyPath": path, "message": message, "code": "sandbox-" + path})

        contact = body.get("contact")
        if isinstance(contact, str) and contact.rstrip("/").rsplit("/", 1)[-1].isdigit():
            contact = int(contact.rstrip("/").rsplit("/", 1)[-1])
        if not isinstance(contact, int) or contact not in self.contacts:
            bad("contact", "This value should be a valid contact.")
        if body.get("type") not in ACTIVITY_TYPES:
            bad("type", "The value you selected is not a valid choice.")
        if not isinstance(body.get("source"), str) or not body.get("source"):
            bad("source", "This value should not be blank.")
        if parse_aware(body.get("happenedAt")) is None:
            bad("happenedAt", "This value is not a valid datetime.")
        spend = body.get("spend", 0)
        if not isinstance(spend, int) or isinstance(spend, bool) or spend < 0:
            bad("spend", "This value should be a non-negative integer (minor units).")
        currency = body.get("currencyCode")
        if spend and (not isinstance(currency, str) or len(currency) != 3 or not currency.isupper()):
            bad("currencyCode", "This value is not a valid currency.")
        reference = body.get("externalReference")
        if reference is not None and not isinstance(reference, str):
            bad("externalReference", "This value should be of type string.")
        booking = body.get("booking")
        if body.get("type") == "Booking" and not isinstance(booking, dict):
            bad("booking", "A Booking activity needs a booking.")
        if isinstance(booking, dict):
            for field in ("checkIn", "checkOut"):
                if parse_aware(booking.get(field)) is None:
                    bad(f"booking.{field}", "This value is not a valid datetime.")
            if booking.get("status") not in BOOKING_STATUSES:
                bad("booking.status", "The value you selected is not a valid choice.")
            total = booking.get("total", 0)
            if not isinstance(total, int) or isinstance(total, bool):
                bad("booking.total", "This value should be of type int.")
        return violations

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint("glu_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.delete("/_sandbox/contacts/<int:contact_id>")
        def _delete_contact(contact_id: int) -> Any:
            if not self.delete_contact(contact_id):
                return _error(404, "Not Found", "Contact not found.")
            return jsonify({"deleted": contact_id})

        @bp.post("/_sandbox/contacts/<int:contact_id>/merge")
        def _merge_contact(contact_id: int) -> Any:
            body = request.get_json(silent=True)
            into = body.get("into") if isinstance(body, dict) else None
            if not isinstance(into, int) or not self.merge_contact(contact_id, into):
                return _error(400, "Bad Request", 'Merge needs two existing contacts: POST {"into": <id>}.')
            return jsonify({"merged": contact_id, "into": into})

        @bp.before_request
        def _auth_and_faults() -> Any:
            if request.path.split("/")[2:3] == ["_sandbox"]:
                return None
            if request.headers.get("x-api-key") != self.api_key:
                return _error(403, "Forbidden", "Invalid or missing x-api-key.")
            return apply_fault(
                self.faults, lambda status: {"title": "Sandbox fault", "detail": f"injected {status}", "status": status}
            )

        def json_body() -> dict[str, Any] | None:
            body = request.get_json(silent=True)
            return body if isinstance(body, dict) else None

        @bp.get("/contacts")
        def list_contacts() -> Response:
            wanted = {
                e.strip().lower() for e in request.args.getlist("emailAddress[]") + request.args.getlist("emailAddress")
            }
            with self.lock:
                found = [c for c in self.contacts.values() if not wanted or c["emailAddress"] in wanted]
            return jsonify(found)

        @bp.get("/contacts/<int:contact_id>")
        def get_contact(contact_id: int) -> Any:
            with self.lock:
                contact = self.contacts.get(contact_id)
            return jsonify(contact) if contact else _error(404, "Not Found", "Contact not found.")

        @bp.post("/contacts")
        def upsert_contact() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Bad Request", "Syntax error: the body is not a JSON object.")
            email = str(body.get("emailAddress") or "").strip().lower()
            if "@" not in email:
                return _error(
                    422,
                    "An error occurred",
                    "emailAddress: This value is not a valid email address.",
                    [
                        {
                            "propertyPath": "emailAddress",
                            "message": "This value is not a valid email address.",
                            "code": "email",
                        }
                    ],
                )
            now = datetime.now().astimezone().isoformat()
            with self.lock:
                for contact in self.contacts.values():
                    if contact["emailAddress"] == email:
                        contact.update({k: v for k, v in body.items() if k in {"firstName", "lastName", "phoneNumber"}})
                        contact["updatedAt"] = now
                        return jsonify(contact), 200
                if email in self.aliases and self.aliases[email] in self.contacts:  # merged: the survivor
                    return jsonify(self.contacts[self.aliases[email]]), 200
                contact_id = self.next_contact  # never reused, as a database sequence
                self.next_contact += 1
                contact = {
                    "id": contact_id,
                    "emailAddress": email,
                    "firstName": body.get("firstName"),
                    "lastName": body.get("lastName"),
                    "createdAt": now,
                    "updatedAt": now,
                }
                self.contacts[contact_id] = contact
            return jsonify(contact), 201

        @bp.post("/activities")
        def create_activity() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Bad Request", "Syntax error: the body is not a JSON object.")
            with self.lock:
                self.activity_posts += 1
                violations = self.validate_activity(body)
                if violations:
                    detail = "\n".join(f"{v['propertyPath']}: {v['message']}" for v in violations)
                    return _error(422, "An error occurred", detail, violations)
                reference = body.get("externalReference")
                if reference is not None:
                    for existing in self.activities:
                        if existing["type"] == body["type"] and existing["externalReference"] == reference:
                            return jsonify(existing), 200
                activity = {
                    "id": len(self.activities) + 5001,
                    **body,
                    "contact": f"/contacts/{body['contact']}" if isinstance(body["contact"], int) else body["contact"],
                    "createdAt": datetime.now().astimezone().isoformat(),
                }
                activity.setdefault("spend", 0)
                activity.setdefault("externalReference", None)
                self.activities.append(activity)
            return jsonify(activity), 201

        @bp.get("/activities")
        def list_activities() -> Response:
            wanted = request.args.get("type")
            with self.lock:
                found = [a for a in self.activities if wanted is None or a["type"] == wanted]
            return jsonify(sorted(found, key=lambda a: datetime.fromisoformat(a["happenedAt"]), reverse=True))

        return bp


KEYS: dict[str, str] = {"glu": "sandbox-glu-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> GluSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return GluSandbox(keys["glu"])


BAD_REQUEST_STATUS = 422
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[loyalty]`` table for this loyalty platform, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {"platform": "glu", "base_url": f"{sandbox_url}/glu", "api_key": KEYS["glu"]}
