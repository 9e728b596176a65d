"""One tenant (``fuzz``) with every source, the fixtures per source, and signing per source.

The credentials, tables and signing are each source's sender sandbox
(``connector/vendors/<name>/sandbox.py``, see :mod:`connector.sandbox.sender`): nothing per
source is written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.sandbox.sender import SourceSandbox, sandbox_tenant_toml, sender
from connector.sources.registry import SOURCES as REGISTRY

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TENANT = "fuzz"
SECRET = "fuzz"  # every credential of the tenant derives from it
SANDBOX_URL = "http://127.0.0.1:8100"  # replaced by the real sandbox URL in tenants_toml

SENDERS: dict[str, SourceSandbox] = {name: sender(adapter.sandbox) for name, adapter in REGISTRY.items()}
WEBHOOK_FIXTURES: dict[str, tuple[str, ...]] = {name: tuple(s.WEBHOOK_FIXTURES) for name, s in SENDERS.items()}
"""The webhook fixtures each source's requests are mutated from (file stems under ``tests/fixtures/<source>``)."""
ACTIVE_FIXTURES: dict[str, tuple[str, ...]] = {
    name: tuple(f for f in s.WEBHOOK_FIXTURES if f not in getattr(s, "IGNORED_FIXTURES", ()))
    for name, s in SENDERS.items()
}
"""Of those, the ones that make activities or events (the others are pings, unwanted events...)."""
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


def table(source: str, sandbox_url: str = SANDBOX_URL) -> dict[str, Any]:
    """The ``fuzz`` tenant's table of ``source`` (its sender sandbox's, from :data:`SECRET`)."""
    return SENDERS[source].source_table(SECRET, sandbox_url)


def tenants_toml(sandbox_url: str) -> str:
    """The ``fuzz`` tenant: Glu on the sandbox, every source, Klaviyo (sandbox) for relays."""
    return sandbox_tenant_toml(TENANT, sandbox_url, {s: table(s, sandbox_url) for s in SOURCES})


def signed(source: str, body: bytes, n: int) -> tuple[str, dict[str, str], bytes]:
    """``(path, headers, body)`` of a correctly authenticated request carrying ``body`` (the body
    as sent: Meraki's carries its secret)."""
    request = SENDERS[source].sign(body, table(source), n)
    return request.path(TENANT, source), request.headers, request.body


def unsigned(source: str, n: int) -> tuple[str, dict[str, str]]:
    """``(path, headers)`` of a request with wrong or no credentials (a wrong URL token where the
    source's token is in the URL)."""
    request = SENDERS[source].sign(b"{}", table(source), n)
    suffix = f"/wrong-token-{n}" if request.path_suffix else ""
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json"), "Authorization": "Bearer nope"}
    return f"/webhooks/{TENANT}/{source}{suffix}", {**headers, "X-Shopify-Hmac-Sha256": "AAAA"}
