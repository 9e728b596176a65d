"""Mews Connector API client: the reservations, customers, room categories and order items a
General Webhook message refers to.

Docs: https://mews-systems.gitbook.io/connector-api (operations ``reservations/getAll``
version 2023-06-06, ``customers/getAll``, ``resourceCategories/getAll``, ``orderItems/getAll``).
Every call is a ``POST`` with ``ClientToken``, ``AccessToken`` and ``Client`` in the JSON body;
400 bad request, 401 bad tokens, 403 not allowed, 429 with ``Retry-After``. Amounts come as JSON
numbers; they are read as decimal strings (never floats).
"""

from __future__ import annotations

import json
from typing import Any

import requests

from connector.errors import FatalDestinationError
from connector.http import HttpClient

PAGE = 1000  # Mews' maximum Limitation.Count and ids per filter


class MewsClient(HttpClient):
    """Connector API for one enterprise (property)."""

    destination = "mews"

    def __init__(self, api_url: str, client_token: str, access_token: str, client: str, *, timeout: float) -> None:
        super().__init__(
            api_url, headers={"Content-Type": "application/json"}, timeout=timeout, secrets=(client_token, access_token)
        )
        self.credentials = {"ClientToken": client_token, "AccessToken": access_token, "Client": client}

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one operation (``reservations/getAll/2023-06-06``…) and decode it exactly."""
        response = self.request("POST", f"/api/connector/v1/{operation}", json={**self.credentials, **body})
        return _decode(response, self.destination)

    def get_all(self, operation: str, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Follow ``Cursor`` pagination and return every item under ``key``."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):
            limitation: dict[str, Any] = {"Count": PAGE}
            if cursor:
                limitation["Cursor"] = cursor
            answer = self.call(operation, {**body, "Limitation": limitation})
            page = answer.get(key) or []
            items.extend(page)
            cursor = answer.get("Cursor")
            if not cursor or len(page) < PAGE:
                break
        return items


def _decode(response: requests.Response, destination: str) -> dict[str, Any]:
    try:
        data = json.loads(response.text, parse_float=str)
    except ValueError as exc:
        raise FatalDestinationError(f"{destination}: non-JSON answer", destination=destination) from exc
    if not isinstance(data, dict):
        raise FatalDestinationError(f"{destination}: answer is not an object", destination=destination)
    return data


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + PAGE] for i in range(0, len(ids), PAGE)]


def fetch(config: Any, reservation_ids: list[str], timeout: float) -> dict[str, Any]:
    """Reservations by id, then their customers, room categories and order items.

    Returns ``{"reservations": [...], "customers": [...], "resource_categories": [...],
    "order_items": [...]}`` exactly as Mews answered (amounts as decimal strings).
    """
    client = MewsClient(
        config.api_url,
        config.client_token.get_secret_value(),
        config.access_token.get_secret_value(),
        config.client,
        timeout=timeout,
    )
    reservations: list[dict[str, Any]] = []
    for chunk in _chunks(reservation_ids):
        reservations += client.get_all("reservations/getAll/2023-06-06", "Reservations", {"ReservationIds": chunk})
    account_ids = list(dict.fromkeys(str(r.get("AccountId") or r.get("CustomerId") or "") for r in reservations))
    account_ids = [a for a in account_ids if a]
    category_ids = [
        c for c in dict.fromkeys(str(r.get("RequestedResourceCategoryId") or "") for r in reservations) if c
    ]
    service_ids = [s for s in dict.fromkeys(str(r.get("ServiceId") or "") for r in reservations) if s]
    found_ids = [str(r["Id"]) for r in reservations if r.get("Id")]
    customers: list[dict[str, Any]] = []
    for chunk in _chunks(account_ids):
        customers += client.get_all(
            "customers/getAll", "Customers", {"CustomerIds": chunk, "Extent": {"Customers": True}}
        )
    categories: list[dict[str, Any]] = []
    if category_ids and service_ids:
        categories = client.get_all(
            "resourceCategories/getAll",
            "ResourceCategories",
            {"ResourceCategoryIds": category_ids, "ServiceIds": service_ids},
        )
    items: list[dict[str, Any]] = []
    for chunk in _chunks(found_ids):
        items += client.get_all("orderItems/getAll", "OrderItems", {"ServiceOrderIds": chunk})
    return {
        "reservations": reservations,
        "customers": customers,
        "resource_categories": categories,
        "order_items": items,
    }
