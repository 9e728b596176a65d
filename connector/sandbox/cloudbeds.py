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
from typing import Any

from flask import Blueprint, jsonify, request

from connector.sandbox.base import ReservationSandbox, apply_fault


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
