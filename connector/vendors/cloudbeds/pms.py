"""Cloudbeds API client: the reservation (with its guest) a webhook names.

Docs: https://developers.cloudbeds.com (API v1.2 ``GET /getReservation?reservationID=…``;
authentication: an API key in ``x-api-key``, an OAuth access token as ``Authorization: Bearer``,
per the security schemes of cloudbeds/openapi-specs ``src/pms-v1.2-openapi.yaml``). Cloudbeds
answers errors either with an HTTP error status or with HTTP 200 and
``{"success": false, "message": …}``; an unknown reservation is treated as gone. Amounts come
as JSON numbers; they are read as decimal strings.
"""

from __future__ import annotations

import json
from typing import Any

from connector.errors import FatalDestinationError
from connector.http import HttpClient


class CloudbedsClient(HttpClient):
    """Cloudbeds API v1.2 for one property."""

    destination = "cloudbeds"

    def reservation(self, property_id: str | None, reservation_id: str) -> dict[str, Any] | None:
        """One reservation (``data`` of ``getReservation``), or ``None`` when it no longer exists."""
        params = {"reservationID": reservation_id}
        if property_id:
            params["propertyID"] = property_id
        try:
            response = self.request("GET", "/getReservation", params=params)
        except FatalDestinationError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            answer = json.loads(response.text, parse_float=str)
        except ValueError as exc:
            raise FatalDestinationError("cloudbeds: non-JSON answer", destination=self.destination) from exc
        if not isinstance(answer, dict):
            raise FatalDestinationError("cloudbeds: answer is not an object", destination=self.destination)
        if answer.get("success") is not True:
            message = str(answer.get("message") or "")
            if "not found" in message.lower():
                return None
            raise FatalDestinationError(f"cloudbeds: {message[:200]}", destination=self.destination)
        data = answer.get("data")
        return data if isinstance(data, dict) else None


def fetch(config: Any, reservation_ids: list[str], timeout: float) -> dict[str, Any]:
    """``{"reservations": [...]}`` for the ids (unknown ones left out)."""
    name, value = config.auth_header()
    secret = value.removeprefix("Bearer ")
    client = CloudbedsClient(config.api_url, headers={name: value}, timeout=timeout, secrets=(secret,))
    found = [client.reservation(config.property_id, rid) for rid in reservation_ids]
    return {"reservations": [r for r in found if r is not None]}
