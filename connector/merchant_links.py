"""Time-limited sign-in links to a tenant's merchant pages (``connector merchant-link``).

A link carries a token signed with ``CONNECTOR_SECRET_KEY`` (itsdangerous): the tenant, a nonce
and how long it is valid. Opening it shows a "Sign in" button; pressing it (a POST, so that a mail
scanner prefetching the link cannot use it up) spends the nonce once in Redis and opens a session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from redis import Redis

LINK_SALT = "connector.merchant.link"
USED_LINK_KEY = "connector:merchant:used-link:"
DEFAULT_VALID_SECONDS = 24 * 3600
MAX_VALID_SECONDS = 7 * 24 * 3600


class LinkRefused(Exception):  # noqa: N818 - a refusal with its reason, shown to the person
    """The link cannot be used; ``reason`` says why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignInLink:
    """A verified link: the tenant it opens, its nonce and its validity in seconds."""

    tenant: str
    nonce: str
    valid_seconds: int


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=LINK_SALT)


def make_link_token(secret_key: str, tenant: str, valid_seconds: int = DEFAULT_VALID_SECONDS) -> str:
    """A signed sign-in token for ``tenant``, valid ``valid_seconds`` (at most a week)."""
    if not 60 <= valid_seconds <= MAX_VALID_SECONDS:
        raise ValueError("a sign-in link is valid between one minute and seven days")
    return _serializer(secret_key).dumps({"t": tenant, "n": secrets.token_urlsafe(12), "v": valid_seconds})


def read_link_token(secret_key: str, token: str) -> SignInLink:
    """The link behind ``token``.

    Raises:
        LinkRefused: it is forged, damaged or expired.
    """
    serializer = _serializer(secret_key)
    try:
        payload = serializer.loads(token, max_age=MAX_VALID_SECONDS)
    except SignatureExpired:
        raise LinkRefused("this sign-in link has expired: ask your operator for a new one") from None
    except BadSignature:
        raise LinkRefused("this sign-in link is not valid (it may have been cut short when copied)") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), str) or not isinstance(payload.get("v"), int):
        raise LinkRefused("this sign-in link is not valid")
    try:
        serializer.loads(token, max_age=payload["v"])
    except SignatureExpired:
        raise LinkRefused("this sign-in link has expired: ask your operator for a new one") from None
    return SignInLink(tenant=payload["t"], nonce=str(payload.get("n", "")), valid_seconds=payload["v"])


def spend_link(redis: Redis, link: SignInLink) -> None:
    """Use the link up (once, atomically).

    Raises:
        LinkRefused: it was used before.
    """
    if not redis.set(f"{USED_LINK_KEY}{link.nonce}", "1", nx=True, ex=link.valid_seconds + 60):
        raise LinkRefused("this sign-in link was already used: ask your operator for a new one")


def parse_duration(text: str) -> int:
    """Seconds of ``30m``, ``12h``, ``2d`` or a plain number of seconds.

    Raises:
        ValueError: not one of those.
    """
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 12h, 2d)") from None
