"""Purple as a sender (see :mod:`connector.sandbox.sender`): the secret token is in the URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, derived

WEBHOOK_FIXTURES = ("login", "login_mac_only", "validation")
IGNORED_FIXTURES = ("login_mac_only", "validation")
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The URL token derived from ``secret``."""
    return {"token": derived(secret, "purple")}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The tenant's URL with its token; no signature header."""
    return SignedRequest(f"/{table['token']}", {"Content-Type": JSON}, body)
