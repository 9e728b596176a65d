"""ESP sandboxes: Klaviyo, Mailchimp, Braze, Customer.io, ActiveCampaign and Intercom.

Each is mounted under ``/<vendor>`` of the sandbox server and checks what the real API checks
(auth, required fields, the vendor's name and property rules), answers with the vendor's success
status (Klaviyo 202, Mailchimp 204, Braze 200, Customer.io 200, ActiveCampaign 200 ``success: 1``,
Intercom 202) and the vendor's error bodies, and applies the vendor's own dedup where it has one
(Klaviyo ``unique_id``, Customer.io ULID ``id``, Intercom name + created_at + user); Mailchimp
also lists a member's events (``GET …/members/{hash}/events``). A 429 fault
carries the vendor's signal: ``Retry-After`` (Klaviyo, ActiveCampaign), ``X-RateLimit-Reset``
epoch seconds (Braze, Intercom), nothing (Mailchimp, Customer.io document none).

Klaviyo requires the ``revision`` header (400 without it) and answers 410 Gone with a JSON:API
error to a retired revision (:func:`klaviyo_revision_retired`; the error's ``code`` and wording
are inferred).

``/_sandbox/state`` lists ``events`` (what the vendor kept), ``event_posts`` (every event call,
duplicates included: "exactly one ESP call" is ``event_posts == 1``), ``profiles`` and ``calls``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault, VendorSandbox, add_control_routes, apply_fault, parse_aware

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
KLAVIYO_RETIRED_BEFORE = "2025-01-01"  # 2024 and older revisions are retired (since October 2026)


def klaviyo_revision_retired(revision: str) -> bool:
    """Whether Klaviyo answers 410 to this ``revision`` header (the sandbox's one rule: released
    before :data:`KLAVIYO_RETIRED_BEFORE`; ``2023-02-22.pre`` counts by its date)."""
    return revision[:10] < KLAVIYO_RETIRED_BEFORE


def _retry_after(fault: Fault) -> dict[str, str]:
    seconds = fault.retry_after if fault.retry_after is not None else 1
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


def _reset_epoch(fault: Fault) -> dict[str, str]:
    seconds = float(fault.retry_after if fault.retry_after is not None else 1)
    return {
        "X-RateLimit-Limit": "3000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(math.ceil(time.time() + seconds)),
    }


class EspSandbox(VendorSandbox):
    """Shared state, control routes, auth and fault handling of one ESP sandbox."""

    vendor = "esp"

    def reset(self) -> None:
        """Forget every event and profile."""
        with self.lock:
            self.events: list[dict[str, Any]] = []
            self.profiles: dict[str, dict[str, Any]] = {}
            self.event_posts = 0
            self.calls = 0

    def state(self) -> dict[str, Any]:
        """What the vendor holds."""
        with self.lock:
            return {
                "events": list(self.events),
                "event_posts": self.event_posts,
                "profiles": dict(self.profiles),
                "calls": self.calls,
            }

    # hooks -----------------------------------------------------------------------------
    def authorised(self) -> bool:
        """Whether the request's credentials are the sandbox's."""
        raise NotImplementedError

    def error(self, status: int, detail: str) -> tuple[Response, int]:
        """The vendor's error body."""
        return jsonify({"error": detail, "status": status}), status

    def rate_limit_headers(self, fault: Fault) -> dict[str, str]:
        """The vendor's 429 signal."""
        return {}

    def routes(self, bp: Blueprint) -> None:
        """Add the vendor API routes."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        """The Flask blueprint serving this sandbox."""
        bp = Blueprint(f"{self.vendor}_sandbox", __name__)
        add_control_routes(bp, self.faults, self.state, self.reset)

        @bp.before_request
        def _auth_and_faults() -> Any:
            if request.path.split("/")[2:3] == ["_sandbox"]:
                return None
            with self.lock:
                self.calls += 1
            if not self.authorised():
                return self.error(401, "invalid or missing credentials")
            return apply_fault(
                self.faults,
                lambda status: self.error(status, f"injected {status}")[0].get_json(),
                self.rate_limit_headers,
            )

        self.routes(bp)
        return bp

    def json_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or ``None``."""
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else None


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
        return _retry_after(fault)

    def routes(self, bp: Blueprint) -> None:
        """``POST /api/events`` and ``/api/events/``."""

        def create_event() -> Any:
            revision = request.headers.get("revision", "")
            if not revision:
                return self.error(400, "The revision header is missing.", "/headers/revision")
            if klaviyo_revision_retired(revision):  # the body's code and wording are inferred
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


class MailchimpSandbox(EspSandbox):
    """Mailchimp ``/3.0`` members and member events (problem+json errors, 204 on events)."""

    vendor = "mailchimp"

    def __init__(self, api_key: str, list_id: str = "sandbox-list") -> None:
        self.api_key = api_key
        self.list_id = list_id
        super().__init__()

    def authorised(self) -> bool:
        """HTTP Basic, any user name, the API key as password."""
        auth = request.authorization
        return auth is not None and auth.password == self.api_key

    def error(self, status: int, detail: str) -> tuple[Response, int]:
        """``application/problem+json``."""
        titles = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found", 429: "Too Many Requests"}
        body = {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": titles.get(status, "Error"),
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        response = jsonify(body)
        response.content_type = "application/problem+json"
        return response, status

    def routes(self, bp: Blueprint) -> None:
        """Member upsert and member events."""

        @bp.put("/lists/<path:list_id>/members/<subscriber_hash>")  # an escaped "/" decodes into the id
        def upsert_member(list_id: str, subscriber_hash: str) -> Any:
            if list_id != self.list_id:
                return self.error(404, "The requested resource could not be found.")
            body = self.json_body()
            email = str((body or {}).get("email_address", "")).strip().lower()
            if "@" not in email:
                return self.error(400, "email_address: This value should be a valid email.")
            if hashlib.md5(email.encode(), usedforsecurity=False).hexdigest() != subscriber_hash:
                return self.error(400, "The subscriber hash does not match the email address.")
            status_if_new = (body or {}).get("status_if_new")
            if status_if_new not in {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}:
                return self.error(400, "status_if_new: invalid value.")
            with self.lock:
                member = self.profiles.get(subscriber_hash)
                if member is None:
                    member = {"email_address": email, "status": status_if_new, "merge_fields": {}}
                member["merge_fields"] = {**member["merge_fields"], **((body or {}).get("merge_fields") or {})}
                self.profiles[subscriber_hash] = member
            return jsonify({"id": subscriber_hash, **member})

        @bp.post("/lists/<path:list_id>/members/<subscriber_hash>/events")
        def member_event(list_id: str, subscriber_hash: str) -> Any:
            with self.lock:
                self.event_posts += 1
            if list_id != self.list_id or subscriber_hash not in self.profiles:
                return self.error(404, "The requested resource could not be found.")
            body = self.json_body()
            if body is None:
                return self.error(400, "The request body is not valid JSON.")
            name = body.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{2,30}", name):
                return self.error(400, "name: must be 2-30 characters of letters, numbers, underscores or dashes.")
            properties = body.get("properties", {})
            if not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values()):
                return self.error(400, "properties: values must be strings.")
            if "occurred_at" in body and parse_aware(body["occurred_at"]) is None:
                return self.error(400, "occurred_at: must be an ISO 8601 time.")
            with self.lock:
                self.events.append(
                    {
                        "email": self.profiles[subscriber_hash]["email_address"],
                        "name": name,
                        "properties": properties,
                        "occurred_at": body.get("occurred_at"),
                        "is_syncing": body.get("is_syncing", False),
                    }
                )
            return Response(status=204)

        @bp.get("/lists/<path:list_id>/members/<subscriber_hash>/events")
        def list_member_events(list_id: str, subscriber_hash: str) -> Any:
            """ "List member events": ``count`` (default 10, max 1000) and ``offset``; newest first
            (the order is not documented)."""
            if list_id != self.list_id or subscriber_hash not in self.profiles:
                return self.error(404, "The requested resource could not be found.")
            try:
                count = int(request.args.get("count", "10"))
                offset = int(request.args.get("offset", "0"))
            except ValueError:
                return self.error(400, "count and offset must be integers.")
            if not 1 <= count <= 1000 or offset < 0:
                return self.error(400, "count must be 1-1000 and offset at least 0.")
            with self.lock:
                email = self.profiles[subscriber_hash]["email_address"]
                held = [e for e in reversed(self.events) if e["email"] == email]
            page = [{k: e[k] for k in ("name", "occurred_at", "properties")} for e in held[offset : offset + count]]
            return jsonify({"events": page, "total_items": len(held), "_links": []})


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
        return _reset_epoch(fault)

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


class ActiveCampaignSandbox(EspSandbox):
    """ActiveCampaign ``POST /event`` (form-encoded; ``success`` in the body)."""

    vendor = "activecampaign"

    def __init__(self, account_id: str, event_key: str) -> None:
        self.account_id = account_id
        self.event_key = event_key
        super().__init__()

    def authorised(self) -> bool:
        """``actid`` and ``key`` form fields."""
        return request.form.get("actid") == self.account_id and request.form.get("key") == self.event_key

    def error(self, status: int, detail: str) -> tuple[Response, int]:
        """``{"success": 0, "message": …}`` (a 400 is documented as ``{}``)."""
        if status == 400:
            return jsonify({}), 400
        return jsonify({"success": 0, "message": detail}), status

    def rate_limit_headers(self, fault: Fault) -> dict[str, str]:
        """ActiveCampaign: ``Retry-After`` (seconds)."""
        return _retry_after(fault)

    def routes(self, bp: Blueprint) -> None:
        """``POST /event``."""

        @bp.post("/event")
        def track() -> Any:
            with self.lock:
                self.event_posts += 1
            if request.mimetype != "application/x-www-form-urlencoded":
                return self.error(400, "form-encoded body expected")
            name = request.form.get("event", "")
            if not name or len(name) > 32:
                return self.error(400, "event name must be 1-32 characters")
            try:
                visit = json.loads(request.form.get("visit", ""))
            except ValueError:
                return self.error(400, "visit must be JSON")
            if not isinstance(visit, dict) or "@" not in str(visit.get("email", "")):
                return self.error(400, "visit.email is required")
            with self.lock:
                self.events.append(
                    {"event": name, "eventdata": request.form.get("eventdata", ""), "email": visit["email"]}
                )
            return jsonify({"success": 1, "message": "Event spawned"})


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
        return _reset_epoch(fault)

    def routes(self, bp: Blueprint) -> None:
        """``POST /contacts`` and ``POST /events``."""

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
