"""What every inbound source adapter provides, and the small value types they share.

An adapter is a module-level object with three steps, all pure (standard library and pydantic):

* ``verify(request, config)`` checks authenticity on the raw bytes and raises
  :class:`~connector.errors.SignatureError`; it never fails open.
* ``identify(request, config)`` names the event and its delivery id (cheap: it runs in the web
  request) or raises :class:`~connector.errors.UnsupportedEvent` for events the tenant does not
  want, which the web tier answers ``ignored``.
* ``to_activities(envelope, payload, context)`` turns the stored payload into canonical
  activities in the worker, or raises ``UnsupportedEvent`` / ``PayloadError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, SecretStr

from connector.activities import Activity
from connector.errors import SignatureError


class SourceConfig(BaseModel):
    """Base for a tenant's per-source table; unknown keys are configuration mistakes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class InboundRequest:
    """The parts of an HTTP request a source may look at, decoupled from Flask.

    ``headers`` keys are lower-case. ``path_token`` is the optional extra path segment of
    ``/webhooks/<tenant>/<source>/<token>``.
    """

    raw: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    path_token: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Envelope:
    """Who sent what: the event type and the sender's delivery id (the transport dedup key)."""

    source: str
    tenant: str
    event_type: str
    delivery_id: str
    received_at: str

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form for RQ job arguments."""
        return {
            "source": self.source,
            "tenant": self.tenant,
            "event_type": self.event_type,
            "delivery_id": self.delivery_id,
            "received_at": self.received_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Envelope:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in ("source", "tenant", "event_type", "delivery_id", "received_at")})


@dataclass(frozen=True)
class TranslationContext:
    """Tenant facts a pure translation may need (never credentials)."""

    tenant: str
    timezone: ZoneInfo
    platform: str
    now: datetime


@dataclass(frozen=True)
class ImmediateAnswer:
    """A response a source gives itself without enqueueing (validation pings, GET challenges)."""

    status: int
    body: str | bytes | dict[str, Any]
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class Source(Protocol):
    """The interface of a source adapter (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def config_model(self) -> type[SourceConfig]: ...

    @property
    def content_types(self) -> Sequence[str]: ...

    def verify(self, request: InboundRequest, config: Any) -> None: ...

    def identify(self, request: InboundRequest, config: Any, tenant: str) -> Envelope: ...

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[Activity]: ...


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Raw HMAC-SHA256 digest."""
    return hmac.new(key, message, hashlib.sha256).digest()


def decode_base64(value: str | None) -> bytes:
    """Strictly decode a base64 signature header; malformed input is a signature failure."""
    if not value:
        raise SignatureError("missing signature")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed signature") from exc


def decode_hex(value: str | None) -> bytes:
    """Strictly decode a hex signature header; malformed input is a signature failure."""
    if not value:
        raise SignatureError("missing signature")
    try:
        return bytes.fromhex(value.strip())
    except ValueError as exc:
        raise SignatureError("malformed signature") from exc


def require_any_hmac(message: bytes, given: bytes, secrets: Iterable[SecretStr]) -> None:
    """Accept when any configured secret's HMAC-SHA256 equals ``given`` (constant time).

    Every secret is tried, so the time taken does not reveal which one matched. No secrets at
    all rejects: a source never fails open.
    """
    matched = False
    tried = False
    for secret in secrets:
        value = secret.get_secret_value()
        if not value:
            continue
        tried = True
        matched |= hmac.compare_digest(hmac_sha256(value.encode(), message), given)
    if not tried:
        raise SignatureError("no secret configured for this source")
    if not matched:
        raise SignatureError("signature does not match")


def require_token(given: str | None, expected: SecretStr | None) -> None:
    """Constant-time comparison of a URL token or static header value; empty never matches."""
    want = expected.get_secret_value() if expected is not None else ""
    if not want:
        raise SignatureError("no token configured for this source")
    if not given or not hmac.compare_digest(given.encode(), want.encode()):
        raise SignatureError("token does not match")
