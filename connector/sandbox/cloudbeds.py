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

import threading
from typing import Any

from flask import Blueprint, jsonify, request

from connector.sandbox.base import FaultInjector, add_control_routes, apply_fault


class CloudbedsSandbox:
    """In-memory Cloudbeds property."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.faults = FaultInjector()
        self.reset()

    def reset(self) -> None:
        """Forget reservations and calls."""
        with self.lock:
            self.reservations: dict[str, dict[str, Any]] = {}
            self.calls: list[str] = []

    def seed(self, *reservations: dict[str, Any]) -> None:
        """Upsert reservations by ``reservationID``."""
        with self.lock:
            for reservation in reservations:
                self.reservations[str(reservation["reservationID"])] = dict(reservation)

    def state(self) -> dict[str, Any]:
        """Reservations and the API call log."""
        with self.lock:
            return {"reservations": list(self.reservations.values()), "calls": list(self.calls)}

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint("cloudbeds_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.post("/_sandbox/reservations")
        def _seed() -> Any:
            body = request.get_json(silent=True)
            items = body if isinstance(body, list) else [body]
            try:
                self.seed(*items)
            except (KeyError, TypeError) as exc:
                return jsonify({"error": str(exc)}), 400
            return jsonify({"seeded": len(items)}), 201

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
