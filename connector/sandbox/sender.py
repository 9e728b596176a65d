"""The sender side of every inbound source, for tests, the fuzzer and demos: one interface.

Every source vendor's ``connector/vendors/<name>/sandbox.py`` (the module its adapter names in
``sandbox``) provides:

* ``WEBHOOK_FIXTURES``: the stems of the files under ``tests/fixtures/<name>/`` that are webhook
  bodies as the sender posts them (the others are API answers);
* ``source_table(secret, sandbox_url)``: a ``[tenants.<t>.sources.<name>]`` table whose
  credentials all derive from ``secret`` (two secrets, two tenants with different credentials),
  its API (if any) on the sandbox server at ``sandbox_url``;
* ``sign(body, table, n)``: the :class:`SignedRequest` the sender would make of ``body`` for the
  tenant holding ``table`` (``n`` numbers deliveries: the same ``n``, the same delivery id).

This module holds the type and the signing helpers they share.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from standardwebhooks import Webhook

JSON = "application/json"


@dataclass(frozen=True)
class SignedRequest:
    """A request as the sender makes it: ``/webhooks/<tenant>/<source>`` + ``path_suffix``."""

    path_suffix: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def path(self, tenant: str, source: str) -> str:
        """The request's path for ``tenant``'s ``source`` URL."""
        return f"/webhooks/{tenant}/{source}{self.path_suffix}"


class SourceSandbox(Protocol):
    """The interface of a source vendor's sandbox module (see the module docstring)."""

    WEBHOOK_FIXTURES: Sequence[str]

    def source_table(self, secret: str, sandbox_url: str) -> dict[str, Any]:
        """The source table whose credentials derive from ``secret``."""
        ...

    def sign(self, body: bytes, table: Mapping[str, Any], n: int) -> SignedRequest:
        """``body`` as the sender sends it to the tenant holding ``table``."""
        ...


def sender(module: str) -> SourceSandbox:
    """The sandbox module named by a source adapter's ``sandbox`` (checked to have the interface).

    Raises:
        TypeError: the module lacks part of the interface.
    """
    loaded = importlib.import_module(module)
    missing = [name for name in ("WEBHOOK_FIXTURES", "source_table", "sign") if not hasattr(loaded, name)]
    if missing:
        raise TypeError(f"{module} lacks {', '.join(missing)} (see connector.sandbox.sender)")
    return cast(SourceSandbox, loaded)


def toml_table(name: str, table: Mapping[str, Any]) -> str:
    """``table`` as the TOML table ``[name]`` (strings, numbers, lists, nested tables)."""
    lines = [f"[{name}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append(toml_table(f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n" + "".join(nested)


def sandbox_tenant_toml(tenant: str, sandbox_url: str, sources: Mapping[str, Mapping[str, Any]]) -> str:
    """A tenant on the sandbox: Glu for activities, Klaviyo for relayed events (their sandboxes'
    own ``tenant_table``), ``Europe/London``, and the given ``sources`` tables."""
    from connector.vendors.glu.sandbox import tenant_table as glu_table  # sandboxes import this module
    from connector.vendors.klaviyo.sandbox import tenant_table as klaviyo_table

    text = toml_table(f"tenants.{tenant}", {"timezone": "Europe/London"})
    text += toml_table(f"tenants.{tenant}.loyalty", glu_table(sandbox_url))
    text += toml_table(f"tenants.{tenant}.esp", klaviyo_table(sandbox_url))
    return text + "".join(toml_table(f"tenants.{tenant}.sources.{name}", table) for name, table in sources.items())


def derived(secret: str, label: str) -> str:
    """A credential for ``label`` derived from ``secret`` (stable, distinct per secret)."""
    return f"{label}-{hashlib.sha256(f'{label}:{secret}'.encode()).hexdigest()[:24]}"


def b64_hmac_sha256(body: bytes, secret: str) -> str:
    """Base64 HMAC-SHA256 of the raw body (Shopify, HotspotSystem, LoyaltyLion)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def hex_hmac_sha256(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body (Mist v2, Voucherify)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def basic_auth(username: str, password: str) -> str:
    """An HTTP basic ``Authorization`` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def first_secret(table: Mapping[str, Any]) -> str:
    """The first of a list source's ``secrets`` (the one a sender signs with)."""
    return str(table["secrets"][0])


def standard_webhook_secret(secret: str) -> str:
    """A Standard Webhooks ``whsec_`` secret (base64 of 24 bytes) derived from ``secret``."""
    return "whsec_" + base64.b64encode(hashlib.sha256(f"standard:{secret}".encode()).digest()[:24]).decode()


def standard_webhook_headers(body: bytes, msg_id: str, secret: str, timestamp: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (a body that is not UTF-8 gets a signature that cannot
    match: the library signs text)."""
    stamp = datetime.fromtimestamp(int(timestamp if timestamp is not None else time.time()), tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id, stamp, body.decode("utf-8"))
    except UnicodeDecodeError:
        signature = "v1,AAAA"
    return {
        "Content-Type": JSON,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }


def with_member(body: bytes, key: str, value: str) -> bytes:
    """``body`` with ``"key": "value"`` added as the last member when it is a JSON object (the
    last of duplicate keys wins for every JSON reader used here); other bodies unchanged. Textual,
    so the rest of the body keeps its exact bytes."""
    text = body.rstrip()
    if not (text.lstrip().startswith(b"{") and text.endswith(b"}")):
        return body
    inner = text.lstrip()[1:-1].strip()
    member = f'"{key}": "{value}"'.encode()
    return b"{" + member + b"}" if not inner else text[:-1] + b", " + member + b"}"
