"""Apaleo sandbox: identity (client credentials) and ``GET /booking/v1/reservations/{id}``.

* ``POST /connect/token`` (form: ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``; or the client as basic auth) → ``{access_token, expires_in, token_type}``;
  a wrong client → **400** ``{"error": "invalid_client"}``, another grant → ``unsupported_grant_type``.
* ``GET /booking/v1/reservations/{id}`` with ``Authorization: Bearer <token>``; a missing or
  unknown token → **401** (empty body, ``WWW-Authenticate: Bearer``); unknown id → **404**
  ``{"messages": [...]}``. Amounts are JSON numbers.
* ``POST /_sandbox/reservations`` upserts reservations by ``id``; faults apply to API calls
  (429 carries ``Retry-After``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import ReservationSandbox, apply_fault
from connector.sandbox.sender import JSON, SignedRequest, derived


class ApaleoSandbox(ReservationSandbox):
    """In-memory Apaleo account."""

    id_field = "id"

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        super().__init__()

    def reset(self) -> None:
        """Forget reservations, tokens and calls."""
        with self.lock:
            self.tokens: set[str] = set()
        super().reset()

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = self.base_blueprint("apaleo_sandbox")

        @bp.post("/connect/token")
        def token() -> Any:
            fault = apply_fault(self.faults, lambda status: {"error": f"injected {status}"})
            if fault is not None:
                return fault
            client_id = request.form.get("client_id")
            client_secret = request.form.get("client_secret")
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    return jsonify({"error": "invalid_client"}), 400
            if request.form.get("grant_type") != "client_credentials":
                return jsonify({"error": "unsupported_grant_type"}), 400
            if client_id != self.client_id or client_secret != self.client_secret:
                return jsonify({"error": "invalid_client"}), 400
            value = secrets.token_urlsafe(24)
            with self.lock:
                self.tokens.add(value)
            return jsonify(
                {"access_token": value, "expires_in": 3600, "token_type": "Bearer", "scope": "reservations.read"}
            )

        @bp.get("/booking/v1/reservations/<path:reservation_id>")  # an escaped "/" decodes into the id
        def reservation(reservation_id: str) -> Any:
            auth = request.headers.get("Authorization", "")
            with self.lock:
                known = auth.startswith("Bearer ") and auth[7:] in self.tokens
            if not known:
                return Response(status=401, headers={"WWW-Authenticate": "Bearer"})
            fault = apply_fault(self.faults, lambda status: {"messages": [f"Injected {status}."]})
            if fault is not None:
                return fault
            with self.lock:
                self.calls.append(reservation_id)
                found = self.reservations.get(reservation_id)
            if found is None:
                return jsonify({"messages": [f"Reservation with id {reservation_id} not found."]}), 404
            return jsonify(found)

        return bp


KEYS: dict[str, str] = {"apaleo_client_id": "sandbox-apaleo-client", "apaleo_client_secret": "sandbox-apaleo-secret"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> ApaleoSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return ApaleoSandbox(keys["apaleo_client_id"], keys["apaleo_client_secret"])


# The sender side (see connector.sandbox.sender): apaleo webhook subscriptions.
WEBHOOK_FIXTURES = (
    "folio_created",
    "healthcheck",
    "reservation_created",
    "reservation_checked_in",
    "reservation_checked_out",
    "reservation_check_in_reverted",
)
IGNORED_FIXTURES = ("healthcheck", "folio_created")
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The URL token derived from ``secret``; the API and identity server on this sandbox."""
    return {
        "token": derived(secret, "apaleo"),
        "client_id": KEYS["apaleo_client_id"],
        "client_secret": KEYS["apaleo_client_secret"],
        "api_url": f"{sandbox_url}/apaleo",
        "identity_url": f"{sandbox_url}/apaleo",
    }


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The subscription's URL with its token."""
    return SignedRequest(f"/{table['token']}", {"Content-Type": JSON}, body)
