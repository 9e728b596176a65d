"""The customerio sandbox: a stand-in for its API under ``/customerio`` (shared parts: :mod:`connector.sandbox.esp`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.esp import ULID, EspSandbox


class CustomerIoSandbox(EspSandbox):
    """Customer.io Track API v1 (identify, events with ULID ``id`` dedup)."""

    vendor = "customerio"

    def __init__(self, site_id: str, api_key: str) -> None:
        self.site_id = site_id
        self.api_key = api_key
        super().__init__()

    def authorised(self) -> bool:
        """HTTP Basic ``site_id:api_key``."""
        auth = request.authorization
        return auth is not None and auth.username == self.site_id and auth.password == self.api_key

    def error(self, status: int, detail: str) -> tuple[Response, int]:
        """``{"meta": {"error": …}}``."""
        return jsonify({"meta": {"error": detail}}), status

    def routes(self, bp: Blueprint) -> None:
        """Identify and track."""

        # The connection check's call (auth is checked before every route).
        @bp.get("/api/v1/accounts/region")
        def region() -> Any:
            return jsonify({"url": request.host_url.rstrip("/"), "region": "us", "environment_id": 1})

        @bp.put("/api/v1/customers/<path:identifier>")
        def identify(identifier: str) -> Any:
            body = self.json_body()
            if body is None:
                return self.error(400, "invalid json")
            with self.lock:
                self.profiles[identifier] = {**self.profiles.get(identifier, {}), **body}
            return jsonify({})

        @bp.post("/api/v1/customers/<path:identifier>/events")
        def track(identifier: str) -> Any:
            with self.lock:
                self.event_posts += 1
            body = self.json_body()
            if body is None:
                return self.error(400, "invalid json")
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                return self.error(400, "event name is required")
            event_id = body.get("id")
            if event_id is not None and (not isinstance(event_id, str) or not ULID.match(event_id)):
                return self.error(400, "id must be a valid ULID")
            data = body.get("data", {})
            if not isinstance(data, dict):
                return self.error(400, "data must be an object")
            with self.lock:
                if event_id is None or all(e.get("id") != event_id for e in self.events):
                    self.events.append({"identifier": identifier, **body, "name": name.strip()})
            return jsonify({})


KEYS: dict[str, str] = {"customerio": "sandbox-customerio-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> CustomerIoSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return CustomerIoSandbox("sandbox-site", keys["customerio"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {
        "provider": "customerio",
        "base_url": f"{sandbox_url}/customerio",
        "site_id": "sandbox-site",
        "api_key": KEYS["customerio"],
    }
