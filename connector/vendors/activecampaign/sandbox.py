"""The ActiveCampaign sandbox: a stand-in for its API under ``/activecampaign`` (see :mod:`connector.sandbox.esp`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault
from connector.sandbox.esp import EspSandbox, retry_after


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
        return retry_after(fault)

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


KEYS: dict[str, str] = {"activecampaign": "sandbox-activecampaign-key"}
"""The credentials this sandbox accepts unless the server is given others (``DEFAULT_KEYS``)."""


def create(keys: Mapping[str, str]) -> ActiveCampaignSandbox:
    """The sandbox, accepting the credentials in ``keys`` (see :data:`KEYS`)."""
    return ActiveCampaignSandbox("sandbox-actid", keys["activecampaign"])


BAD_REQUEST_STATUS = 400
"""The status this vendor answers a request it rejects as malformed (the contract suite's fatal 4xx)."""


def tenant_table(sandbox_url: str) -> dict[str, Any]:
    """A tenant's ``[esp]`` table for this ESP, pointed at the sandbox served at ``sandbox_url``
    and holding the default credentials (:data:`KEYS`)."""
    return {
        "provider": "activecampaign",
        "base_url": f"{sandbox_url}/activecampaign",
        "account_id": "sandbox-actid",
        "event_key": KEYS["activecampaign"],
    }
