"""A Standard Webhooks sender (see :mod:`connector.sandbox.sender`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.sender import SignedRequest, first_secret, standard_webhook_headers, standard_webhook_secret

WEBHOOK_FIXTURES = (
    "customer_loyalty_tier_upgraded",
    "stay_booked",
    "stay_booked_no_email",
    "stay_canceled",
    "stay_checked_in",
    "stay_checked_out",
    "wifi_login",
)
IGNORED_FIXTURES = ("stay_booked_no_email",)
"""Webhooks among them that make no activity or event (pings, guests without an email, unwanted events)."""


def source_table(secret: str, sandbox_url: str) -> dict[str, Any]:
    """One ``whsec_`` secret derived from ``secret``."""
    return {"secrets": [standard_webhook_secret(secret)]}


def sign(body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
    """``webhook-id`` / ``webhook-timestamp`` (now) / ``webhook-signature`` headers."""
    return SignedRequest("", standard_webhook_headers(body, f"msg_sandbox_{n}", first_secret(table)), body)
