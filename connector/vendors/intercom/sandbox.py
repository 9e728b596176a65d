"""The intercom sandbox: a stand-in for its API under ``/intercom`` (shared parts: :mod:`connector.sandbox.esp`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault
from connector.sandbox.esp import EspSandbox, reset_epoch


class IntercomSandbox(EspSandbox):
    """Intercom ``POST /events`` (contact must exist; name + created_at + user dedup)."""

    vendor = "intercom"

    def __init__(self, access_token: str) -> None:
        self.access_token = access_token
        super().__init__()

    def authorised(self) -> bool:
        """``Authorization: Bearer <access token>``."""
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    def error(self, status: int, detail: str, code: str | None = None) -> tuple[Response, int]:
        """``error.list``."""
        codes = {400: "parameter_invalid", 401: "unauthorized", 404: "not_found", 429: "rate_limit_exceeded"}
        body = {
            "type": "error.list",
            "request_id": uuid.uuid4().hex,
            "errors": [{"code": code or codes.get(status, "server_error"), "message": detail}],
        }
        return jsonify(body), status

    def rate_limit_headers(self, fault: Fault) -> dict[str, str]:
        """Intercom: ``X-RateLimit-Reset`` (epoch seconds)."""
        return reset_epoch(fault)

    def expect_person(self, email: str) -> None:
        """Create the contact (Intercom takes events for existing contacts only)."""
        address = email.strip().lower()
        with self.lock:
            self.profiles.setdefault(address, {"type": "contact", "id": uuid.uuid4().hex, "email": address})

    def routes(self, bp: Blueprint) -> None:
        """``POST /contacts`` and ``POST /events``."""

        # The connection check's call (auth is checked before every route).
        @bp.get("/me")
        def me() -> Any:
            return jsonify(
                {
                    "type": "admin",
                    "id": "1",
                    "name": "Sandbox Admin",
                    "email": "admin@sandbox.invalid",
                    "app": {"type": "app", "id_code": "sandbox", "name": "Sandbox workspace"},
                }
            )

        @bp.post("/contacts")
        def create_contact() -> Any:
            body = self.json_body() or {}
            email = str(body.get("email", "")).strip().lower()
            if "@" not in email:
                return self.error(400, "email is invalid")
            with self.lock:
                contact = self.profiles.setdefault(email, {"type": "contact", "id": uuid.uuid4().hex, "email": email})
            return jsonify(contact)

        @bp.post("/events")
        def submit_event() -> Any:
            with self.lock:
                self.event_posts += 1
            body = self.json_body()
            if body is None:
                return self.error(400, "invalid json")
            name = body.get("event_name")
            created_at = body.get("created_at")
            if not isinstance(name, str) or not name:
                return self.error(400, "event_name is required", "parameter_not_found")
            if not isinstance(created_at, int) or isinstance(created_at, bool):
                return self.error(400, "created_at must be a Unix timestamp", "parameter_invalid")
            email = str(body.get("email", "")).strip().lower()
            if not email and not body.get("user_id") and not body.get("id"):
                return self.error(400, "one of user_id, id or email is required", "parameter_not_found")
            if email and email not in self.profiles:
                return self.error(404, "User Not Found", "not_found")
            key = (name.lower(), created_at, email)
            with self.lock:
                if all((e["event_name"].lower(), e["created_at"], e["email"]) != key for e in self.events):
                    self.events.append({**body, "email": email})
            return Response(status=202)


KEYS: dict[str, str] = {"intercom": "sandbox-intercom-token"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> IntercomSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return IntercomSandbox(keys["intercom"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {"provider": "intercom", "base_url": f"{sandbox_url}/intercom", "access_token": KEYS["intercom"]}
