"""The mailchimp sandbox: a stand-in for its API under ``/mailchimp`` (shared parts: :mod:`connector.sandbox.esp`)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import parse_aware
from connector.sandbox.esp import EspSandbox


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

        # The connection check's call (auth is checked before every route).
        @bp.get("/ping")
        def ping() -> Any:
            return jsonify({"health_status": "Everything's Chimpy!"})

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


KEYS: dict[str, str] = {"mailchimp": "sandbox-mailchimp-key-us1"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> MailchimpSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return MailchimpSandbox(keys["mailchimp"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {
        "provider": "mailchimp",
        "base_url": f"{sandbox_url}/mailchimp",
        "api_key": KEYS["mailchimp"],
        "list_id": "sandbox-list",
    }
