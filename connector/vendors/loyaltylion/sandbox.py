"""LoyaltyLion Admin API v2 sandbox, faithful to the documented contract where one exists.

Documented (developers.loyaltylion.com) and reproduced here:

* ``Authorization: Bearer <programme API key>``; anything else → 401
  ``{"error": {"message": …}}``. Error bodies are ``{"error": {"message", "details"?, "code"?}}``;
  400 carries per-field ``details``.
* ``POST /v2/activities`` → 201 with an empty body; ``name``, ``customer_id``, ``customer_email``
  required; ``guest`` defaults to ``true``, ``date`` to now. No dedup on ``merchant_id`` (every
  POST creates an activity — which is what makes the connector's ledger necessary). The
  Clickthrough/Visit rules need ``properties.url``.
* ``GET /v2/activities`` (``created_at_min``, ``limit`` 1-500, ``cursor``) →
  ``{"activities": [...], "cursor": {"prev", "next"}}``; items carry ``merchant_id``, ``state``,
  ``rule {id, name}``, ``customer``, ``created_at``.
* ``PUT /v2/activities/{name}/{merchant_id}`` ``{"state": "approved"|"declined"}`` → 204;
  declining an approved activity voids it.
* ``POST /v2/orders`` (decimal strings in major units, ``payment_status``) → 201;
  ``GET /v2/orders/{merchant_id}``; full ``PUT /v2/orders/{merchant_id}`` (all statuses required;
  the body documents only :data:`ORDER_UPDATE_FIELDS`).

Inferred (not documented; isolated here): an unknown custom rule name and a repeated order
``merchant_id`` answer 422 with a ``code``; the order PUT answers 204; a Visit/Clickthrough
activity without ``properties.url`` and an order update with an undocumented field answer 400
naming the field (strict on purpose: the docs do not say whether such fields are ignored).
Every accepted order update body is kept in ``state()["order_updates"]``.

Test controls beyond :mod:`connector.sandbox.base`: ``POST /_sandbox/lose-responses {"count": n}``
makes the next ``n`` creates succeed and then drop the connection (the answer is lost).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import FaultInjector, add_control_routes, apply_fault, drop_connection, parse_aware
from connector.sandbox.sender import JSON, SignedRequest, b64_hmac_sha256, derived, first_secret

BUILT_IN_RULES = {"$signup", "$purchase", "$clickthrough", "$visit", "$birthday", "$newsletter_signup", "$review"}
CUSTOM_RULES = {"hotel_booking", "hotel_checked_in", "hotel_checked_out", "wifi_login"}
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
PAYMENT_STATUSES = {"not_paid", "partially_paid", "paid"}
REFUND_STATUSES = {"not_refunded", "partially_refunded", "refunded"}
CANCELLATION_STATUSES = {"cancelled", "not_cancelled"}
URL_RULES = {"$clickthrough", "$visit"}  # "you also need to specify the destination URL in the properties"
ORDER_UPDATE_FIELDS = frozenset(
    {"payment_status", "refund_status", "cancellation_status", "total_paid", "total_refunded", "$magento_payload"}
)


def _error(status: int, message: str, details: dict[str, Any] | None = None, code: str | None = None) -> Any:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    if code:
        body["code"] = code
    return jsonify({"error": body}), status


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoyaltyLionSandbox:
    """One in-memory LoyaltyLion programme."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.faults = FaultInjector()
        self.rules = set(BUILT_IN_RULES | CUSTOM_RULES)
        self.reset()

    def reset(self) -> None:
        """Forget everything held."""
        with getattr(self, "lock", threading.Lock()):
            self.activities: list[dict[str, Any]] = []
            self.orders: dict[str, dict[str, Any]] = {}
            self.order_updates: list[dict[str, Any]] = []
            self.activity_posts = 0
            self.order_posts = 0
            self.lose_responses = 0

    def state(self) -> dict[str, Any]:
        """Everything held, for tests and the ``make run`` walkthrough."""
        with self.lock:
            return {
                "activities": [dict(a) for a in self.activities],
                "orders": [dict(o) for o in self.orders.values()],
                "order_updates": [dict(u) for u in self.order_updates],
                "activity_posts": self.activity_posts,
                "order_posts": self.order_posts,
            }

    def _lose_answer(self) -> bool:
        with self.lock:
            if self.lose_responses > 0:
                self.lose_responses -= 1
                return True
        return False

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint("loyaltylion_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.post("/_sandbox/lose-responses")
        def _lose() -> Response:
            body = request.get_json(silent=True) or {}
            with self.lock:
                self.lose_responses = int(body.get("count", 1))
            return jsonify({"lose_responses": self.lose_responses})

        @bp.before_request
        def _auth_and_faults() -> Any:
            if request.path.split("/")[2:3] == ["_sandbox"]:
                return None
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return _error(401, "Invalid or missing API key")
            return apply_fault(self.faults, lambda status: {"error": {"message": f"injected {status}"}})

        # The connection check's call (auth is checked before every route).
        @bp.get("/v2/identity/whoami")
        def whoami() -> Any:
            return jsonify({"identity": {"type": "api_key", "name": "sandbox key", "scopes": ["write_activities"]}})

        def json_body() -> dict[str, Any] | None:
            body = request.get_json(silent=True)
            return body if isinstance(body, dict) else None

        def customer_errors(body: dict[str, Any], details: dict[str, list[str]]) -> None:
            if not isinstance(body.get("customer_id"), str) or not body.get("customer_id"):
                details["customer_id"] = ["is required and must be a string"]
            email = body.get("customer_email")
            if not isinstance(email, str) or "@" not in email:
                details["customer_email"] = ["is required and must be an email address"]
            if "guest" in body and not isinstance(body["guest"], bool):
                details["guest"] = ["must be a boolean"]
            if "date" in body and parse_aware(body["date"]) is None:
                details["date"] = ["must be an ISO 8601 timestamp"]

        @bp.post("/v2/activities")
        def create_activity() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Request body must be a JSON object")
            details: dict[str, list[str]] = {}
            if not isinstance(body.get("name"), str) or not body.get("name"):
                details["name"] = ["is required"]
            customer_errors(body, details)
            if "merchant_id" in body and not isinstance(body["merchant_id"], str):
                details["merchant_id"] = ["must be a string"]
            properties = body.get("properties", {})
            if not isinstance(properties, dict):
                details["properties"] = ["must be an object"]
            elif body.get("name") in URL_RULES and not isinstance(properties.get("url"), str):
                details["properties.url"] = ["is required for the Clickthrough/Visit rule"]
            if details:
                return _error(400, "Invalid request", details)
            if body["name"] not in self.rules:
                return _error(422, f"No active rule with the name {body['name']!r}", code="rule_not_found")
            with self.lock:
                self.activity_posts += 1
                self.activities.append(
                    {
                        "id": len(self.activities) + 90001,
                        "merchant_id": body.get("merchant_id"),
                        "state": "approved",
                        "rule": {"id": abs(hash(body["name"])) % 10000, "name": body["name"]},
                        "customer": {
                            "merchant_id": body["customer_id"],
                            "email": body["customer_email"],
                            "guest": body.get("guest", True),
                        },
                        "date": body.get("date") or _now(),
                        "properties": dict(properties) if isinstance(properties, dict) else {},
                        "site_id": request.args.get("site_id"),
                        "created_at": _now(),
                    }
                )
            if self._lose_answer():
                return drop_connection()
            return Response(status=201)

        @bp.get("/v2/activities")
        def list_activities() -> Any:
            try:
                limit = int(request.args.get("limit", 100))
                start = int(request.args.get("cursor", "0") or 0)
            except ValueError:
                return _error(400, "Invalid limit or cursor")
            if not 1 <= limit <= 500:
                return _error(400, "Invalid request", {"limit": ["must be between 1 and 500"]})
            since = request.args.get("created_at_min")
            since_at = parse_aware(since) if since else None
            if since and since_at is None:
                return _error(400, "Invalid request", {"created_at_min": ["must be an ISO 8601 timestamp"]})
            with self.lock:
                found = [
                    dict(a)
                    for a in self.activities
                    if since_at is None or (parse_aware(a["created_at"]) or since_at) >= since_at
                ]
            page = found[start : start + limit]
            more = start + limit < len(found)
            return jsonify(
                {
                    "activities": page,
                    "cursor": {
                        "prev": str(max(0, start - limit)) if start else None,
                        "next": str(start + limit) if more else None,
                    },
                }
            )

        @bp.put("/v2/activities/<name>/<path:merchant_id>")
        def update_activity(name: str, merchant_id: str) -> Any:
            body = json_body()
            if body is None or body.get("state") not in {"approved", "declined"}:
                return _error(400, "Invalid request", {"state": ["must be approved or declined"]})
            with self.lock:
                matches = [a for a in self.activities if a["rule"]["name"] == name and a["merchant_id"] == merchant_id]
                if not matches:
                    return _error(404, "Activity not found")
                for activity in matches:
                    if body["state"] == "declined":
                        activity["state"] = "void" if activity["state"] == "approved" else "declined"
                    elif activity["state"] == "pending":
                        activity["state"] = "approved"
            return Response(status=204)

        def order_errors(body: dict[str, Any], *, full_update: bool) -> dict[str, list[str]]:
            details: dict[str, list[str]] = {}
            for money in ("total", "total_shipping", "total_paid", "total_refunded"):
                required = money in ("total", "total_shipping") and not full_update
                if money in body and not (isinstance(body[money], str) and DECIMAL.match(body[money])):
                    details[money] = ["must be a decimal string such as 99.95"]
                elif required and money not in body:
                    details[money] = ["is required"]
            if body.get("payment_status") not in PAYMENT_STATUSES:
                details["payment_status"] = [f"must be one of {sorted(PAYMENT_STATUSES)}"]
            if full_update:
                if body.get("refund_status") not in REFUND_STATUSES:
                    details["refund_status"] = [f"must be one of {sorted(REFUND_STATUSES)}"]
                if body.get("cancellation_status") not in CANCELLATION_STATUSES:
                    details["cancellation_status"] = [f"must be one of {sorted(CANCELLATION_STATUSES)}"]
            return details

        @bp.post("/v2/orders")
        def create_order() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Request body must be a JSON object")
            details = order_errors(body, full_update=False)
            customer_errors(body, details)
            if not isinstance(body.get("merchant_id"), str) or not body.get("merchant_id"):
                details["merchant_id"] = ["is required"]
            if details:
                return _error(400, "Invalid request", details)
            with self.lock:
                self.order_posts += 1
                if body["merchant_id"] in self.orders:
                    return _error(422, "An order with this merchant_id already exists", code="duplicate_order")
                self.orders[body["merchant_id"]] = {
                    "id": len(self.orders) + 70001,
                    **body,
                    "refund_status": "not_refunded",
                    "cancellation_status": "not_cancelled",
                    "created_at": _now(),
                }
            if self._lose_answer():
                return drop_connection()
            return Response(status=201)

        @bp.get("/v2/orders/<path:merchant_id>")
        def get_order(merchant_id: str) -> Any:
            with self.lock:
                order = self.orders.get(merchant_id)
            return jsonify({"order": order}) if order else _error(404, "Order not found")

        @bp.put("/v2/orders/<path:merchant_id>")
        def update_order(merchant_id: str) -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Request body must be a JSON object")
            details = order_errors(body, full_update=True)
            for field in sorted(set(body) - ORDER_UPDATE_FIELDS):
                details[field] = ["is not a field of an order update"]
            if details:
                return _error(400, "Invalid request", details)
            with self.lock:
                order = self.orders.get(merchant_id)
                if order is None:
                    return _error(404, "Order not found")
                self.order_updates.append(dict(body))
                order.update(body)
                order["updated_at"] = _now()
            return Response(status=204)

        return bp


KEYS: dict[str, str] = {"loyaltylion": "sandbox-loyaltylion-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> LoyaltyLionSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return LoyaltyLionSandbox(keys["loyaltylion"])


BAD_REQUEST_STATUS = 422
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[loyalty]`` table for this loyalty platform, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {"platform": "loyaltylion", "base_url": f"{sandbox_url}/loyaltylion", "api_key": KEYS["loyaltylion"]}


# The sender side (see connector.sandbox.sender): LoyaltyLion webhooks.
WEBHOOK_FIXTURES = ("customer_tier_upgraded", "customers_update", "customer_claimed_reward")


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """One webhook secret derived from ``secret``."""
    return {"secrets": [derived(secret, "loyaltylion")]}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """``x-loyaltylion-hmac-sha256``: base64 HMAC-SHA256 of the body."""
    signature = b64_hmac_sha256(body, first_secret(table))
    return SignedRequest("", {"Content-Type": JSON, "x-loyaltylion-hmac-sha256": signature}, body)
