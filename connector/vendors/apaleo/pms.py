"""Apaleo booking API client: the reservation a webhook names.

Docs: https://apaleo.dev (Authentication: OAuth 2.0 client credentials at
``https://identity.apaleo.com/connect/token``; Booking API ``GET /booking/v1/reservations/{id}``).
401 on a missing/expired token, 404 for an unknown (deleted) reservation, 429 with
``Retry-After``. Amounts come as JSON numbers; they are read as decimal strings.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from connector.errors import FatalDestinationError
from connector.http import HttpClient, path_segment

_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}
_LOCK = threading.Lock()


class ApaleoIdentity(HttpClient):
    """The identity server (client-credentials tokens)."""

    destination = "apaleo"

    def token(self, client_id: str, client_secret: str) -> str:
        """A bearer token, cached in this process until a minute before it expires."""
        key = (self.base_url, client_id)
        with _LOCK:
            cached = _TOKENS.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        response = self.request(
            "POST",
            "/connect/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        )
        answer = self.json(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise FatalDestinationError("apaleo: token answer carries no access_token", destination="apaleo")
        expires = float(answer.get("expires_in") or 3600)
        with _LOCK:
            _TOKENS[key] = (token, time.monotonic() + max(expires - 60, 0))
        return token


def forget_tokens() -> None:
    """Drop cached tokens (tests, credential rotation)."""
    with _LOCK:
        _TOKENS.clear()


class ApaleoClient(HttpClient):
    """Booking API with a bearer token."""

    destination = "apaleo"

    def reservation(self, reservation_id: str) -> dict[str, Any] | None:
        """One reservation, or ``None`` when Apaleo no longer knows it (404)."""
        try:
            response = self.request("GET", f"/booking/v1/reservations/{path_segment(reservation_id)}")
        except FatalDestinationError as exc:
            if exc.status == 404:
                return None
            raise
        data = json.loads(response.text, parse_float=str)
        if not isinstance(data, dict):
            raise FatalDestinationError("apaleo: reservation answer is not an object", destination="apaleo")
        return data


def fetch(config: Any, reservation_ids: list[str], timeout: float) -> dict[str, Any]:
    """``{"reservations": [...]}`` for the ids (unknown ones left out)."""
    secret = config.client_secret.get_secret_value()
    identity = ApaleoIdentity(config.identity_url, timeout=timeout, secrets=(secret,))
    for attempt in (1, 2):
        token = identity.token(config.client_id, secret)
        client = ApaleoClient(
            config.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, secrets=(token, secret)
        )
        try:
            found = [client.reservation(rid) for rid in reservation_ids]
        except FatalDestinationError as exc:
            if exc.status == 401 and attempt == 1:
                forget_tokens()  # a cached token was revoked or expired early: get a new one once
                continue
            raise
        return {"reservations": [r for r in found if r is not None]}
    raise AssertionError("unreachable")  # pragma: no cover
