"""Social WiFi as a sender (see :mod:`connector.sandbox.sender`): a static Authorization header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, derived

WEBHOOK_FIXTURES = ("upsert", "delete")
IGNORED_FIXTURES = ("delete",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The Authorization value derived from ``secret``."""
    return {"authorization": f"Bearer {derived(secret, 'socialwifi')}"}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """The configured Authorization header, verbatim."""
    return SignedRequest("", {"Content-Type": JSON, "Authorization": str(table["authorization"])}, body)
