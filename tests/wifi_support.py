"""Tenants, secrets and signing helpers shared by the Wi-Fi tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from conftest import b64_hmac_sha256, harbour_marina_toml, load_fixture, standard_webhook_headers

from connector.sandbox.sender import hex_hmac_sha256

PURPLE_TOKEN = "purple-url-token-harbour-7f3a9c"
MARINA_PURPLE_TOKEN = "purple-url-token-marina-1b2c3d"
MERAKI_SECRET = "meraki-shared-secret"
MERAKI_VALIDATOR = "da6a17c407bb11dfeec7392a5042be0a4cc034b6"
SOCIALWIFI_AUTH = "Bearer sw-static-token-harbour"
MIST_SECRET = "mist-webhook-secret-harbour"
MIST_OLD_SECRET = "mist-webhook-secret-old"
HOTSPOT_KEY = "hotspotsystem-api-key-harbour"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-harbour").decode()


def wifi_tenants_toml(sandbox_url: str, *, window: str = "day") -> str:
    """harbour (Europe/London, every Wi-Fi source) and marina (Asia/Tokyo, its own Purple token)."""
    harbour = f"""
        [tenants.harbour.sources.purple]
        token = "{PURPLE_TOKEN}"
        window = "{window}"
        [tenants.harbour.sources.purple.venues.harbour-tokyo]
        name = "Harbour Tokyo"
        timezone = "Asia/Tokyo"
        [tenants.harbour.sources.meraki]
        validator = "{MERAKI_VALIDATOR}"
        secret = "{MERAKI_SECRET}"
        [tenants.harbour.sources.meraki.venues.N_24329156]
        name = "Harbour Hotel"
        [tenants.harbour.sources.socialwifi]
        authorization = "{SOCIALWIFI_AUTH}"
        [tenants.harbour.sources.mist]
        secrets = ["{MIST_OLD_SECRET}", "{MIST_SECRET}"]
        [tenants.harbour.sources.hotspotsystem]
        secrets = ["{HOTSPOT_KEY}"]
        venue = "harbour-garden"
        [tenants.harbour.sources.standard]
        secrets = ["{STANDARD_SECRET}"]
    """
    marina = f"""
        [tenants.marina.sources.purple]
        token = "{MARINA_PURPLE_TOKEN}"
    """
    return harbour_marina_toml(sandbox_url, harbour, marina)


def purple_login(
    *,
    email: str = "Ada.Lovelace@example.com",
    venue: str = "harbour-lobby",
    timestamp: str = "2026-11-25T09:12:41+00:00",
) -> bytes:
    """The Purple login fixture with the guest, venue and time replaced."""
    body = json.loads(load_fixture("purple", "login"))
    body["user"]["email"] = email
    body["venue"]["id"] = venue
    body["timestamp"] = timestamp
    return json.dumps(body).encode()


def mist_headers(body: bytes, secret: str = MIST_SECRET) -> dict[str, str]:
    """Mist's v2 signature: hex HMAC-SHA256 of the raw body."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Mist-webhook",
        "X-Mist-Signature-v2": hex_hmac_sha256(body, secret),
        "X-Mist-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }


def hotspot_signature(body: bytes, key: str = HOTSPOT_KEY) -> str:
    """HotspotSystem's base64 HMAC-SHA256 of the raw body."""
    return b64_hmac_sha256(body, key)


def standard_headers(
    body: bytes, *, msg_id: str = "msg_2mB8rZ0kQ", secret: str = STANDARD_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers signed for ``body``."""
    return standard_webhook_headers(body, msg_id, (secret,), timestamp)


def ingest_count(redis: Any) -> int:
    """Jobs waiting in the ingest queue."""
    from connector.queue import INGEST_QUEUE, get_queue

    return int(get_queue(redis, INGEST_QUEUE).count)
