"""Meraki Scanning API as a sender (see :mod:`connector.sandbox.sender`): the shared secret
travels inside the JSON body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, derived, with_member

WEBHOOK_FIXTURES = ("observations", "observations_anonymous")
IGNORED_FIXTURES = ("observations_anonymous",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """Validator and shared secret derived from ``secret``."""
    return {"validator": derived(secret, "meraki-validator"), "secret": derived(secret, "meraki")}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The body with the shared ``secret`` as its last member (a JSON object body only)."""
    return SignedRequest("", {"Content-Type": JSON}, with_member(body, "secret", str(table["secret"])))
