"""What the ESP sandboxes share (each ESP's own is ``connector/vendors/<esp>/sandbox.py``).

Each is mounted under ``/<vendor>`` of the sandbox server and checks what the real API checks
(auth, required fields, the vendor's name and property rules), answers with the vendor's success
status (Klaviyo 202, Mailchimp 204, Braze 200, Customer.io 200, ActiveCampaign 200 ``success: 1``,
Intercom 202) and the vendor's error bodies, and applies the vendor's own dedup where it has one
(Klaviyo ``unique_id``, Customer.io ULID ``id``, Intercom name + created_at + user); Mailchimp
also lists a member's events (``GET …/members/{hash}/events``). A 429 fault
carries the vendor's signal: ``Retry-After`` (Klaviyo, ActiveCampaign), ``X-RateLimit-Reset``
epoch seconds (Braze, Intercom), nothing (Mailchimp, Customer.io document none).

``/_sandbox/state`` lists ``events`` (what the vendor kept), ``event_posts`` (every event call,
duplicates included: "exactly one ESP call" is ``event_posts == 1``), ``profiles`` and ``calls``.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.base import Fault, VendorSandbox, add_control_routes, apply_fault

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def retry_after(fault: Fault) -> dict[str, str]:
    seconds = fault.retry_after if fault.retry_after is not None else 1
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


def reset_epoch(fault: Fault) -> dict[str, str]:
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

    def expect_person(self, email: str) -> None:
        """Make ``email`` someone the vendor already knows, where it takes events for known people
        only (Intercom's contacts); elsewhere nothing is needed."""

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
