"""One tenant (``fuzz``) with every source, the fixtures per source, and signing per source."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from connector.sandbox import DEFAULT_KEYS

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TENANT = "fuzz"
SHOP = "fuzz-shop.myshopify.com"
SHOPIFY_SECRET = "shpss_fuzz_secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"fuzz-standard-webhooks-secret-01").decode()
PURPLE_TOKEN = "fuzz-purple-token"
MERAKI_SECRET = "fuzz-meraki-secret"
MERAKI_VALIDATOR = "fuzz-meraki-validator"
SOCIALWIFI_AUTH = "Bearer fuzz-socialwifi"
MIST_SECRET = "fuzz-mist-secret"
HOTSPOT_KEY = "fuzz-hotspot-key"
MEWS_TOKEN = "fuzz-mews-token"
APALEO_TOKEN = "fuzz-apaleo-token"
CLOUDBEDS_TOKEN = "fuzz-cloudbeds-token"
HOSTAWAY_USER, HOSTAWAY_PASSWORD = "fuzz-hostaway", "fuzz-hostaway-password"
VOUCHERIFY_SECRET = "fuzz-voucherify-secret"
LOYALTYLION_SECRET = "fuzz-loyaltylion-secret"
SHOPIFY_TOPICS = ("orders/paid", "orders/create", "orders/fulfilled")

# The webhook fixtures each source's requests are mutated from (vendor directory, file stems).
WEBHOOK_FIXTURES: dict[str, tuple[str, ...]] = {
    "shopify": ("orders_paid", "orders_paid__jpy", "orders_paid__kwd", "orders_paid__guest_checkout"),
    "standard": ("customer_loyalty_tier_upgraded", "stay_booked", "stay_checked_in", "wifi_login"),
    "purple": ("login",),
    "meraki": ("observations",),
    "socialwifi": ("upsert", "delete"),
    "mist": ("guest_authorizations",),
    "hotspotsystem": ("customer_create",),
    "mews": ("general_webhook",),
    "apaleo": ("reservation_created", "reservation_checked_in", "reservation_checked_out"),
    "cloudbeds": ("reservation_created", "status_checked_in"),
    "hostaway": ("reservation_created", "reservation_updated"),
    "voucherify": ("customer_loyalty_tier_upgraded_v2024", "customer_rewarded_v2018"),
    "loyaltylion": ("customer_tier_upgraded", "customers_update", "customer_claimed_reward"),
}
SOURCES = tuple(WEBHOOK_FIXTURES)


def fixture(vendor: str, name: str, *, api: bool = False) -> Any:
    """A fixture file, parsed (``api``: as the PMS API clients read answers, fractions as strings)."""
    text = (FIXTURES / vendor / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text, parse_float=str) if api else json.loads(text)


def fetched_fixtures(source: str) -> dict[str, Any] | None:
    """What the worker would fetch from the PMS API for a thin event (``None``: not a thin source)."""
    if source == "mews":
        return {
            "reservations": [fixture("mews", "reservation_started", api=True)],
            "customers": [fixture("mews", "customer", api=True)],
            "resource_categories": [fixture("mews", "resource_category", api=True)],
            "order_items": fixture("mews", "order_items", api=True),
        }
    if source == "apaleo":
        return {"reservations": [fixture("apaleo", "reservation_inhouse", api=True)]}
    if source == "cloudbeds":
        return {"reservations": [fixture("cloudbeds", "reservation_checked_in", api=True)]}
    return None


def tenants_toml(sandbox_url: str) -> str:
    """The ``fuzz`` tenant: Glu on the sandbox, every source, Klaviyo (sandbox) for relays."""
    return textwrap.dedent(f"""
        [tenants.{TENANT}]
        timezone = "Europe/London"
        [tenants.{TENANT}.loyalty]
        platform = "glu"
        base_url = "{sandbox_url}/glu"
        api_key = "sandbox-glu-key"
        [tenants.{TENANT}.esp]
        provider = "klaviyo"
        base_url = "{sandbox_url}/klaviyo"
        api_key = "{DEFAULT_KEYS["klaviyo"]}"
        [tenants.{TENANT}.sources.shopify]
        shop_domain = "{SHOP}"
        secrets = ["{SHOPIFY_SECRET}"]
        topics = {json.dumps(list(SHOPIFY_TOPICS))}
        [tenants.{TENANT}.sources.standard]
        secrets = ["{STANDARD_SECRET}"]
        [tenants.{TENANT}.sources.purple]
        token = "{PURPLE_TOKEN}"
        [tenants.{TENANT}.sources.meraki]
        validator = "{MERAKI_VALIDATOR}"
        secret = "{MERAKI_SECRET}"
        [tenants.{TENANT}.sources.socialwifi]
        authorization = "{SOCIALWIFI_AUTH}"
        [tenants.{TENANT}.sources.mist]
        secrets = ["{MIST_SECRET}"]
        [tenants.{TENANT}.sources.hotspotsystem]
        secrets = ["{HOTSPOT_KEY}"]
        venue = "fuzz-venue"
        [tenants.{TENANT}.sources.mews]
        token = "{MEWS_TOKEN}"
        api_url = "{sandbox_url}/mews"
        client_token = "sandbox-mews-client-token"
        access_token = "sandbox-mews-access-token"
        [tenants.{TENANT}.sources.apaleo]
        token = "{APALEO_TOKEN}"
        client_id = "sandbox-apaleo-client"
        client_secret = "sandbox-apaleo-secret"
        api_url = "{sandbox_url}/apaleo"
        identity_url = "{sandbox_url}/apaleo"
        [tenants.{TENANT}.sources.cloudbeds]
        token = "{CLOUDBEDS_TOKEN}"
        api_url = "{sandbox_url}/cloudbeds"
        api_key = "sandbox-cloudbeds-key"
        currency = "GBP"
        [tenants.{TENANT}.sources.hostaway]
        username = "{HOSTAWAY_USER}"
        password = "{HOSTAWAY_PASSWORD}"
        [tenants.{TENANT}.sources.voucherify]
        secrets = ["{VOUCHERIFY_SECRET}"]
        [tenants.{TENANT}.sources.loyaltylion]
        secrets = ["{LOYALTYLION_SECRET}"]
    """)


def _b64(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _hex(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


JSON = {"Content-Type": "application/json"}


def _shopify(body: bytes, n: int) -> tuple[str, dict[str, str]]:
    return "", {
        **JSON,
        "X-Shopify-Topic": SHOPIFY_TOPICS[n % 3],
        "X-Shopify-Hmac-Sha256": _b64(body, SHOPIFY_SECRET),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": f"fuzz-{n}",
    }


def _standard(body: bytes, n: int) -> tuple[str, dict[str, str]]:
    stamp = datetime.fromtimestamp(int(time.time()), tz=UTC)
    try:
        signature = Webhook(STANDARD_SECRET).sign(f"msg_fuzz_{n}", stamp, body.decode("utf-8"))
    except UnicodeDecodeError:  # the library signs text: a non-UTF-8 body goes unsigned
        signature = "v1,AAAA"
    headers = {"webhook-id": f"msg_fuzz_{n}", "webhook-timestamp": str(int(stamp.timestamp()))}
    return "", {**JSON, **headers, "webhook-signature": signature}


SIGNERS: dict[str, Callable[[bytes, int], tuple[str, dict[str, str]]]] = {
    "shopify": _shopify,
    "standard": _standard,
    "purple": lambda body, n: (f"/{PURPLE_TOKEN}", dict(JSON)),
    "meraki": lambda body, n: ("", dict(JSON)),  # the secret travels in the body (see sign_body)
    "socialwifi": lambda body, n: ("", {**JSON, "Authorization": SOCIALWIFI_AUTH}),
    "mist": lambda body, n: ("", {**JSON, "X-Mist-Signature-v2": _hex(body, MIST_SECRET)}),
    "hotspotsystem": lambda body, n: ("", {**JSON, "X-HotspotSystem-Hmac-Sha256": _b64(body, HOTSPOT_KEY)}),
    "mews": lambda body, n: (f"/{MEWS_TOKEN}", dict(JSON)),
    "apaleo": lambda body, n: (f"/{APALEO_TOKEN}", dict(JSON)),
    "cloudbeds": lambda body, n: (f"/{CLOUDBEDS_TOKEN}", dict(JSON)),
    "hostaway": lambda body, n: (
        "",
        {
            **JSON,
            "Authorization": "Basic " + base64.b64encode(f"{HOSTAWAY_USER}:{HOSTAWAY_PASSWORD}".encode()).decode(),
        },
    ),
    "voucherify": lambda body, n: ("", {**JSON, "x-voucherify-signature": _hex(body, VOUCHERIFY_SECRET)}),
    "loyaltylion": lambda body, n: ("", {**JSON, "x-loyaltylion-hmac-sha256": _b64(body, LOYALTYLION_SECRET)}),
}


def sign_body(source: str, value: Any) -> Any:
    """The body value as the signed sender would send it (Meraki: its secret inside)."""
    if source == "meraki" and isinstance(value, dict):
        return {**value, "secret": MERAKI_SECRET}
    return value


def signed(source: str, body: bytes, n: int) -> tuple[str, dict[str, str]]:
    """``(path, headers)`` of a correctly authenticated request carrying ``body``."""
    suffix, headers = SIGNERS[source](body, n)
    return f"/webhooks/{TENANT}/{source}{suffix}", headers


def unsigned(source: str, n: int) -> tuple[str, dict[str, str]]:
    """``(path, headers)`` of a request with wrong or no credentials."""
    if source in {"purple", "mews", "apaleo", "cloudbeds"}:
        return f"/webhooks/{TENANT}/{source}/wrong-token-{n}", dict(JSON)
    return f"/webhooks/{TENANT}/{source}", {**JSON, "Authorization": "Bearer nope", "X-Shopify-Hmac-Sha256": "AAAA"}
