"""Helpers for the hotel PMS tests: a tenants file with every PMS source, fixtures, contexts."""

from __future__ import annotations

import base64
import json
import textwrap
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from conftest import harbour_marina_toml, load_fixture, standard_webhook_headers
from redis import Redis

from connector.queue import INGEST_QUEUE, get_queue
from connector.sources.base import Envelope, TranslationContext

MEWS_TOKEN = "mews-url-token-harbour-7f3a"
MEWS_CLIENT_TOKEN = "sandbox-mews-client-token"
MEWS_ACCESS_TOKEN = "sandbox-mews-access-token"
MARINA_MEWS_TOKEN = "mews-url-token-marina-21bc"
ENTERPRISE = "851df8c8-90f2-4c4a-8e01-a4fc46b25178"
RESERVATION = "bfee2c44-1f84-4326-a862-5289598f6e2d"
APALEO_TOKEN = "apaleo-url-token-harbour-91d0"
APALEO_PASSWORD = "apaleo-basic-password-harbour"
CLOUDBEDS_TOKEN = "cloudbeds-url-token-harbour-55e2"
HOSTAWAY_PASSWORD = "hostaway-basic-password-harbour"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"harbour-standard-secret-0123456789").decode()
STANDARD_OLD_SECRET = "whsec_" + base64.b64encode(b"harbour-standard-old-secret-98765").decode()


def pms_toml(sandbox_url: str, extra: str = "") -> str:
    """Tenants harbour (Europe/London, every PMS source) and marina (isolation)."""
    harbour = f"""
        [tenants.harbour.sources.mews]
        token = "{MEWS_TOKEN}"
        api_url = "{sandbox_url}/mews"
        client_token = "{MEWS_CLIENT_TOKEN}"
        access_token = "env:TEST_MEWS_ACCESS_TOKEN"
        enterprise_id = "{ENTERPRISE}"
        [tenants.harbour.sources.apaleo]
        token = "{APALEO_TOKEN}"
        username = "apaleo-harbour"
        password = "{APALEO_PASSWORD}"
        client_id = "sandbox-apaleo-client"
        client_secret = "sandbox-apaleo-secret"
        api_url = "{sandbox_url}/apaleo"
        identity_url = "{sandbox_url}/apaleo"
        account_id = "HARB"
        [tenants.harbour.sources.cloudbeds]
        token = "{CLOUDBEDS_TOKEN}"
        api_url = "{sandbox_url}/cloudbeds"
        api_key = "sandbox-cloudbeds-key"
        property_id = "318267"
        currency = "GBP"
        [tenants.harbour.sources.hostaway]
        username = "hostaway-harbour"
        password = "{HOSTAWAY_PASSWORD}"
        account_id = 10452
        [tenants.harbour.sources.standard]
        secrets = ["{STANDARD_OLD_SECRET}", "{STANDARD_SECRET}"]
    """
    marina = f"""
        [tenants.marina.sources.mews]
        token = "{MARINA_MEWS_TOKEN}"
        api_url = "{sandbox_url}/mews"
        client_token = "{MEWS_CLIENT_TOKEN}"
        access_token = "{MEWS_ACCESS_TOKEN}"
    """
    return harbour_marina_toml(sandbox_url, harbour, marina) + textwrap.dedent(extra)


def fixture_json(vendor: str, name: str) -> Any:
    """A fixture parsed (numbers with a fraction kept as decimal strings, as the clients do)."""
    return json.loads(load_fixture(vendor, name), parse_float=str)


def context(tenant: str = "harbour", zone: str = "Europe/London") -> TranslationContext:
    """A translation context at a fixed instant."""
    return TranslationContext(
        tenant=tenant, timezone=ZoneInfo(zone), platform="glu", now=datetime(2026, 6, 1, tzinfo=UTC)
    )


def envelope(source: str, event_type: str = "general", tenant: str = "harbour") -> Envelope:
    """An envelope as the web tier would make it."""
    return Envelope(source, tenant, event_type, "d-1", "2026-06-01T00:00:00+00:00")


def ingest_queue_empty(redis: Redis) -> bool:
    """Nothing was enqueued for ingest."""
    return get_queue(redis, INGEST_QUEUE).count == 0


def glu_activities(sandbox: Any) -> list[dict[str, Any]]:
    """Activities the Glu sandbox holds, in creation order."""
    return list(sandbox.sandboxes.glu.state()["activities"])


def standard_headers(
    body: bytes, msg_id: str, *, secrets: tuple[str, ...] = (STANDARD_SECRET,), at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed on the fly (one signature per secret)."""
    return standard_webhook_headers(body, msg_id, secrets, at)
