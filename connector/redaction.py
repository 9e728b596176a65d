"""The one redaction mechanism: configured secrets out of every text that is stored, logged or shown.

A secret leaks in more shapes than its raw string: an identity server echoing a form body gives it
percent-encoded (``quote_plus``), a header echo gives HTTP Basic credentials base64-encoded
(``user:secret``), a JSON answer escapes it (``\\"``, ``\\u00e9``, ``\\/``), a ``repr`` doubles
its backslashes. :class:`Redactor` replaces every one of those forms, and any base64 token that
decodes to text containing a secret, by ``[redacted]``.

Used by every outbound client (:mod:`connector.http`), by the workers on every failed
job's reason before RQ stores it, and by :class:`RedactingFilter` on every log record of the web
and worker processes. :func:`configured_secrets` collects what to hide from the settings.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "[redacted]"
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+(?:@|%40|\\u0040)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.IGNORECASE)
"""An email address, also percent-encoded (``%40``) or JSON-escaped (``\u0040``)."""
EMAIL_MASK = "[email]"
MIN_LENGTH = 4  # shorter values would mask ordinary words; configured secrets are much longer
BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
BASE64_TOKEN = re.compile(r"(?:[A-Za-z0-9+_-]|\\?/){8,}={0,2}")  # a JSON-escaped "\/" included
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _json_forms(value: str) -> set[str]:
    escaped = json.dumps(value)[1:-1]
    unicode_kept = json.dumps(value, ensure_ascii=False)[1:-1]
    return {escaped, unicode_kept, escaped.replace("/", "\\/"), unicode_kept.replace("/", "\\/")}


def _base64_forms(raw: bytes) -> set[str]:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return {standard, urlsafe, standard.rstrip("="), urlsafe.rstrip("=")}


def encodings(secret: str, users: Iterable[str] = ()) -> set[str]:
    """Every form in which ``secret`` may appear in a text: raw, percent-encoded (``quote`` and
    ``quote_plus``, upper- and lower-case hex), base64 (also of ``user:secret`` for each of
    ``users``), and each of those JSON-escaped and ``repr``-escaped."""
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret, safe=""), quote_plus(secret)):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda m: m.group(0).lower(), encoded))
    forms |= _base64_forms(secret.encode())
    for user in users:
        forms |= _base64_forms(f"{user}:{secret}".encode())
    for form in list(forms):
        forms |= _json_forms(form)
        forms.add(repr(form)[1:-1])
        forms.add(form.replace("/", "\\/"))  # PHP's json_encode escapes slashes only
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """Replaces every encoding of a set of secrets (see :func:`encodings`) in texts."""

    def __init__(self, secrets: Iterable[str], users: Iterable[str] = ()) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_LENGTH}, key=len, reverse=True))
        user_list = tuple(users)
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= encodings(secret, user_list)
        # Longest first, so a form is replaced whole rather than a shorter form inside it.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in ordered)) if ordered else None
        # A base64 token of n characters decodes to at most 3 * ceil(n / 4) bytes, and a secret
        # of s characters takes at least s bytes: a shorter token cannot hide one, and is not
        # decoded (most words of a log line are such tokens: "accepted", "bench/shopify").
        self._shortest = min((len(secret) for secret in self.secrets), default=0)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def _hides_secret(self, token: str) -> bool:
        token = token.replace("\\/", "/")
        if (len(token) + 3) // 4 * 3 < self._shortest:
            return False
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(token + "=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            if self._pattern is not None and self._pattern.search(decoded.decode("utf-8", "replace")):
                return True
        return False

    def redact(self, text: str) -> str:
        """``text`` with every encoding of every secret (and bearer-looking tokens) masked."""
        if self._pattern is not None:
            # Whole base64 tokens first: a blob that decodes to text holding a secret goes entirely.
            text = BASE64_TOKEN.sub(lambda m: MASK if self._hides_secret(m.group(0)) else m.group(0), text)
            text = self._pattern.sub(MASK, text)
        return BEARER.sub(r"\1" + MASK, text)


@lru_cache(maxsize=256)
def _cached(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def mask_emails(text: str) -> str:
    """``text`` with every email-shaped string masked (a vendor's answer or a URL may carry the
    guest's address: it must not reach a failure reason, a record or a log)."""
    return EMAIL.sub(EMAIL_MASK, text)


def redact(text: str, secrets: Iterable[str], also: Iterable[str] = ()) -> str:
    """``text`` with every encoding of ``secrets`` masked (redactors are cached per secret set),
    then every encoding of each value of ``also``, with a redactor of its own (cached per value).

    ``also`` is for values that change from call to call, such as the guest's email of a
    delivery's record: in one set with the secrets, each new guest cost a redactor of every
    secret built again, about 0.65 ms of regular expressions (real guests rarely repeat), against
    0.1 ms for the value's own, and the secrets' redactor stays cached.
    """
    masked = _cached(tuple(sorted(set(secrets)))).redact(text)
    for value in sorted(set(also), key=len, reverse=True):  # longest first, as within one redactor
        masked = _one_value(value).redact(masked)
    return masked


@lru_cache(maxsize=1024)
def _one_value(value: str) -> Redactor:
    return Redactor([value])


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name, None))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


def configured_secrets(settings: Any, tenants: Iterable[Any] = ()) -> tuple[str, ...]:
    """Every secret the settings hold: each ``SecretStr`` of the process settings and of every
    tenant (sources, loyalty platform, ESP; the tenants file's, and ``tenants``: the ones the
    tenant directory serves besides, e.g. keys typed into the merchant pages), and the password
    in ``REDIS_URL``."""
    found = set(_secret_values(settings))
    for tenant in [*getattr(settings, "tenants", {}).values(), *tenants]:
        found |= set(_secret_values(tenant))
    password = urlsplit(str(getattr(settings, "redis_url", "") or "")).password
    if password:
        found |= {password, unquote(password)}
    # -- issue 15 deploy: a Sentinel REDIS_URL's sentinel_password (in its query) is a secret too --
    for value in parse_qs(urlsplit(str(getattr(settings, "redis_url", "") or "")).query).get("sentinel_password", []):
        found.add(value)
    # -- end issue 15 deploy --
    return tuple(sorted(s for s in found if s))


class RedactingFilter(logging.Filter):
    """Masks configured secrets in every record passing a handler (message, arguments, traceback)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the record once, redact it, and keep it (never drops a record)."""
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return True  # arguments that do not fit the format: logging reports that record itself
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redactor.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


def install_log_redaction(secrets: Iterable[str]) -> Redactor:
    """Mask ``secrets`` in every log record this process creates, whatever logger or handler
    writes it (RQ and gunicorn install their own handlers), through the log record factory.
    Called again (the tenant directory does, when tenants change), it replaces the set."""
    secrets = tuple(secrets)
    active = _ACTIVE[0]
    wanted = {s for s in secrets if s and len(s) >= MIN_LENGTH}
    if isinstance(active, RedactingFilter) and set(active.redactor.secrets) == wanted:
        return active.redactor  # unchanged: keep the compiled redactor
    redactor = Redactor(secrets)
    _ACTIVE[0] = RedactingFilter(redactor)
    if not _ACTIVE[1]:
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            active = _ACTIVE[0]
            if isinstance(active, RedactingFilter):
                active.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _ACTIVE[1] = True
    return redactor


_ACTIVE: list[Any] = [None, False]  # the filter in use; whether the record factory is installed
