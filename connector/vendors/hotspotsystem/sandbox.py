"""HotspotSystem as a sender (see :mod:`connector.sandbox.sender`): base64 HMAC-SHA256 of the body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, b64_hmac_sha256, derived, first_secret

WEBHOOK_FIXTURES = ("customer_create", "customer_create_mac_only")
IGNORED_FIXTURES = ("customer_create_mac_only",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """One API key derived from ``secret``, one venue."""
    return {"secrets": [derived(secret, "hotspot")], "venue": "sandbox-venue"}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """``X-HotspotSystem-Hmac-Sha256``."""
    signature = b64_hmac_sha256(body, first_secret(table))
    return SignedRequest("", {"Content-Type": JSON, "X-HotspotSystem-Hmac-Sha256": signature}, body)
