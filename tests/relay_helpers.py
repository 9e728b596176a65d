"""Signing helpers and tenants for the loyalty-event relay tests (Voucherify, LoyaltyLion, standard → ESPs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
from typing import Any

from conftest import b64_hmac_sha256, glu_tenant_toml, standard_webhook_headers

from connector.esps.registry import ESPS

VOUCHERIFY_SECRET = "vf_webhook_secret_harbour"
VOUCHERIFY_OLD_SECRET = "vf_webhook_secret_old"
LOYALTYLION_SECRET = "ll_site_secret_harbour"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-secret-for-harbour-32by").decode()


def voucherify_headers(body: bytes, secret: str = VOUCHERIFY_SECRET, *, sign: bytes | None = None) -> dict[str, str]:
    """What Voucherify sends: hex HMAC-SHA256 (of ``sign`` when given, else of the body)."""
    digest = hmac.new(secret.encode(), sign if sign is not None else body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "x-voucherify-signature": digest, "User-Agent": "Voucherify"}


def loyaltylion_headers(body: bytes, secret: str = LOYALTYLION_SECRET, topic: str | None = None) -> dict[str, str]:
    """What LoyaltyLion sends: base64 HMAC-SHA256 of the raw body."""
    signature = b64_hmac_sha256(body, secret)
    if topic is None:
        topic = json.loads(body).get("topic", "")
    return {
        "Content-Type": "application/json",
        "x-loyaltylion-hmac-sha256": signature,
        "x-loyaltylion-topic": topic,
        "x-loyaltylion-site-domain": "harbour-hotels.myshopify.com",
        "User-Agent": "LoyaltyLion-Webhooks/1.0",
    }


def standard_headers(body: bytes, msg_id: str = "msg_2Kd9a1", secret: str = STANDARD_SECRET) -> dict[str, str]:
    """Standard Webhooks headers signed now."""
    return standard_webhook_headers(body, msg_id, (secret,))


def esp_table(provider: str, sandbox_url: str, **extra: Any) -> str:
    """An ``[esp]`` table body pointing at the sandbox (the provider sandbox's ``tenant_table``)."""
    table = {**ESPS[provider].sandbox.load().tenant_table(sandbox_url), **extra}
    lines = []
    for key, value in table.items():
        if isinstance(value, dict):
            inline = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{{inline}}}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines)


def relay_toml(sandbox_url: str, provider: str = "klaviyo", tenant: str = "harbour", **esp_extra: Any) -> str:
    """One tenant with the three loyalty-event sources and one ESP."""
    header = glu_tenant_toml(tenant, "Europe/London", sandbox_url) + textwrap.dedent(f"""
        [tenants.{tenant}.sources.voucherify]
        secrets = ["{VOUCHERIFY_OLD_SECRET}", "{VOUCHERIFY_SECRET}"]
        [tenants.{tenant}.sources.loyaltylion]
        secrets = ["{LOYALTYLION_SECRET}"]
        [tenants.{tenant}.sources.standard]
        secrets = ["{STANDARD_SECRET}"]
    """)
    return header + f"[tenants.{tenant}.esp]\n" + esp_table(provider, sandbox_url, **esp_extra) + "\n"
