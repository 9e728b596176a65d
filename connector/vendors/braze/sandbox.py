"""The braze sandbox: a stand-in for its API under ``/braze`` (shared parts: :mod:`connector.sandbox.esp`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault, parse_aware
from connector.sandbox.esp import EspSandbox, reset_epoch


class BrazeSandbox(EspSandbox):
    """Braze ``POST /users/track`` (per-object ``errors[]``, ``X-RateLimit-Reset`` on 429)."""

    vendor = "braze"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        super().__init__()

    def authorised(self) -> bool:
        """``Authorization: Bearer <REST API key>``."""
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, detail: str) -> tuple[Response, int]:
        """``{"message": …, "errors": […]}``."""
        return jsonify({"message": detail, "errors": [detail]}), status

    def rate_limit_headers(self, fault: Fault) -> dict[str, str]:
        """Braze: ``X-RateLimit-Reset`` (epoch seconds)."""
        return reset_epoch(fault)

    @staticmethod
    def _object_error(obj: dict[str, Any], index: int) -> str | None:
        if not any(obj.get(k) for k in ("external_id", "user_alias", "braze_id", "email", "phone")):
            return f"events[{index}]: missing identifier"
        if not isinstance(obj.get("name"), str) or not obj.get("name"):
            return f"events[{index}]: missing name"
        if parse_aware(obj.get("time")) is None:
            return f"events[{index}]: time must be ISO 8601"
        properties = obj.get("properties", {})
        if not isinstance(properties, dict):
            return f"events[{index}]: properties must be an object"
        for key, value in properties.items():
            if key.startswith("$"):
                return f"events[{index}]: property names cannot start with $"
            if isinstance(value, str) and len(value) > 255:
                return f"events[{index}]: string values are limited to 255 characters"
        return None

    def routes(self, bp: Blueprint) -> None:
        """``POST /users/track``."""

        # The connection check's call (auth is checked before every route).
        @bp.get("/events/list")
        def list_events() -> Any:
            with self.lock:
                names = sorted({str(e.get("name", "")) for e in self.events if e.get("name")})
            return jsonify({"message": "success", "events": names[:250]})

        @bp.post("/users/track")
        def track() -> Any:
            body = self.json_body()
            if body is None:
                return self.error(400, "Invalid JSON")
            events = body.get("events", [])
            attributes = body.get("attributes", [])
            if not isinstance(events, list) or not isinstance(attributes, list):
                return self.error(400, "events and attributes must be arrays")
            if len(events) + len(attributes) + len(body.get("purchases", [])) > 75:
                return self.error(400, "Max Input Length Exceeded")
            errors = []
            processed = 0
            with self.lock:
                self.event_posts += 1 if events else 0
                for attr in attributes:
                    if isinstance(attr, dict) and attr.get("email"):
                        email = str(attr["email"]).lower()
                        self.profiles[email] = {**self.profiles.get(email, {}), **attr}
                for index, event in enumerate(events):
                    problem = self._object_error(event, index) if isinstance(event, dict) else f"events[{index}]"
                    if problem:
                        errors.append({"type": problem, "input_array": "events", "index": index})
                        continue
                    processed += 1
                    self.events.append({**event, "email": str(event.get("email", "")).lower()})
            answer: dict[str, Any] = {
                "message": "success",
                "attributes_processed": len(attributes),
                "events_processed": processed,
            }
            if errors:
                answer["errors"] = errors
            return jsonify(answer), 200


KEYS: dict[str, str] = {"braze": "sandbox-braze-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> BrazeSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return BrazeSandbox(keys["braze"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {"provider": "braze", "base_url": f"{sandbox_url}/braze", "api_key": KEYS["braze"]}
