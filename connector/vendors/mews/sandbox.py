"""Mews Connector API sandbox (the four operations the worker calls).

* Every call is ``POST /api/connector/v1/<operation>`` with ``ClientToken``, ``AccessToken``
  and ``Client`` in the JSON body; wrong tokens → **401** ``{"Message": ...}``, a missing
  ``Client`` or a body that is not a JSON object → **400**, ``Limitation.Count`` outside 1..1000
  → **400**, more than 1000 ids in any filter (``ServiceIds`` too) → **400**.
* ``reservations/getAll/2023-06-06`` (``ReservationIds``), ``customers/getAll`` (``CustomerIds``),
  ``resourceCategories/getAll`` (``ResourceCategoryIds`` + ``ServiceIds``),
  ``orderItems/getAll`` (``ServiceOrderIds``); answers carry the list and ``Cursor``.
* Amounts are JSON numbers, as Mews sends them.
* ``POST /_sandbox/<collection>`` (``reservations``, ``customers``, ``resource_categories``,
  ``order_items``) upserts items by ``Id``; ``/_sandbox/state`` shows them and the call log.
  Faults from :mod:`connector.sandbox.base` (429 carries ``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import VendorSandbox, add_control_routes, apply_fault, seed_from_request
from connector.sandbox.sender import JSON, SignedRequest, derived

MAX_IDS = 1000
"""Mews' limit on ``Limitation.Count`` and on the items of every id filter of these operations
(guidelines/pagination.md; operations/reservations.md, customers.md, resourcecategories.md,
orderitems.md: "max 1000 items")."""
COLLECTIONS = ("reservations", "customers", "resource_categories", "order_items")
OPERATIONS = {
    # operation: (collection, filter key, answer key, match field)
    "reservations/getAll/2023-06-06": ("reservations", "ReservationIds", "Reservations", "Id"),
    "customers/getAll": ("customers", "CustomerIds", "Customers", "Id"),
    "resourceCategories/getAll": ("resource_categories", "ResourceCategoryIds", "ResourceCategories", "Id"),
    "orderItems/getAll": ("order_items", "ServiceOrderIds", "OrderItems", "ServiceOrderId"),
}


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"Message": message, "Details": None}), status


class MewsSandbox(VendorSandbox):
    """In-memory Mews enterprise data."""

    def __init__(self, client_token: str, access_token: str) -> None:
        self.client_token = client_token
        self.access_token = access_token
        super().__init__()

    def reset(self) -> None:
        """Forget all data and calls."""
        with self.lock:
            self.data: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in COLLECTIONS}
            self.calls: list[dict[str, Any]] = []

    def seed(self, collection: str, *items: dict[str, Any]) -> None:
        """Upsert items (by ``Id``) into a collection."""
        if collection not in COLLECTIONS:
            raise ValueError(f"unknown collection {collection!r}")
        with self.lock:
            for item in items:
                self.data[collection][str(item["Id"])] = dict(item)

    def state(self) -> dict[str, Any]:
        """Data and call log."""
        with self.lock:
            return {**{c: list(v.values()) for c, v in self.data.items()}, "calls": list(self.calls)}

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint("mews_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.post("/_sandbox/<collection>")
        def _seed(collection: str) -> Any:
            return seed_from_request(lambda items: self.seed(collection, *items))

        @bp.post("/api/connector/v1/<path:operation>")
        def operate(operation: str) -> Any:
            spec = OPERATIONS.get(operation)
            if spec is None:
                return _error(404, f"Operation {operation} not found.")
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return _error(400, "Invalid request body.")
            if body.get("ClientToken") != self.client_token or body.get("AccessToken") != self.access_token:
                return _error(401, "Invalid ClientToken or AccessToken.")
            if not body.get("Client"):
                return _error(400, "Client is required.")
            fault = apply_fault(self.faults, lambda status: {"Message": f"Injected {status}.", "Details": None})
            if fault is not None:
                return fault
            collection, filter_key, answer_key, field = spec
            limitation = body.get("Limitation") or {}
            count = limitation.get("Count")
            if not isinstance(count, int) or not 1 <= count <= MAX_IDS:
                return _error(400, f"Limitation.Count must be between 1 and {MAX_IDS}.")
            wanted = body.get(filter_key)
            if not isinstance(wanted, list) or not wanted:
                return _error(400, f"{filter_key} is required.")
            for key, value in body.items():  # every id filter of these operations: at most 1000 items
                if isinstance(value, list) and len(value) > MAX_IDS:
                    return _error(400, f"{key} has more than {MAX_IDS} items.")
            if operation == "resourceCategories/getAll" and not body.get("ServiceIds"):
                return _error(400, "ServiceIds is required.")
            wanted_set = {str(w) for w in wanted}
            with self.lock:
                self.calls.append({"operation": operation, "ids": list(wanted)})
                found = [dict(i) for i in self.data[collection].values() if str(i.get(field)) in wanted_set]
            start = int(limitation.get("Cursor") or 0)
            page = found[start : start + count]
            cursor = str(start + count) if start + count < len(found) else None
            return jsonify({answer_key: page, "Cursor": cursor})

        return bp


KEYS: dict[str, str] = {
    "mews_client_token": "sandbox-mews-client-token",
    "mews_access_token": "sandbox-mews-access-token",
}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> MewsSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return MewsSandbox(keys["mews_client_token"], keys["mews_access_token"])


# The sender side (see connector.sandbox.sender): Mews General Webhooks on the tenant's own URL.
WEBHOOK_FIXTURES = ("general_webhook",)


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The URL token derived from ``secret``; the Connector API on this sandbox."""
    return {
        "token": derived(secret, "mews"),
        "api_url": f"{sandbox_url}/mews",
        "client_token": KEYS["mews_client_token"],
        "access_token": KEYS["mews_access_token"],
    }


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The tenant's URL with its token (Mews signs nothing)."""
    return SignedRequest(f"/{table['token']}", {"Content-Type": JSON}, body)
