"""Cloudbeds API v1.2 sandbox: ``GET /getReservation``.

* ``Authorization: Bearer <api key>`` required; a wrong or missing key → **401**
  ``{"success": false, "message": "Invalid access token"}``.
* ``GET /getReservation?reservationID=…[&propertyID=…]`` → ``{"success": true, "data": {...}}``;
  a missing ``reservationID`` → **400** ``{"success": false, ...}``; an unknown one → HTTP 200 with
  ``{"success": false, "message": "Reservation not found"}`` (Cloudbeds reports many errors
  with ``success: false``). Amounts are JSON numbers.
* ``POST /_sandbox/reservations`` upserts reservations by ``reservationID``; faults apply to API calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request

from connector.sandbox.base import ReservationSandbox, apply_fault
from connector.sandbox.sender import JSON, SignedRequest, derived


class CloudbedsSandbox(ReservationSandbox):
    """In-memory Cloudbeds property."""

    id_field = "reservationID"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        super().__init__()

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = self.base_blueprint("cloudbeds_sandbox")

        @bp.get("/getReservation")
        def get_reservation() -> Any:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return jsonify({"success": False, "message": "Invalid access token"}), 401
            fault = apply_fault(self.faults, lambda status: {"success": False, "message": f"Injected {status}"})
            if fault is not None:
                return fault
            reservation_id = request.args.get("reservationID")
            if not reservation_id:
                return jsonify({"success": False, "message": "Parameter reservationID is required"}), 400
            with self.lock:
                self.calls.append(reservation_id)
                found = self.reservations.get(reservation_id)
            if found is None:
                return jsonify({"success": False, "message": "Reservation not found"})
            return jsonify({"success": True, "data": found})

        return bp


KEYS: dict[str, str] = {"cloudbeds": "sandbox-cloudbeds-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> CloudbedsSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return CloudbedsSandbox(keys["cloudbeds"])


# The sender side (see connector.sandbox.sender): Cloudbeds webhooks.
WEBHOOK_FIXTURES = (
    "guest_created",
    "reservation_created",
    "status_canceled",
    "status_checked_in",
    "status_checked_out",
)
IGNORED_FIXTURES = ("guest_created",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The URL token derived from ``secret``; the API on this sandbox."""
    return {
        "token": derived(secret, "cloudbeds"),
        "api_url": f"{sandbox_url}/cloudbeds",
        "api_key": KEYS["cloudbeds"],
        "currency": "GBP",
    }


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The subscription's URL with its token."""
    return SignedRequest(f"/{table['token']}", {"Content-Type": JSON}, body)
