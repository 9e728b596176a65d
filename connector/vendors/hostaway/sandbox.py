"""Hostaway as a sender (see :mod:`connector.sandbox.sender`): HTTP basic auth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import JSON, SignedRequest, basic_auth, derived

WEBHOOK_FIXTURES = ("reservation_created", "reservation_updated", "reservation_cancelled")


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """The webhook's login and password derived from ``secret``."""
    return {"username": derived(secret, "hostaway-user"), "password": derived(secret, "hostaway")}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """Basic auth with the configured login."""
    authorization = basic_auth(str(table["username"]), str(table["password"]))
    return SignedRequest("", {"Content-Type": JSON, "Authorization": authorization}, body)
