"""Shopify's authorization code grant, the pure parts: query HMAC, shop, timestamp and scope checks.

Docs checked (shopify.dev "Implement authorization code grant manually", step 1 "Verify the
installation request" and step 3 "Validate authorization code"; "Shopify API access scopes"):

* every request Shopify sends to the App URL and the redirect URL carries ``hmac``: the hex
  HMAC-SHA256, keyed with the app's client secret, of the other query parameters sorted by name and
  joined as ``k=v&k=v`` (decoded values; this module escapes ``%``, ``&`` and ``=`` in names and
  ``%`` and ``&`` in values, as Shopify's own libraries do, so no parameter can forge another);
* ``shop`` must be a ``{handle}.myshopify.com`` host name;
* ``timestamp`` is epoch seconds: a request older than :data:`MAX_AGE_SECONDS` (or from further in
  the future than :data:`CLOCK_SKEW_SECONDS`) is refused as a replay;
* "any scope that writes a resource also grants read access to it": the access-token answer may
  list ``write_orders`` where ``read_orders`` was requested, so ``write_x`` covers ``read_x``.

Standard library only (imported by the web tier, the sandbox and the CLI).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
"""What Shopify documents a shop's domain to be (``{handle}.myshopify.com``)."""
MAX_AGE_SECONDS = 600
"""How old a signed Shopify request may be (10 minutes)."""
CLOCK_SKEW_SECONDS = 60
"""How far in the future a timestamp may be (clocks differ)."""
SIGNATURE_PARAMS = frozenset({"hmac", "signature"})
"""Left out of the signed message (``signature`` is the legacy MD5 one)."""


class OAuthRefusal(Exception):  # noqa: N818 - a refusal, not a programming error
    """A Shopify request that is refused: ``reason`` is safe to show, ``status`` is the HTTP one."""

    def __init__(self, reason: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code


def valid_shop(shop: str | None) -> str | None:
    """The shop domain, lower-cased, when it is one Shopify could have sent; else ``None``."""
    if not shop or not SHOP_DOMAIN.match(shop):
        return None
    return shop.lower()


def _escape(text: str, *, name: bool) -> str:
    text = text.replace("%", "%25").replace("&", "%26")
    return text.replace("=", "%3D") if name else text


def query_message(params: Mapping[str, str]) -> str:
    """The message Shopify signs: the parameters but ``hmac``/``signature``, sorted, ``k=v&k=v``."""
    pairs = sorted((k, v) for k, v in params.items() if k not in SIGNATURE_PARAMS)
    return "&".join(f"{_escape(k, name=True)}={_escape(v, name=False)}" for k, v in pairs)


def sign_query(params: Mapping[str, str], secret: str) -> str:
    """The hex ``hmac`` of ``params`` under the app ``secret``."""
    return hmac.new(secret.encode(), query_message(params).encode(), hashlib.sha256).hexdigest()


def verify_query(params: Mapping[str, str], secret: str) -> bool:
    """Whether ``params["hmac"]`` is the query's HMAC under ``secret`` (compared in constant time)."""
    given = params.get("hmac") or ""
    return hmac.compare_digest(given.lower().encode(), sign_query(params, secret).encode())


def signed_query(params: Mapping[str, str], secret: str) -> str:
    """``params`` plus their ``hmac``, URL-encoded (what Shopify appends to the App URL)."""
    return urlencode({**params, "hmac": sign_query(params, secret)})


def fresh(timestamp: str | None, *, now: float | None = None) -> bool:
    """Whether ``timestamp`` (epoch seconds) is at most :data:`MAX_AGE_SECONDS` old and not from
    the future beyond :data:`CLOCK_SKEW_SECONDS`."""
    if not timestamp or not timestamp.isdigit():
        return False
    age = (time.time() if now is None else now) - int(timestamp)
    return -CLOCK_SKEW_SECONDS <= age <= MAX_AGE_SECONDS


def check_request(params: Mapping[str, str], secret: str, *, now: float | None = None) -> str:
    """The shop of a signed request from Shopify (App URL or redirect), after every check.

    Raises:
        OAuthRefusal: a bad or missing ``hmac`` (401), a shop that is no ``*.myshopify.com`` domain
            (400), or a stale or missing ``timestamp`` (400).
    """
    if not verify_query(params, secret):
        raise OAuthRefusal("the request is not signed by Shopify (hmac does not match)", 401, "bad_hmac")
    shop = valid_shop(params.get("shop"))
    if shop is None:
        raise OAuthRefusal("shop must be a {handle}.myshopify.com domain", 400, "bad_shop")
    if not fresh(params.get("timestamp"), now=now):
        raise OAuthRefusal("the request is too old (or its timestamp is missing): start again", 400, "stale")
    return shop


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from Shopify's comma-separated ``scope`` (or a list), sorted, without blanks."""
    parts = text.split(",") if isinstance(text, str) else text
    return tuple(sorted({part.strip() for part in parts if part.strip()}))


def covers(granted: Iterable[str], scope: str) -> bool:
    """Whether ``granted`` includes ``scope``; ``write_x`` (or ``unauthenticated_write_x``) covers
    the matching ``read_x`` (Shopify: a write scope also grants read access)."""
    have = set(granted)
    if scope in have:
        return True
    for prefix in ("", "unauthenticated_"):
        if scope.startswith(f"{prefix}read_"):
            return f"{prefix}write_{scope.removeprefix(f'{prefix}read_')}" in have
    return False


def missing_scopes(granted: Iterable[str], required: Iterable[str]) -> list[str]:
    """The required scopes ``granted`` does not cover (empty: the grant is enough)."""
    have = list(granted)
    return sorted({scope for scope in required if not covers(have, scope)})


def authorize_url(admin_origin: str, *, client_id: str, scopes: Iterable[str], redirect_uri: str, state: str) -> str:
    """``{admin}/admin/oauth/authorize?client_id=…&scope=…&redirect_uri=…&state=…`` (offline
    access: no ``grant_options[]``)."""
    query = urlencode({"client_id": client_id, "scope": ",".join(scopes), "redirect_uri": redirect_uri, "state": state})
    return f"{admin_origin.rstrip('/')}/admin/oauth/authorize?{query}"
