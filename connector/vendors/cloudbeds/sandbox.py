"""Cloudbeds API v1.2 sandbox: ``GET /getReservation``.

* Credentials as in Cloudbeds' PMS v1.2 OpenAPI security schemes: an API key in ``x-api-key``,
  an OAuth access token in ``Authorization: Bearer``. An API key sent as a Bearer token, a wrong
  or a missing credential → **401** ``{"success": false, "message": ...}`` (Cloudbeds' error
  shape; the exact 401 wording is not documented). ``/_sandbox/state`` lists under ``auth`` which
  scheme each API call used (``x-api-key`` / ``bearer``).
* ``GET /getReservation?reservationID=…[&propertyID=…]`` → ``{"success": true, "data": {...}}``;
  a missing ``reservationID`` → **400** ``{"success": false, ...}``; an unknown one → HTTP 200 with
  ``{"success": false, "message": "Reservation not found"}`` (Cloudbeds reports many errors
  with ``success: false``). Amounts are JSON numbers.
* ``POST /_sandbox/reservations`` upserts reservations by ``reservationID``; faults apply to API calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request

from connector.sandbox.base import ReservationSandbox, apply_fault
from connector.sandbox.sender import JSON, SignedRequest, derived


class CloudbedsSandbox(ReservationSandbox):
    """In-memory Cloudbeds property."""

    id_field = "reservationID"

    def __init__(self, api_key: str, access_token: str) -> None:
        self.api_key = api_key
        self.access_token = access_token
        super().__init__()

    def reset(self) -> None:
        """Forget reservations, calls and the credentials seen."""
        super().reset()
        with self.lock:
            self.auth: list[str] = []

    def state(self) -> dict[str, Any]:
        """Reservations, the API call log and the scheme of each authenticated call."""
        with self.lock:
            auth = list(self.auth)
        return {**super().state(), "auth": auth}

    def authenticate(self) -> str | None:
        """The scheme a valid credential came in (``x-api-key`` / ``bearer``), else ``None``."""
        if "x-api-key" in request.headers:
            return "x-api-key" if hmac.compare_digest(request.headers["x-api-key"], self.api_key) else None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token, self.access_token):
            return "bearer"
        return None

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = self.base_blueprint("cloudbeds_sandbox")

        @bp.get("/getReservation")
        def get_reservation() -> Any:
            scheme = self.authenticate()
            if scheme is None:
                return jsonify({"success": False, "message": "Invalid access token"}), 401
            with self.lock:
                self.auth.append(scheme)
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


KEYS: dict[str, str] = {
    "cloudbeds": "sandbox-cloudbeds-key",
    "cloudbeds_access_token": "sandbox-cloudbeds-access-token",
}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> CloudbedsSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return CloudbedsSandbox(keys["cloudbeds"], keys["cloudbeds_access_token"])


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
