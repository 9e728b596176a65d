"""The Klaviyo sandbox: a stand-in for its API under ``/klaviyo`` (shared parts: :mod:`connector.sandbox.esp`).

Klaviyo requires the ``revision`` header (400 without it) and answers 410 Gone with a JSON:API
error to a retired revision (:func:`revision_retired`; the error's ``code`` and wording are
inferred).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault, parse_aware
from connector.sandbox.esp import EspSandbox, retry_after

RETIRED_BEFORE = "2025-01-01"  # 2024 and older revisions are retired (since October 2026)


def revision_retired(revision: str) -> bool:
    """Whether Klaviyo answers 410 to this ``revision`` header (the sandbox's one rule: released
    before :data:`RETIRED_BEFORE`; ``2023-02-22.pre`` counts by its date)."""
    return revision[:10] < RETIRED_BEFORE


class KlaviyoSandbox(EspSandbox):
    """Klaviyo ``POST /api/events`` (JSON:API, revision header, ``unique_id`` dedup)."""

    vendor = "klaviyo"

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        super().__init__()

    def authorised(self) -> bool:
        """``Authorization: Klaviyo-API-Key <private key>``."""
        return request.headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}"

    def error(self, status: int, detail: str, pointer: str = "/data/") -> tuple[Response, int]:
        """JSON:API ``errors`` array."""
        codes = {400: "invalid", 401: "not_authenticated", 410: "gone", 429: "throttled"}
        body = {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": status,
                    "code": codes.get(status, "error"),
                    "title": {400: "Invalid input.", 410: "Gone."}.get(status, "Error."),
                    "detail": detail,
                    "source": {"pointer": pointer},
                    "meta": {},
                }
            ]
        }
        return jsonify(body), status

    def rate_limit_headers(self, fault: Fault) -> dict[str, str]:
        """Klaviyo's 429 carries ``Retry-After`` (seconds)."""
        return retry_after(fault)

    def routes(self, bp: Blueprint) -> None:
        """``POST /api/events`` and ``/api/events/``."""

        # The connection check's call (auth is checked before every route).
        def accounts() -> Any:
            if not request.headers.get("revision", ""):
                return self.error(400, "The revision header is missing.", "/headers/revision")
            attributes = {
                "contact_information": {
                    "organization_name": "Sandbox Klaviyo account",
                    "default_sender_name": "Sandbox",
                },
                "industry": "Travel",
                "timezone": "UTC",
                "preferred_currency": "USD",
                "public_api_key": "SbxPub",
                "locale": "en-US",
            }
            return jsonify({"data": [{"type": "account", "id": "SbxPub", "attributes": attributes}]})

        bp.add_url_rule("/api/accounts", "accounts", accounts, methods=["GET"])
        bp.add_url_rule("/api/accounts/", "accounts_slash", accounts, methods=["GET"])

        def create_event() -> Any:
            revision = request.headers.get("revision", "")
            if not revision:
                return self.error(400, "The revision header is missing.", "/headers/revision")
            if revision_retired(revision):  # the body's code and wording are inferred
                return self.error(410, f"API revision {revision} has been retired.", "/headers/revision")
            body = self.json_body()
            with self.lock:
                self.event_posts += 1
            data = body.get("data") if body else None
            attributes = data.get("attributes") if isinstance(data, dict) else None
            if not isinstance(data, dict) or data.get("type") != "event" or not isinstance(attributes, dict):
                return self.error(400, "One of `attributes`, `relationships` or `id` must be included.")
            metric = (((attributes.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
            if not isinstance(metric, str) or not metric:
                return self.error(
                    400, "One of `attributes`, `relationships` or `id` must be included.", "/data/attributes/metric"
                )
            profile = ((attributes.get("profile") or {}).get("data") or {}).get("attributes") or {}
            if not any(profile.get(k) for k in ("email", "phone_number", "id", "external_id")):
                return self.error(400, "A profile identifier is required.", "/data/attributes/profile")
            when = parse_aware(attributes.get("time")) if "time" in attributes else datetime.now(UTC)
            now = datetime.now(UTC)
            if when is None or when.year < 2000 or when > now + timedelta(days=366):
                return self.error(400, "Invalid time.", "/data/attributes/time")
            properties = attributes.get("properties")
            if not isinstance(properties, dict) or len(properties) > 300:
                return self.error(
                    400, "properties must be an object of at most 300 keys.", "/data/attributes/properties"
                )
            unique_id = attributes.get("unique_id") or when.replace(microsecond=0).isoformat()
            email = str(profile.get("email", "")).lower()
            with self.lock:
                duplicate = any(
                    e["unique_id"] == unique_id and e["metric"] == metric and e["email"] == email for e in self.events
                )
                if not duplicate:
                    self.events.append(
                        {
                            "metric": metric,
                            "email": email,
                            "profile": profile,
                            "properties": properties,
                            "time": attributes.get("time"),
                            "unique_id": unique_id,
                            "revision": request.headers.get("revision"),
                            "received_at": time.time(),
                        }
                    )
                    self.profiles[email] = {**self.profiles.get(email, {}), **profile}
            return Response(status=202)

        bp.add_url_rule("/api/events", "create_event", create_event, methods=["POST"])
        bp.add_url_rule("/api/events/", "create_event_slash", create_event, methods=["POST"])


KEYS: dict[str, str] = {"klaviyo": "pk_sandbox_klaviyo"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> KlaviyoSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return KlaviyoSandbox(keys["klaviyo"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {"provider": "klaviyo", "base_url": f"{sandbox_url}/klaviyo", "api_key": KEYS["klaviyo"]}
