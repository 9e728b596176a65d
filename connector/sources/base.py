"""What every inbound source adapter provides, and the small value types they share.

An adapter is a module-level object with three steps, all pure (standard library and pydantic):

* ``verify(request, config)`` checks authenticity on the raw bytes and raises
  :class:`~connector.errors.SignatureError`; it never fails open.
* ``identify(request, config, tenant)`` names the event and its delivery id (cheap: it runs in
  the web request; ``request.received_at`` is the web tier's clock, identify reads none) or raises
  :class:`~connector.errors.UnsupportedEvent` for events the tenant does not want, which the web
  tier answers ``ignored``.
* ``to_activities(envelope, payload, context, config)`` turns the stored payload into canonical
  activities in the worker, or raises ``UnsupportedEvent`` / ``PayloadError``.

The optional hooks (handshakes, pings, thin-event references, relayed events, what is stored of
a body, extra response headers) are declared on :class:`Source` and given their "not used"
behaviour by :class:`SourceAdapter`, the base every adapter inherits: the web tier and the jobs
call them, never probe for them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from connector.activities import Activity, LoyaltyEvent
from connector.errors import ConnectorError, PayloadError, SignatureError, UnsupportedEvent

# The setup steps every adapter carries (connector.sources.setup).
from connector.sources.setup import SetupGuide

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects a webhook body may have (real ones nest under 10 levels)."""


class BodyError(PayloadError):
    """The body breaks the body rules (not UTF-8 JSON, or nested too deep): a 400 with ``code``."""

    def __init__(self, message: str, *, code: str = "invalid_json") -> None:
        super().__init__(message)
        self.code = code


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _integer(literal: str) -> int | float:
    # orjson's (and JavaScript's) reading: beyond the 64-bit range an integer is a float, so the
    # web tier's fast parser and this one read every body to the same value.
    value = int(literal)
    if -(2**63) <= value < 2**64:
        return value
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"number {literal[:20]}... is out of range") from None


def _finite(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _repair(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repair(item) for item in value]
    if isinstance(value, dict):
        return {_repair(key): _repair(item) for key, item in value.items()}
    return value


def nested_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels in a parsed JSON value.

    Walked one level at a time, looking only at the containers of each level: a 15 KB Shopify
    order has hundreds of them, and visiting every value with a depth attached (the earlier walk)
    cost the intake more than parsing the body. ``value`` is what a JSON parser returns (plain
    dicts and lists).
    """
    level = [value] if type(value) is dict or type(value) is list else []
    for _ in range(limit):  # after n passes, ``level`` holds the containers n + 1 levels down
        if not level:
            return False
        deeper: list[Any] = []
        add = deeper.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    add(child)
        level = deeper
    return bool(level)


def check_depth(value: Any, text: str | bytes) -> Any:
    """``value`` (parsed from ``text``) when it nests at most :data:`MAX_JSON_DEPTH` levels.

    Raises:
        BodyError: (code ``too_deep``) it nests deeper.
    """
    opener_count = text.count(b"[") + text.count(b"{") if isinstance(text, bytes) else text.count("[") + text.count("{")
    if opener_count > MAX_JSON_DEPTH and isinstance(value, dict | list) and nested_too_deep(value):
        raise BodyError(f"body nests arrays/objects deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
    return value


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
    """Base for a tenant's per-source table; unknown keys are configuration mistakes.

    Rotation, for every source: a ``previous`` sub-table names old values of the source's
    :attr:`credentials` (``[tenants.t.sources.mews.previous] token = "old"``), accepted as well
    as the current ones until it is removed. It is validated at load (credential keys only) and
    merged over the current table into :attr:`previous`, a second config computed once; the web
    tier verifies with it when the current one fails.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    credentials: ClassVar[tuple[str, ...]] = ()
    """The keys that authenticate the sender's requests: the ones ``previous`` may hold."""

    # Which credentials the connector issues, and which one rides in the URL.
    generated: ClassVar[tuple[str, ...]] = ()
    """The keys whose values the *connector* issues (URL tokens, and the secrets a vendor's console
    asks the receiver to supply): the Sources page generates them, never asks for them. The other
    credentials are issued by the vendor and entered."""

    path_credential: ClassVar[str | None] = None
    """The key sent as the last segment of ``/webhooks/<tenant>/<source>/<token>`` (``None``: the
    URL carries no token)."""

    previous: SourceConfig | None = Field(default=None, repr=False, exclude=True)
    """This config with the ``previous`` credentials in place of the current ones (``None``: no rotation)."""

    # How long a source may be quiet before the Activity page warns.
    silent_after: float | None = Field(
        default=None,
        gt=0,
        title="Warn when silent for (hours)",
        description="The Activity page warns when no webhook arrived from this source for longer (optional).",
    )
    """Hours without a webhook after which the Activity page warns (``None``: never)."""

    @model_validator(mode="wrap")
    @classmethod
    def _rotation(cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo) -> Self:
        """Read ``previous`` (the credentials being rotated out) into a second, merged config."""
        if not isinstance(data, dict) or "previous" not in data:
            return handler(data)
        current = {key: value for key, value in data.items() if key != "previous"}
        old = data["previous"]
        if isinstance(old, BaseModel) or old is None:  # a config already built (model_copy, tests)
            return handler(current).model_copy(update={"previous": old})
        if not isinstance(old, dict) or not old:
            raise ValueError("previous: must be a table of the credentials being rotated out")
        unknown = sorted(set(old) - set(cls.credentials))
        if unknown:
            raise ValueError(
                f"previous: {', '.join(unknown)} cannot be rotated; previous may hold {', '.join(cls.credentials)}"
            )
        config = handler(current)
        return config.model_copy(update={"previous": cls.model_validate({**current, **old}, context=info.context)})


@dataclass(frozen=True)
class InboundRequest:
    """The parts of an HTTP request a source may look at, decoupled from Flask.

    ``headers`` keys are lower-case. ``path_token`` is the optional extra path segment of
    ``/webhooks/<tenant>/<source>/<token>``. ``received_at`` (ISO 8601, UTC) is stamped by the web
    tier when the request arrives: identification is pure and reads no clock.
    """

    raw: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    path_token: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: str = ""
    parser: Callable[[bytes], Any] | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """Return a header value by case-insensitive name, or ``None``."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body read by the body rules (:func:`load_body`, or the web tier's equivalent
        ``parser``), once per request: verify, the intake and identify share the result.

        Raises:
            BodyError: the body breaks the rules (the same error on every call).
        """
        cached = self.__dict__.get("_json")
        if cached is None:
            try:
                cached = ((self.parser or load_body)(self.raw), None)
            except BodyError as exc:
                cached = (None, exc)
            self.__dict__["_json"] = cached  # frozen dataclass: a memo, not a field
        value, error = cached
        if error is not None:
            raise error
        return value


@dataclass(frozen=True)
class Envelope:
    """Who sent what: the event type and the sender's delivery id (the transport dedup key)."""

    source: str
    tenant: str
    event_type: str
    delivery_id: str
    received_at: str
    # Further ids marking the same event (e.g. Shopify's event id): dedup at intake only, not stored.
    more_delivery_ids: tuple[str, ...] = ()

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
        return cls(data["source"], data["tenant"], data["event_type"], data["delivery_id"], data["received_at"])


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
    """The interface of a source adapter (see the module docstring); :class:`SourceAdapter` has the defaults."""

    @property
    def name(self) -> str:
        """The slug: the ``<source>`` URL segment and the tenants-file table name."""
        ...

    @property
    def config_model(self) -> type[SourceConfig]:
        """The model of ``[tenants.<t>.sources.<name>]``."""
        ...

    @property
    def content_types(self) -> Sequence[str]:
        """The media types the sender posts (others are answered 415)."""
        ...

    @property
    def sandbox(self) -> str:
        """The module that stands in for the sender in tests and demos (``sign``, ``SAMPLE_CONFIG``)."""
        ...

    @property
    def response_headers(self) -> Mapping[str, str]:
        """Headers on every answer under this source's URLs (Purple's listener marker)."""
        ...

    @property
    def empty_body_is_ping(self) -> bool:
        """Whether :meth:`answer_ping` is asked before an empty body is refused as bad JSON."""
        ...

    @property
    def setup(self) -> SetupGuide | None:
        """What the merchant does in the vendor's console (``None``: none written, which the
        source contract suite refuses)."""
        ...

    @property
    def repeats_are_duplicates(self) -> bool:
        """Whether a repeated delivery is answered ``duplicate`` at the intake (the source contract
        suite checks it); ``False`` only for a sender whose identical bodies are distinct events,
        whose adapter's docstring says why (the repeat must then make no second activity)."""
        ...

    def verify(self, request: InboundRequest, config: Any) -> None:
        """Raise :class:`~connector.errors.SignatureError` unless the request is authentic."""
        ...

    def identify(self, request: InboundRequest, config: Any, tenant: str) -> Envelope:
        """The event type and delivery id (raise ``UnsupportedEvent`` for unwanted events)."""
        ...

    def to_activities(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[Activity]:
        """The canonical activities of a stored payload (pure)."""
        ...

    def answer_get(self, request: InboundRequest, config: Any) -> ImmediateAnswer | None:
        """The answer to a GET (a URL validation handshake); ``None``: GET is not allowed (405)."""
        ...

    def answer_ping(self, request: InboundRequest, config: Any) -> ImmediateAnswer | None:
        """An answer given without a job to a verified test message; ``None``: not a ping."""
        ...

    def is_loyalty_event(self, event_type: str) -> bool:
        """Whether events of this type are relayed to the ESP (then :meth:`to_loyalty_events`)."""
        ...

    def to_loyalty_events(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[LoyaltyEvent]:
        """The canonical loyalty events of a stored payload (pure)."""
        ...

    def references(self, envelope: Envelope, payload: Any, config: Any) -> list[str] | None:
        """For a thin event, the ids its PMS API is asked for (``None``: the payload is complete)."""
        ...

    def stored_body(self, text: str, config: Any) -> str:
        """What the job keeps of a verified body (never a credential that travels inside it)."""
        ...


class SourceAdapter:
    """The base of every source adapter: the optional hooks of :class:`Source`, unused."""

    name: str
    response_headers: Mapping[str, str] = {}
    empty_body_is_ping = False
    repeats_are_duplicates = True
    setup: SetupGuide | None = None

    @property
    def sandbox(self) -> str:
        """By convention the vendor folder's ``sandbox`` module (``connector.vendors.<name>.sandbox``)."""
        return f"connector.vendors.{self.name}.sandbox"

    def answer_get(self, request: InboundRequest, config: Any) -> ImmediateAnswer | None:
        """No GET handshake: the web tier answers 405."""
        return None

    def answer_ping(self, request: InboundRequest, config: Any) -> ImmediateAnswer | None:
        """No test messages."""
        return None

    def is_loyalty_event(self, event_type: str) -> bool:
        """Nothing of this source is relayed."""
        return False

    def to_loyalty_events(
        self, envelope: Envelope, payload: Any, context: TranslationContext, config: Any
    ) -> list[LoyaltyEvent]:
        """Never asked while :meth:`is_loyalty_event` is false."""
        raise UnsupportedEvent(f"{self.name} sends no loyalty events", counter="not_relayed")

    def references(self, envelope: Envelope, payload: Any, config: Any) -> list[str] | None:
        """Payloads are complete: nothing to fetch."""
        return None

    def stored_body(self, text: str, config: Any) -> str:
        """The body is stored as received."""
        return text


class RelayOnlySource(SourceAdapter):
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


def as_object(value: Any, where: str) -> dict[str, Any]:
    """The JSON object at ``where``; absent (``null``) reads as ``{}``.

    Raises:
        PayloadError: another JSON type, naming the field.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not a JSON object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """The JSON array at ``where``; absent (``null``) reads as ``[]``.

    Raises:
        PayloadError: another JSON type, naming the field.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not a JSON array")
    return value


def as_text(value: Any, where: str) -> str | None:
    """The string at ``where`` (``None`` when absent or empty).

    Raises:
        PayloadError: another JSON type, naming the field.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where} is not a string")
    return value


@contextmanager
def valid_event() -> Iterator[None]:
    """Around building an event from a webhook: a pydantic ``ValidationError`` is a ``PayloadError``."""
    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PayloadError(f"webhook does not make a valid {exc.title}: {where}: {first['msg']}") from exc


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
    # surrogatepass: a lone surrogate from a JSON body must mismatch, not raise
    if not given or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), want.encode()):
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

    * RFC 8259 JSON; ``NaN`` / ``Infinity`` (which ``json`` would read) are not JSON and refused, and
      so is a number too large for a float (``1e400``), which would read as infinity;
    * an integer outside the 64-bit range (-2**63 to 2**64 - 1) reads as the nearest float, as
      orjson and JavaScript read it;
    * a leading byte order mark is ignored (RFC 8259 lets a parser do so; some senders add one);
    * arrays/objects nest at most :data:`MAX_JSON_DEPTH` levels (``too_deep``);
    * a lone surrogate escape (``"\\ud800"``, which JSON's grammar allows but no UTF-8 text can
      hold) reads as U+FFFD, so no string downstream fails to encode.

    Raises:
        BodyError: the body breaks a rule (``code`` ``invalid_json`` or ``too_deep``).
    """
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:  # json's C scanner recurses per level: far deeper than the limit
        raise BodyError(f"body nests arrays/objects deeper than {MAX_JSON_DEPTH} levels", code="too_deep") from None
    except ValueError as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    value = check_depth(value, text)
    if _SURROGATE_ESCAPE.search(text):
        value = _repair(value)
    return value


def load_body(raw: bytes) -> Any:
    """The raw body read by :func:`load_body_text` after strict UTF-8 decoding.

    Raises:
        BodyError: not UTF-8, or see :func:`load_body_text`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not UTF-8") from None
    return load_body_text(text)


def json_object(request: InboundRequest | bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is a :class:`~connector.errors.PayloadError`."""
    body = request.json() if isinstance(request, InboundRequest) else load_body(request)
    if not isinstance(body, dict):
        raise PayloadError("body is not a JSON object")
    return body


_TRANSLATION_CODE = ("/connector/sources/", "/connector/vendors/")  # where pure payload reading lives


def unexpected_shape(exc: BaseException, what: str) -> PayloadError:
    """A :class:`PayloadError` for an exception a source raised by accident on a strange payload.

    The reason names the exception and the source function (and line) where it happened, so a
    person can tell which field was unusable; the traceback is logged for the developers.
    """
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or exc.title
        return PayloadError(f"{what}: {where}: {first['msg']}")
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if any(part in f.filename for part in _TRANSLATION_CODE) and f.name != "translation_guard"
    ]
    place = f" in {frames[-1].name} ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    detail = str(exc)[:200]
    log.warning("%s: unexpected %s%s", what, type(exc).__name__, place, exc_info=exc)
    return PayloadError(f"{what}: the payload has an unexpected shape ({type(exc).__name__}{place}: {detail})")


@contextmanager
def translation_guard(what: str) -> Iterator[None]:
    """Around the pure reading of a payload (identify, translation): the last-resort net.

    The connector's own errors pass through; any other exception (``AttributeError`` on a field
    that is not an object, ``RecursionError``, ``OverflowError``…) can only come from a payload
    of an unexpected shape, since pure code does no I/O, and becomes a :class:`PayloadError`
    (400 at the intake, failed once with a reason in a job). Never wrap I/O in it.
    """
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        raise unexpected_shape(exc, what) from exc


def require_body_value(
    request: InboundRequest, expected: str | None, read: Callable[[dict[str, Any]], Any], error: str
) -> None:
    """When ``expected`` is configured, ``read(body)`` of the JSON object body must equal it.

    A body that breaks the body rules is left to the web tier (answered 400); any other JSON that
    does not carry the expected value is a :class:`~connector.errors.SignatureError` with ``error``.
    """
    if not expected:
        return
    try:
        body = request.json()
    except BodyError:
        return  # answered 400 by the web tier
    if not isinstance(body, dict) or read(body) != expected:
        raise SignatureError(error)
