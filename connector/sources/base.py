"""What every inbound source adapter provides, and the small value types they share.

An adapter is a module-level object with three steps, all pure (standard library and pydantic):

* ``verify(request, config)`` checks authenticity on the raw bytes and raises
  :class:`~connector.errors.SignatureError`; it never fails open.
* ``identify(request, config)`` names the event and its delivery id (cheap: it runs in the web
  request) or raises :class:`~connector.errors.UnsupportedEvent` for events the tenant does not
  want, which the web tier answers ``ignored``.
* ``to_activities(envelope, payload, context)`` turns the stored payload into canonical
  activities in the worker, or raises ``UnsupportedEvent`` / ``PayloadError``.

Optional: ``stored_body(text, config)`` returns what the job keeps of a verified body, for a
source whose credential travels inside it (Meraki's ``secret``): no secret is ever stored.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr, ValidationError

from connector.activities import Activity, LoyaltyEvent
from connector.errors import PayloadError, SignatureError, UnsupportedEvent


def http_base_url(value: str) -> str:
    """A base URL must be http(s); the trailing slash is dropped."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


HttpBaseUrl = Annotated[str, AfterValidator(http_base_url)]
"""A config field holding an http(s) base URL (validated by :func:`http_base_url`)."""


def known_topics(value: list[str], known: frozenset[str]) -> list[str]:
    """A ``topics`` setting must name only ``known`` topics."""
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unsupported topics {unknown}; choose from {sorted(known)}")
    return value


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


class RelayOnlySource:
    """Base of the sources whose every accepted event is relayed to the ESP, never turned into activities.

    A subclass sets ``name`` and turns one stored webhook body into its event in :meth:`loyalty_event`.
    """

    name: str

    def is_loyalty_event(self, event_type: str) -> bool:
        """Every accepted event of this source is relayed to the ESP."""
        return True

    def to_activities(self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any) -> list[Any]:
        """Relayed events are never turned into activities."""
        raise UnsupportedEvent(f"{self.name} events are relayed to the ESP", counter="relay_only")

    def to_loyalty_events(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[LoyaltyEvent]:
        """The one canonical event of a stored webhook body (pure)."""
        if not isinstance(payload, dict):
            raise PayloadError("stored payload is not a JSON object")
        return [self.loyalty_event(payload, envelope, context)]

    def loyalty_event(self, body: dict[str, Any], envelope: Envelope, context: TranslationContext) -> LoyaltyEvent:
        """The canonical event of one webhook body (pure); subclasses provide it."""
        raise NotImplementedError


@contextmanager
def valid_event() -> Iterator[None]:
    """Around building an event from a webhook: a pydantic ``ValidationError`` is a ``PayloadError``."""
    try:
        yield
    except ValidationError as exc:
        raise PayloadError(f"webhook does not make a valid event: {exc.errors()[0]['msg']}") from exc


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Raw HMAC-SHA256 digest."""
    return hmac.digest(key, message, "sha256")  # the one-shot C path: no HMAC object per call


def decode_base64(value: str | None) -> bytes:
    """Strictly decode a base64 signature header; malformed input is a signature failure."""
    if not value:
        raise SignatureError("missing signature")
    try:
        # strict_mode: only the base64 alphabet with correct padding (what b64decode(validate=True)
        # checks with a regular expression first, at several times the cost).
        return binascii.a2b_base64(value.strip(), strict_mode=True)
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


def require_basic_auth(header: str | None, username: str | None, password: SecretStr | None) -> None:
    """HTTP basic auth must be exactly ``username:password`` (constant time); none configured never matches."""
    want = password.get_secret_value() if password is not None else ""
    if not username or not want:
        raise SignatureError("no basic auth configured for this source")
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise SignatureError("missing basic auth")
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed basic auth") from exc
    if not hmac.compare_digest(given, f"{username}:{want}".encode()):
        raise SignatureError("basic auth does not match")


def load_body_text(text: str) -> Any:
    """A webhook body, as text decoded from UTF-8, read as JSON: the one rule for intake and worker.

    RFC 8259 lets a parser ignore a leading byte order mark, which some senders add; the
    standard library reads one from bytes but not from text, so it is dropped here.

    Raises:
        ValueError: not JSON.
    """
    return json.loads(text.removeprefix("\ufeff"))


def json_object(raw: bytes) -> dict[str, Any]:
    """The raw body as a JSON object; anything else is a :class:`~connector.errors.PayloadError`."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise PayloadError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise PayloadError("body is not a JSON object")
    return body


def require_body_value(raw: bytes, expected: str | None, read: Callable[[dict[str, Any]], Any], error: str) -> None:
    """When ``expected`` is configured, ``read(body)`` of the JSON object body must equal it.

    A body that is not JSON is left to ``identify`` (answered 400); any other JSON that does not
    carry the expected value is a :class:`~connector.errors.SignatureError` with ``error``.
    """
    if not expected:
        return
    try:
        body = json.loads(raw)
    except ValueError:
        return  # answered 400 by the web tier
    if not isinstance(body, dict) or read(body) != expected:
        raise SignatureError(error)
