"""Voucherify API sandbox (customers and custom events), faithful to the documented contract.

Documented (docs.voucherify.io; voucherify-openapi ``documentation/guides/limits.mdx``,
``Errors.md``) and reproduced:

* ``X-App-Id`` + ``X-App-Token`` on every call; otherwise 401. Error bodies are
  ``{"code", "key", "message", "details", "request_id"}``.
* Per-minute plan limit (default 2,000, the Organization plan; ``POST /_sandbox/plan
  {"requests_per_minute": n}``): every answer carries ``X-Rate-Limit-Limit`` /
  ``X-Rate-Limit-Remaining`` (and ``X-Rate-Limit-Retry`` once nothing remains — when exactly
  Voucherify sends it, and that its minute is a fixed clock minute, are inferred);
  over the limit → 429 with ``Retry-After`` (seconds), ``X-Rate-Limit-Retry`` (epoch seconds) and
  ``X-Rate-Limit-Type: api_calls``. A project over its plan answers 402 (``plan_exceeded``).
* ``POST /v1/customers`` creates or updates (by ``source_id``) and returns the customer.
* ``POST /v1/events`` tracks a custom event for ``customer`` (created when unknown) with
  ``metadata``; no dedup. ``GET /v1/customers/{id or source_id}``.
* ``GET /v1/customers/{id or source_id}/activity`` ("List Customer Activity"): ``limit`` 1-100
  (default 10), ``order`` ``created_at`` | ``-created_at``, ``starting_after_id``, ``start_date``,
  ``end_date``, ``type``; answers ``{"object": "list", "data_ref": "data", "data": [...],
  "has_more", "more_starting_after"}``. Each tracked event and each created customer is an
  activity ``{"id", "type", "data", "created_at", "group_id"}``; a ``customer.custom_event``'s
  ``data`` is ``{"data": {"event": <custom event with metadata>, "event_schema", "customer",
  "referral", "loyalty"}, "event_source"}`` as the reference's schema nests it.

Control route (not Voucherify's): ``DELETE /_sandbox/customers/{id or source_id}`` deletes a
customer with its events and activity, as deleting it in Voucherify's dashboard does; its id is
then unknown (404), and the next ``POST /v1/customers`` for its ``source_id`` creates a new one.

Inferred (isolated here): an event name missing from the project's event schema → 400
``invalid_payload``; the events answer is ``{"object": "event", "type", "customer", ...}``; the
activity list's default order (newest first here) and that an event's activity is listed as soon
as the event call answers.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault, FaultInjector, add_control_routes, apply_fault, parse_aware
from connector.sandbox.sender import JSON, SignedRequest, derived, first_secret, hex_hmac_sha256

EVENT_SCHEMA = {
    "shopify_order",
    "purchase",
    "hotel_booking",
    "hotel_checked_in",
    "hotel_checked_out",
    "hotel_booking_status_changed",
    "wifi_login",
}
ERROR_KEYS = {
    400: "invalid_payload",
    401: "unauthorized",
    402: "payment_required",
    404: "not_found",
    429: "too_many_requests",
    500: "internal_error",
}


def _error_body(status: int, message: str, details: str = "") -> dict[str, Any]:
    return {
        "code": status,
        "key": ERROR_KEYS.get(status, "error"),
        "message": message,
        "details": details or message,
        "request_id": "v-" + uuid.uuid4().hex[:16],
    }


def _error(status: int, message: str, details: str = "") -> tuple[Response, int]:
    return jsonify(_error_body(status, message, details)), status


WINDOW = 60  # seconds: the plan limit's period (per minute, limits.mdx); fixed clock minutes (inferred)
_EPOCH = datetime.min.replace(tzinfo=UTC)
_FOREVER = datetime.max.replace(tzinfo=UTC)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VoucherifySandbox:
    """One in-memory Voucherify project."""

    def __init__(self, app_id: str, app_token: str, *, requests_per_minute: int = 2000) -> None:
        self.app_id = app_id
        self.app_token = app_token
        self.default_requests_per_minute = requests_per_minute
        self.lock = threading.Lock()
        self.faults = FaultInjector()
        self.events_schema = set(EVENT_SCHEMA)
        self.reset()

    def reset(self) -> None:
        """Forget everything; restore the plan."""
        with getattr(self, "lock", threading.Lock()):
            self.customers: dict[str, dict[str, Any]] = {}
            self.events: list[dict[str, Any]] = []
            self.activities: list[dict[str, Any]] = []  # each with the owner's "_customer" id
            self.event_posts = 0
            self.requests_per_minute = self.default_requests_per_minute
            self.plan_exceeded = False
            self.window = 0
            self.used = 0

    def state(self) -> dict[str, Any]:
        """Everything held, for tests and the ``make run`` walkthrough."""
        with self.lock:
            return {
                "customers": [dict(c) for c in self.customers.values()],
                "events": [dict(e) for e in self.events],
                "event_posts": self.event_posts,
                "calls_this_minute": self.used,
            }

    def _retry_headers(self, wait: float) -> dict[str, str]:
        return {
            "Retry-After": str(max(1, math.ceil(wait))),
            "X-Rate-Limit-Retry": str(math.ceil(time.time() + wait)),
            "X-Rate-Limit-Type": "api_calls",
        }

    def _fault_headers(self, fault: Fault) -> dict[str, str]:
        return self._retry_headers(float(fault.retry_after if fault.retry_after is not None else 1))

    def _count_call(self) -> tuple[bool, dict[str, str]]:
        """Count one call in the current clock minute; (allowed, limit headers)."""
        now = time.time()
        with self.lock:
            window = int(now // WINDOW)
            if window != self.window:
                self.window, self.used = window, 0
            self.used += 1
            allowed = self.used <= self.requests_per_minute
            headers = {
                "X-Rate-Limit-Limit": str(self.requests_per_minute),
                "X-Rate-Limit-Remaining": str(max(0, self.requests_per_minute - self.used)),
            }
        if not allowed:
            headers.update(self._retry_headers((window + 1) * WINDOW - now))
        elif headers["X-Rate-Limit-Remaining"] == "0":  # the next call is allowed only from then
            headers["X-Rate-Limit-Retry"] = str((window + 1) * WINDOW)
        return allowed, headers

    def _find_customer(self, key: str) -> dict[str, Any] | None:
        if key in self.customers:
            return self.customers[key]
        return next((c for c in self.customers.values() if c.get("source_id") == key), None)

    def _upsert(self, data: dict[str, Any]) -> dict[str, Any]:
        found = None
        if isinstance(data.get("id"), str):
            found = self.customers.get(data["id"])
        if found is None and isinstance(data.get("source_id"), str):
            found = self._find_customer(data["source_id"])
        fields: dict[str, Any] = {k: data[k] for k in ("source_id", "email", "name", "phone", "metadata") if k in data}
        if found is not None:
            found.update(fields)
            found["updated_at"] = _now()
            return found
        customer: dict[str, Any] = {
            "id": "cust_" + uuid.uuid4().hex[:20],
            "object": "customer",
            **fields,
            "created_at": _now(),
        }
        self.customers[customer["id"]] = customer
        self._record_activity(customer, "customer.created", {"customer": self._simple(customer)})
        return customer

    @staticmethod
    def _simple(customer: dict[str, Any]) -> dict[str, Any]:
        return {"id": customer["id"], "source_id": customer.get("source_id"), "object": "customer"}

    def _record_activity(self, customer: dict[str, Any], kind: str, data: dict[str, Any]) -> None:
        """Append a customer activity (lock held by the caller)."""
        at = datetime.now(UTC)
        self.activities.append(
            {
                "_customer": customer["id"],
                "_at": at,
                "id": "evcus_" + uuid.uuid4().hex[:18],
                "type": kind,
                "data": {"data": data, "event_source": {"channel": "API", "api_key": {"app_id": self.app_id}}},
                "created_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "group_id": "v-" + uuid.uuid4().hex[:18],
            }
        )

    def list_activity(self, key: str, args: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of one page of a customer's activity for the query ``args``."""
        try:
            limit = int(args.get("limit", "10"))
        except ValueError:
            return 400, _error_body(400, "Invalid Query", "limit must be an integer")
        order = args.get("order", "-created_at")
        if not 1 <= limit <= 100 or order not in {"created_at", "-created_at"}:
            return 400, _error_body(400, "Invalid Query", "limit must be 1-100, order created_at or -created_at")
        start = parse_aware(args["start_date"]) if "start_date" in args else _EPOCH
        end = parse_aware(args["end_date"]) if "end_date" in args else _FOREVER
        if start is None or end is None:
            return 400, _error_body(400, "Invalid Query", "start_date and end_date must be ISO 8601 date-times")
        with self.lock:
            customer = self._find_customer(key)
            if customer is None:
                return 404, _error_body(404, "Resource not found", f"customer {key}")
            items = [
                a
                for a in self.activities
                if a["_customer"] == customer["id"]
                and a["type"] == args.get("type", a["type"])
                and start <= a["_at"] <= end
            ]
        if order == "-created_at":
            items.reverse()
        after = args.get("starting_after_id")
        if after:
            ids = [a["id"] for a in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page, more = items[:limit], len(items) > limit
        body: dict[str, Any] = {
            "object": "list",
            "data_ref": "data",
            "data": [{k: v for k, v in a.items() if not k.startswith("_")} for a in page],
            "has_more": more,
        }
        if more:
            body["more_starting_after"] = page[-1]["id"]
        return 200, body

    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint("voucherify_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.delete("/_sandbox/customers/<key>")
        def _delete_customer(key: str) -> Any:
            with self.lock:
                customer = self._find_customer(key)
                if customer is None:
                    return _error(404, "Resource not found", f"customer {key}")
                del self.customers[customer["id"]]
                self.activities = [a for a in self.activities if a["_customer"] != customer["id"]]
                self.events = [e for e in self.events if e.get("customer_id") != customer["id"]]
            return jsonify({"deleted": customer["id"]})

        @bp.post("/_sandbox/plan")
        def _plan() -> Any:
            body = request.get_json(silent=True) or {}
            if "hourly_limit" in body:
                return _error(400, "hourly_limit is not a plan setting: Voucherify limits are per minute")
            with self.lock:
                if "requests_per_minute" in body:
                    self.requests_per_minute = int(body["requests_per_minute"])
                if "exceeded" in body:
                    self.plan_exceeded = bool(body["exceeded"])
            return jsonify({"requests_per_minute": self.requests_per_minute, "exceeded": self.plan_exceeded})

        @bp.before_request
        def _auth_limits_and_faults() -> Any:
            if request.path.split("/")[2:3] == ["_sandbox"]:
                return None
            if request.headers.get("X-App-Id") != self.app_id or request.headers.get("X-App-Token") != self.app_token:
                return _error(401, "Unauthorized", "Cannot authenticate the request: check X-App-Id and X-App-Token")
            if self.plan_exceeded:
                return _error(402, "Payment Required", "Your plan's API call limit is exceeded")
            allowed, headers = self._count_call()
            request.environ["sandbox.limit_headers"] = headers
            if not allowed:
                response, status = _error(429, "API limit reached", "API calls per minute limit reached")
                response.headers.update(headers)
                return response, status
            return apply_fault(
                self.faults, lambda status: _error_body(status, f"injected {status}"), self._fault_headers
            )

        @bp.after_request
        def _limit_headers(response: Response) -> Response:
            for key, value in (request.environ.get("sandbox.limit_headers") or {}).items():
                response.headers.setdefault(key, value)
            return response

        def json_body() -> dict[str, Any] | None:
            body = request.get_json(silent=True)
            return body if isinstance(body, dict) else None

        # The connection check's call (auth is checked before every route).
        @bp.get("/v1/customers")
        def list_customers() -> Any:
            try:
                limit = int(request.args.get("limit", "10"))
            except ValueError:
                return _error(400, "Invalid Query", "limit must be an integer")
            if not 1 <= limit <= 100:
                return _error(400, "Invalid Query", "limit must be between 1 and 100")
            with self.lock:
                customers = list(self.customers.values())
            return jsonify(
                {"object": "list", "data_ref": "customers", "customers": customers[:limit], "total": len(customers)}
            )

        @bp.post("/v1/customers")
        def upsert_customer() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Invalid Payload", "The body must be a JSON object")
            if "email" in body and (not isinstance(body["email"], str) or "@" not in body["email"]):
                return _error(400, "Invalid Customer", "email must be a valid email address")
            with self.lock:
                customer = self._upsert(body)
            return jsonify(customer)

        @bp.get("/v1/customers/<key>")
        def get_customer(key: str) -> Any:
            with self.lock:
                customer = self._find_customer(key)
            return jsonify(customer) if customer else _error(404, "Resource not found", f"customer {key}")

        @bp.get("/v1/customers/<key>/activity")
        def list_customer_activity(key: str) -> Any:
            status, body = self.list_activity(key, request.args.to_dict())
            return jsonify(body), status

        @bp.post("/v1/events")
        def track_event() -> Any:
            body = json_body()
            if body is None:
                return _error(400, "Invalid Payload", "The body must be a JSON object")
            event = body.get("event")
            customer = body.get("customer")
            if not isinstance(event, str) or not event:
                return _error(400, "Invalid Payload", "event is required")
            if event not in self.events_schema:
                return _error(400, "Invalid Payload", f"event {event!r} is not defined in the event schema")
            if not isinstance(customer, dict) or not (customer.get("source_id") or customer.get("id")):
                return _error(400, "Missing Customer", "customer with id or source_id is required")
            metadata = body.get("metadata", {})
            if not isinstance(metadata, dict) or any(isinstance(v, dict | list) for v in metadata.values()):
                return _error(400, "Invalid Payload", "metadata must be an object of plain values")
            if any(isinstance(v, float) for k, v in metadata.items() if k.endswith(("amount", "total"))):
                return _error(400, "Invalid Payload", "amounts in metadata must be integers")
            with self.lock:
                self.event_posts += 1
                stored = self._upsert(customer)
                record = {
                    "id": "evcus_" + uuid.uuid4().hex[:18],
                    "event": event,
                    "customer_id": stored["id"],
                    "source_id": stored.get("source_id"),
                    "metadata": metadata,
                    "created_at": _now(),
                }
                self.events.append(record)
                simple = self._simple(stored)
                custom_event = {
                    "id": record["id"],
                    "object": "event",
                    "type": event,
                    "customer": simple,
                    "referral": {},
                    "loyalty": {},
                    "metadata": metadata,
                    "created_at": record["created_at"],
                }
                self._record_activity(
                    stored,
                    "customer.custom_event",
                    {
                        "event": custom_event,
                        "event_schema": {"id": "ms_" + hashlib.sha256(event.encode()).hexdigest()[:16], "name": event},
                        "customer": simple,
                        "referral": None,
                        "loyalty": None,
                    },
                )
            return jsonify(
                {
                    "object": "event",
                    "type": event,
                    "customer": {"id": stored["id"], "object": "customer"},
                    "referral": None,
                    "loyalty": None,
                }
            )

        return bp


KEYS: dict[str, str] = {
    "voucherify_app_id": "sandbox-voucherify-app",
    "voucherify_app_token": "sandbox-voucherify-token",
}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> VoucherifySandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return VoucherifySandbox(keys["voucherify_app_id"], keys["voucherify_app_token"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[loyalty]`` table for this loyalty platform, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {
        "platform": "voucherify",
        "base_url": f"{sandbox_url}/voucherify",
        "app_id": KEYS["voucherify_app_id"],
        "app_token": KEYS["voucherify_app_token"],
    }


# The sender side (see connector.sandbox.sender): Voucherify webhooks.
WEBHOOK_FIXTURES = (
    "customer_loyalty_tier_upgraded_v2024",
    "customer_rewarded_loyalty_points_v2024",
    "customer_rewarded_v2018",
    "voucher_published_v2024",
)
IGNORED_FIXTURES = ("voucher_published_v2024",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """One webhook secret derived from ``secret``."""
    return {"secrets": [derived(secret, "voucherify")]}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """``x-voucherify-signature``: hex HMAC-SHA256 of the body."""
    signature = hex_hmac_sha256(body, first_secret(table))
    return SignedRequest("", {"Content-Type": JSON, "x-voucherify-signature": signature}, body)
