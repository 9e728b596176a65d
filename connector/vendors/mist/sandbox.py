"""Juniper Mist as a sender (see :mod:`connector.sandbox.sender`): hex HMAC-SHA256 (v2) and SHA-1."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, derived, first_secret, hex_hmac_sha256

WEBHOOK_FIXTURES = ("guest_authorizations", "client_join")
IGNORED_FIXTURES = ("client_join",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """One webhook secret derived from ``secret``."""
    return {"secrets": [derived(secret, "mist")]}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """``X-Mist-Signature-v2`` (hex HMAC-SHA256) and the older ``X-Mist-Signature`` (SHA-1)."""
    secret = first_secret(table)
    headers = {
        "Content-Type": JSON,
        "User-Agent": "Mist-webhook",
        "X-Mist-Signature-v2": hex_hmac_sha256(body, secret),
        "X-Mist-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }
    return SignedRequest("", headers, body)
